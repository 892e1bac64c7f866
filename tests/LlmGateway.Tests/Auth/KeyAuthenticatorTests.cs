using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Auth;

public class KeyAuthenticatorTests
{
    /// <summary>The in-memory store, counting lookups, or failing them, at the store boundary.</summary>
    private sealed class CountingStore(bool fail = false) : IKeyStore
    {
        public StoreKeyStore Inner { get; } = new(new MemoryStore(new StoreOptions(), TimeProvider.System));
        public int Lookups;
        public bool Fail { get; set; } = fail;

        public ValueTask<bool> CreateAsync(StoredKey key, CancellationToken cancellationToken) => Inner.CreateAsync(key, cancellationToken);
        public ValueTask<IReadOnlyList<StoredKey>> ListAsync(CancellationToken cancellationToken) => Inner.ListAsync(cancellationToken);
        public ValueTask<bool> RevokeAsync(string id, CancellationToken cancellationToken) => Inner.RevokeAsync(id, cancellationToken);

        public ValueTask<StoredKey?> FindByHashAsync(string sha256Hex, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Lookups);
            if (Fail) throw new TimeoutException("store down");
            return Inner.FindByHashAsync(sha256Hex, cancellationToken);
        }
    }

    private static readonly DateTimeOffset s_t0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static FakeTimeProvider Clock()
    {
        var clock = new FakeTimeProvider();
        clock.SetUtcNow(s_t0);
        return clock;
    }

    private static KeyAuthenticator Create(IKeyStore store, TimeProvider clock, params KeyOptions[] keys)
    {
        var options = new GatewayOptions();
        options.Auth.Keys.AddRange(keys);
        return new KeyAuthenticator(Options.Create(options), store, clock, new NullGatewayEvents(), NullLogger<KeyAuthenticator>.Instance);
    }

    private static StoredKey Stored(string id, string secret) =>
        new(id, GatewayKeys.Sha256Hex(secret), ["*"], 0, 0, 0, 0, false, s_t0);

    [Fact]
    public async Task A_configured_key_is_recognised_by_its_hash_with_its_limits()
    {
        var key = new KeyOptions { Id = "team", Sha256 = GatewayKeys.Sha256Hex("team-secret").ToUpperInvariant(), Rpm = 7, Models = ["gpt-*"], LocalOnly = true };
        var store = new CountingStore();
        var auth = Create(store, Clock(), key);

        var result = await auth.AuthenticateAsync("team-secret", default);
        Assert.Equal(AuthOutcome.Authenticated, result.Outcome);
        Assert.Equal("team", result.Caller!.KeyId);
        Assert.Equal(7, result.Caller.Rpm);
        Assert.True(result.Caller.LocalOnly);
        Assert.Equal("key:team", result.Caller.BudgetScope);
        Assert.True(result.Caller.MayRequest("gpt-4o"));
        Assert.False(result.Caller.MayRequest("claude-3"));
        Assert.True(result.Caller.MayRequest("auto"));
        Assert.Equal(0, store.Lookups);

        Assert.Equal(AuthOutcome.Missing, (await auth.AuthenticateAsync(null, default)).Outcome);
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("", default)).Outcome);
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("team-secreT", default)).Outcome);
    }

    [Fact]
    public async Task A_configured_key_with_no_models_listed_may_use_every_model()
    {
        var auth = Create(new CountingStore(), Clock(), new KeyOptions { Id = "all", Sha256 = GatewayKeys.Sha256Hex("all-secret") });
        var caller = (await auth.AuthenticateAsync("all-secret", default)).Caller!;
        Assert.True(caller.MayRequest("anything-at-all"));
    }

    [Fact]
    public async Task Store_lookups_hits_and_misses_alike_are_cached_for_the_ttl_and_no_longer()
    {
        var store = new CountingStore();
        await store.CreateAsync(Stored("v1", "virtual-secret"), default);
        var clock = Clock();
        var auth = Create(store, clock);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("v1", (await auth.AuthenticateAsync("virtual-secret", default)).Caller?.KeyId);
            Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("made-up-secret", default)).Outcome);
        }
        Assert.Equal(2, store.Lookups);

        clock.Advance(KeyAuthenticator.CacheTtl);
        await store.RevokeAsync("v1", default);
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("virtual-secret", default)).Outcome);
        Assert.Equal(3, store.Lookups);
    }

    [Fact]
    public async Task Forget_drops_a_revoked_keys_cached_lookup_at_once()
    {
        var store = new CountingStore();
        await store.CreateAsync(Stored("v1", "virtual-secret"), default);
        var auth = Create(store, Clock());
        Assert.Equal(AuthOutcome.Authenticated, (await auth.AuthenticateAsync("virtual-secret", default)).Outcome);

        await store.RevokeAsync("v1", default);
        auth.Forget("v1");
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("virtual-secret", default)).Outcome);
    }

    [Fact]
    public async Task A_key_created_after_a_miss_for_it_works_at_once_on_the_instance_that_created_it()
    {
        var store = new CountingStore();
        var auth = Create(store, Clock());
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("later-secret", default)).Outcome);

        var key = Stored("later", "later-secret");
        await store.CreateAsync(key, default);
        auth.ForgetHash(key.Sha256);
        Assert.Equal(AuthOutcome.Authenticated, (await auth.AuthenticateAsync("later-secret", default)).Outcome);
    }

    [Fact]
    public async Task A_store_that_fails_refuses_virtual_keys_but_not_configured_ones()
    {
        var store = new CountingStore(fail: true);
        var auth = Create(store, Clock(), new KeyOptions { Id = "team", Sha256 = GatewayKeys.Sha256Hex("team-secret") });
        Assert.Equal(AuthOutcome.StoreUnavailable, (await auth.AuthenticateAsync("virtual-secret", default)).Outcome);
        Assert.Equal(AuthOutcome.Authenticated, (await auth.AuthenticateAsync("team-secret", default)).Outcome);

        // A failure is not cached: the next request asks the store again.
        store.Fail = false;
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("virtual-secret", default)).Outcome);
    }

    [Fact]
    public async Task A_store_answer_whose_hash_does_not_match_is_not_trusted()
    {
        var store = new LyingStore();
        var auth = Create(store, Clock());
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("any-secret-at-all", default)).Outcome);
    }

    /// <summary>A store whose index is broken: it answers every lookup with the same key.</summary>
    private sealed class LyingStore : IKeyStore
    {
        public ValueTask<bool> CreateAsync(StoredKey key, CancellationToken cancellationToken) => ValueTask.FromResult(false);
        public ValueTask<IReadOnlyList<StoredKey>> ListAsync(CancellationToken cancellationToken) => ValueTask.FromResult<IReadOnlyList<StoredKey>>([]);
        public ValueTask<bool> RevokeAsync(string id, CancellationToken cancellationToken) => ValueTask.FromResult(false);
        public ValueTask<StoredKey?> FindByHashAsync(string sha256Hex, CancellationToken cancellationToken) =>
            ValueTask.FromResult<StoredKey?>(Stored("someone-else", "someone-elses-secret"));
    }

    [Fact]
    public async Task A_flood_of_made_up_keys_does_not_grow_the_cache_without_bound()
    {
        var store = new CountingStore();
        var auth = Create(store, Clock());
        for (var i = 0; i < KeyAuthenticator.MaxCacheEntries + 50; i++)
        {
            await auth.AuthenticateAsync("made-up-" + i, default);
        }
        Assert.True(auth.CachedEntries <= KeyAuthenticator.MaxCacheEntries, $"{auth.CachedEntries} cached");
    }

    [Fact]
    public async Task A_full_cache_trim_frees_at_least_a_quarter_so_the_next_lookups_do_not_each_look_through_it_again()
    {
        var store = new CountingStore();
        var clock = Clock();
        var auth = Create(store, clock);
        // Made-up keys arriving at about the rate they expire: only the oldest few are past the TTL when it fills.
        for (var i = 0; i < 10; i++) await auth.AuthenticateAsync("early-" + i, default);
        clock.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < KeyAuthenticator.MaxCacheEntries - 10; i++) await auth.AuthenticateAsync("made-up-" + i, default);
        Assert.Equal(KeyAuthenticator.MaxCacheEntries, auth.CachedEntries);
        clock.Advance(KeyAuthenticator.CacheTtl - TimeSpan.FromSeconds(0.5));

        await auth.AuthenticateAsync("one-more", default);
        // Trimming only the ten expired ones would leave it full, to be looked through again ten lookups later.
        Assert.InRange(auth.CachedEntries, 1, KeyAuthenticator.MaxCacheEntries * 3 / 4);
        var lookups = store.Lookups;
        Assert.Equal(AuthOutcome.Invalid, (await auth.AuthenticateAsync("one-more", default)).Outcome);
        Assert.Equal(lookups, store.Lookups);
    }
}
