using System.Text;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmGateway.IntegrationTests.Storage;

/// <summary>
/// What every store must do, run against the embedded store and against a real redis-server. The
/// cache, budgets and ledger rely on exactly these behaviours and nothing else.
/// </summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected static readonly DateTimeOffset Start = new(2030, 3, 14, 12, 0, 0, TimeSpan.Zero);

    protected IGatewayStore Store { get; private set; } = null!;

    protected abstract IGatewayStore CreateStore(StoreOptions options);

    /// <summary>Lets <paramref name="by"/> of store time pass (the manual clock in memory, real time on Redis).</summary>
    protected abstract Task LetTimePassAsync(TimeSpan by);

    /// <summary>The store's own notion of now, for reservations' expiry.</summary>
    protected abstract DateTimeOffset Now { get; }

    protected StoreOptions Options { get; } = new() { KeyPrefix = $"contract-{Guid.NewGuid():N}:", LedgerMaxEntries = 50, TimeoutMs = 2000 };

    public virtual async Task InitializeAsync()
    {
        Store = CreateStore(Options);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!Store.IsAvailable)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The store did not become available.");
            await Task.Delay(20);
        }
    }

    public virtual Task DisposeAsync()
    {
        (Store as IDisposable)?.Dispose();
        return Task.CompletedTask;
    }

    private static CounterLimit Counter(string key, long limit) => new(key, limit, Start + TimeSpan.FromDays(2));

    [Fact]
    public async Task A_stored_value_is_read_back_and_a_missing_key_is_null()
    {
        await Store.SetAsync("cache:a", [1, 2, 3], TimeSpan.FromMinutes(5));
        Assert.Equal([1, 2, 3], await Store.GetAsync("cache:a"));
        Assert.Null(await Store.GetAsync("cache:missing"));
    }

    [Fact]
    public async Task A_value_is_gone_after_its_ttl()
    {
        // Redis keeps its own (real) time: the TTL leaves a wide margin for the read right after the write on a
        // busy machine, and expiry is then polled for, failing at the deadline.
        await Store.SetAsync("cache:short", [7], TimeSpan.FromSeconds(3));
        await Store.SetAsync("cache:long", [8], TimeSpan.FromMinutes(5));
        Assert.NotNull(await Store.GetAsync("cache:short"));

        await LetTimePassAsync(TimeSpan.FromSeconds(3.1));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await Store.GetAsync("cache:short") is not null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Null(await Store.GetAsync("cache:short"));
        Assert.NotNull(await Store.GetAsync("cache:long"));
    }

    [Fact]
    public async Task A_compare_and_set_writes_only_over_the_value_it_expects()
    {
        Assert.True(await Store.SetIfUnchangedAsync("conv:k:cas", null, [1], TimeSpan.FromMinutes(5)));
        Assert.False(await Store.SetIfUnchangedAsync("conv:k:cas", null, [2], TimeSpan.FromMinutes(5)));   // it exists now
        Assert.False(await Store.SetIfUnchangedAsync("conv:k:cas", [9], [3], TimeSpan.FromMinutes(5)));    // not what is stored
        Assert.Equal([1], await Store.GetAsync("conv:k:cas"));

        Assert.True(await Store.SetIfUnchangedAsync("conv:k:cas", [1], [4, 4], TimeSpan.FromMinutes(5)));
        Assert.Equal([4, 4], await Store.GetAsync("conv:k:cas"));
        Assert.False(await Store.SetIfUnchangedAsync("conv:k:absent", [1], [5], TimeSpan.FromMinutes(5)));
        Assert.Null(await Store.GetAsync("conv:k:absent"));
    }

    [Fact]
    public async Task Deleting_one_key_removes_it_alone_and_says_whether_it_was_there()
    {
        await Store.SetAsync("conv:k:a", [1], TimeSpan.FromMinutes(5));
        await Store.SetAsync("conv:k:ab", [2], TimeSpan.FromMinutes(5));

        Assert.True(await Store.DeleteAsync("conv:k:a"));

        Assert.Null(await Store.GetAsync("conv:k:a"));
        Assert.NotNull(await Store.GetAsync("conv:k:ab"));
        Assert.False(await Store.DeleteAsync("conv:k:a"));
    }

    [Fact]
    public async Task Deleting_by_prefix_removes_only_the_matching_keys()
    {
        for (var i = 0; i < 30; i++) await Store.SetAsync($"cache:{i}", [1], TimeSpan.FromMinutes(5));
        await Store.SetAsync("other:1", [2], TimeSpan.FromMinutes(5));

        Assert.Equal(30, await Store.DeleteByPrefixAsync("cache:"));

        Assert.Null(await Store.GetAsync("cache:3"));
        Assert.NotNull(await Store.GetAsync("other:1"));
        Assert.Equal(0, await Store.DeleteByPrefixAsync("cache:"));
    }

    [Fact]
    public async Task A_reservation_is_granted_while_it_fits_and_refused_when_it_does_not()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 100)];

        var first = await Store.ReserveAsync(counters, "r1", 60, Now + TimeSpan.FromMinutes(10), Now);
        var second = await Store.ReserveAsync(counters, "r2", 50, Now + TimeSpan.FromMinutes(10), Now);
        var third = await Store.ReserveAsync(counters, "r3", 40, Now + TimeSpan.FromMinutes(10), Now);

        Assert.True(first.Granted);
        Assert.Equal(new CounterState(0, 60), first.States[0]);
        Assert.False(second.Granted);
        Assert.Equal(0, second.RefusedIndex);
        Assert.True(third.Granted);
        Assert.Equal(new CounterState(0, 100), third.States[0]);
        Assert.Equal([new CounterState(0, 100)], await Store.ReadCountersAsync([counters[0].Ref], Now));
    }

    [Fact]
    public async Task A_reservation_over_several_counters_takes_all_or_nothing()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 1000), Counter("budget:p:d", 10), Counter("budget:k:d", 1000)];

        var refused = await Store.ReserveAsync(counters, "r1", 20, Now + TimeSpan.FromMinutes(10), Now);

        Assert.False(refused.Granted);
        Assert.Equal(1, refused.RefusedIndex);
        var states = await Store.ReadCountersAsync([.. counters.Select(c => c.Ref)], Now);
        Assert.All(states, s => Assert.Equal(new CounterState(0, 0), s));
    }

    [Fact]
    public async Task Settling_replaces_the_reservation_with_the_real_spend_once_however_often_it_is_sent()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 1000), Counter("budget:p:d", 1000)];
        CounterRef[] refs = [counters[0].Ref, counters[1].Ref];
        await Store.ReserveAsync(counters, "r1", 300, Now + TimeSpan.FromMinutes(10), Now);
        await Store.ReserveAsync(counters, "r2", 200, Now + TimeSpan.FromMinutes(10), Now);

        var settled = await Store.SettleAsync(refs, [new Settlement(new Reservation("r1", 300), 120)], Now);
        var again = await Store.SettleAsync(refs, [new Settlement(new Reservation("r1", 300), 120)], Now);
        var released = await Store.SettleAsync(refs, [new Settlement(new Reservation("r2", 200), 0)], Now);

        Assert.Equal([new CounterState(120, 200), new CounterState(120, 200)], settled);
        Assert.Equal([new CounterState(120, 200), new CounterState(120, 200)], again);
        Assert.Equal([new CounterState(120, 0), new CounterState(120, 0)], released);
    }

    [Fact]
    public async Task A_zero_cost_reservation_settles_and_releases_like_any_other()
    {
        // A free model (mock, local) reserves 0; Redis' HINCRBY refuses "-0", which once made every such settle a store error.
        CounterLimit[] counters = [Counter("budget:g:d", 1000), Counter("budget:p:d", 1000)];
        CounterRef[] refs = [counters[0].Ref, counters[1].Ref];
        var granted = await Store.ReserveAsync(counters, "free", 0, Now + TimeSpan.FromMinutes(10), Now);
        await Store.ReserveAsync(counters, "paid", 100, Now + TimeSpan.FromMinutes(10), Now);

        var held = await Store.SettleAsync(refs, [new Settlement(new Reservation("free", 0), 0)], Now);
        var notHeld = await Store.SettleAsync(refs, [new Settlement(new Reservation("free-local", 0), 0, Held: false)], Now);
        var freeButCharged = await Store.SettleAsync(refs, [new Settlement(new Reservation("paid", 100), 0), new Settlement(new Reservation("odd", 0), 5, Held: false)], Now);

        Assert.True(granted.Granted);
        Assert.Equal([new CounterState(0, 100), new CounterState(0, 100)], held);
        Assert.Equal([new CounterState(0, 100), new CounterState(0, 100)], notHeld);
        Assert.Equal([new CounterState(5, 0), new CounterState(5, 0)], freeButCharged);
    }

    [Fact]
    public async Task Spend_admitted_without_the_store_is_added_once_and_frees_a_reservation_that_was_made_after_all()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 1000)];
        // The gateway's reserve call timed out, but Redis had made the reservation.
        await Store.ReserveAsync(counters, "phantom", 100, Now + TimeSpan.FromMinutes(10), Now);

        var first = await Store.SettleAsync([counters[0].Ref], [new Settlement(new Reservation("phantom", 100), 70, Held: false), new Settlement(new Reservation("local", 100), 40, Held: false)], Now);
        var resent = await Store.SettleAsync([counters[0].Ref], [new Settlement(new Reservation("phantom", 100), 70, Held: false), new Settlement(new Reservation("local", 100), 40, Held: false)], Now);

        Assert.Equal(new CounterState(110, 0), first[0]);
        Assert.Equal(new CounterState(110, 0), resent[0]);
    }

    [Fact]
    public async Task Expired_reservations_stop_holding_budget_but_a_late_settle_still_counts_once()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 100)];
        await Store.ReserveAsync(counters, "crashed", 90, Now + TimeSpan.FromSeconds(30), Now);

        var meanwhile = await Store.ReserveAsync(counters, "r2", 50, Now + TimeSpan.FromMinutes(10), Now);
        var later = Now + TimeSpan.FromMinutes(1);
        var afterExpiry = await Store.ReserveAsync(counters, "r3", 50, later + TimeSpan.FromMinutes(10), later);
        var settled = await Store.SettleAsync([counters[0].Ref], [new Settlement(new Reservation("crashed", 90), 80)], later);
        var resent = await Store.SettleAsync([counters[0].Ref], [new Settlement(new Reservation("crashed", 90), 80)], later);

        Assert.False(meanwhile.Granted);
        Assert.True(afterExpiry.Granted);
        Assert.Equal(new CounterState(0, 50), afterExpiry.States[0]);
        Assert.Equal(new CounterState(80, 50), settled[0]);
        Assert.Equal(new CounterState(80, 50), resent[0]);
    }

    [Fact]
    public async Task A_renewed_reservation_outlives_its_first_lease_and_a_settled_or_expired_one_is_not_brought_back()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 100), Counter("budget:p:d", 100)];
        CounterRef[] refs = [counters[0].Ref, counters[1].Ref];
        var start = Now;
        await Store.ReserveAsync(counters, "running", 40, start + TimeSpan.FromSeconds(30), start);
        await Store.ReserveAsync(counters, "crashed", 30, start + TimeSpan.FromSeconds(30), start);
        await Store.ReserveAsync(counters, "done", 20, start + TimeSpan.FromSeconds(30), start);
        await Store.SettleAsync(refs, [new Settlement(new Reservation("done", 20), 5)], start);

        await Store.RenewReservationAsync(refs, new Reservation("running", 40), start + TimeSpan.FromSeconds(90));
        await Store.RenewReservationAsync(refs, new Reservation("done", 20), start + TimeSpan.FromSeconds(90));
        var later = start + TimeSpan.FromSeconds(60);
        var afterFirstLease = await Store.ReadCountersAsync(refs, later);
        await Store.RenewReservationAsync(refs, new Reservation("crashed", 30), later + TimeSpan.FromSeconds(90));
        var afterLateRenewal = await Store.ReadCountersAsync(refs, later);
        var afterSecondLease = await Store.ReadCountersAsync(refs, start + TimeSpan.FromSeconds(91));

        Assert.Equal([new CounterState(5, 40), new CounterState(5, 40)], afterFirstLease);
        Assert.Equal([new CounterState(5, 40), new CounterState(5, 40)], afterLateRenewal);
        Assert.Equal([new CounterState(5, 0), new CounterState(5, 0)], afterSecondLease);
    }

    [Fact]
    public async Task Concurrent_reservations_never_pass_the_limit()
    {
        CounterLimit[] counters = [Counter("budget:g:d", 10_000), Counter("budget:p:d", 1_000)];

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            Task.Run(() => Store.ReserveAsync(counters, $"r{i}", 100, Now + TimeSpan.FromMinutes(10), Now))));

        Assert.Equal(10, results.Count(r => r.Granted));
        Assert.Equal(new CounterState(0, 1_000), (await Store.ReadCountersAsync([counters[1].Ref], Now))[0]);
    }

    [Fact]
    public async Task Key_records_are_found_by_hash_listed_and_deleted_with_their_index()
    {
        Assert.True(await Store.AddRecordAsync("alice", "h-alice", [1]));
        Assert.True(await Store.AddRecordAsync("bob", "h-bob", [2]));
        Assert.False(await Store.AddRecordAsync("alice", "h-other", [3]));
        Assert.False(await Store.AddRecordAsync("carol", "h-bob", [4]));

        Assert.Equal([1], await Store.FindRecordByHashAsync("h-alice"));
        Assert.Null(await Store.FindRecordByHashAsync("h-other"));
        Assert.Null(await Store.FindRecordByHashAsync("h-nobody"));
        Assert.Equal([[1], [2]], (await Store.ListRecordsAsync()).OrderBy(r => r[0]));

        Assert.True(await Store.DeleteRecordAsync("alice"));
        Assert.False(await Store.DeleteRecordAsync("alice"));
        Assert.False(await Store.DeleteRecordAsync("nobody"));
        Assert.Null(await Store.FindRecordByHashAsync("h-alice"));
        Assert.Equal([[2]], await Store.ListRecordsAsync());
        // Both the id and the hash are free again.
        Assert.True(await Store.AddRecordAsync("alice", "h-alice", [5]));
    }

    [Fact]
    public async Task A_rate_limit_admits_its_limit_then_refuses_until_time_or_a_correction_frees_room()
    {
        var limiter = new StoreRateLimiter(Store);
        var minute = TimeSpan.FromMinutes(1);
        for (var i = 0; i < 6; i++)
        {
            var taken = await limiter.AcquireAsync("rpm:a", 6, minute, 1, Start);
            Assert.True(taken.Allowed);
            Assert.Equal(5 - i, taken.Remaining);
        }
        var refused = await limiter.AcquireAsync("rpm:a", 6, minute, 1, Start);
        Assert.False(refused.Allowed);
        Assert.Equal(TimeSpan.FromSeconds(10), refused.RetryAfter);
        Assert.Equal(minute, refused.ResetAfter);
        // Other keys are not affected; reading (cost 0) takes nothing.
        Assert.True((await limiter.AcquireAsync("rpm:b", 6, minute, 1, Start)).Allowed);
        Assert.Equal(0, (await limiter.AcquireAsync("rpm:a", 6, minute, 0, Start)).Remaining);

        Assert.False((await limiter.AcquireAsync("rpm:a", 6, minute, 1, Start.AddSeconds(9))).Allowed);
        Assert.True((await limiter.AcquireAsync("rpm:a", 6, minute, 1, Start.AddSeconds(10))).Allowed);

        // Giving two units back makes room for two; charging three more puts the key over-full.
        await limiter.AdjustAsync("rpm:a", 6, minute, -2, Start.AddSeconds(10));
        Assert.Equal(2, (await limiter.AcquireAsync("rpm:a", 6, minute, 0, Start.AddSeconds(10))).Remaining);
        await limiter.AdjustAsync("rpm:a", 6, minute, 3, Start.AddSeconds(10));
        var over = await limiter.AcquireAsync("rpm:a", 6, minute, 1, Start.AddSeconds(10));
        Assert.False(over.Allowed);
        Assert.Equal(TimeSpan.FromSeconds(20), over.RetryAfter);
    }

    [Fact]
    public async Task Concurrent_rate_limit_acquisitions_never_admit_more_than_the_limit()
    {
        var limiter = new StoreRateLimiter(Store);

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ =>
            Task.Run(async () => await limiter.AcquireAsync("rpm:busy", 10, TimeSpan.FromMinutes(1), 1, Start))));

        Assert.Equal(10, results.Count(r => r.Allowed));
    }

    [Fact]
    public async Task Mark_once_is_true_only_for_the_first_caller()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Store.TryMarkOnceAsync("alert:x", TimeSpan.FromMinutes(5))));

        Assert.Equal(1, results.Count(r => r));
        Assert.True(await Store.TryMarkOnceAsync("alert:y", TimeSpan.FromMinutes(5)));
    }

    [Fact]
    public async Task Ledger_records_are_read_back_in_order_in_pages()
    {
        var records = Enumerable.Range(0, 25).Select(i => Encoding.UTF8.GetBytes($"record-{i:00}")).ToList();
        await Store.AppendLedgerAsync(records.Take(10).ToList());
        await Store.AppendLedgerAsync(records.Skip(10).ToList());

        var read = new List<string>();
        string? after = null;
        for (var pages = 0; pages < 10; pages++)
        {
            var page = await Store.ReadLedgerAsync(0, after, 7);
            read.AddRange(page.Select(r => Encoding.UTF8.GetString(r.Data)));
            if (page.Count < 7) break;
            after = page[^1].Id;
        }

        Assert.Equal(records.Select(r => Encoding.UTF8.GetString(r)), read);
    }

    [Fact]
    public async Task Ledger_reads_start_at_the_given_time()
    {
        await Store.AppendLedgerAsync([[1], [2]]);

        var future = DateTimeOffset.UtcNow.AddYears(50).ToUnixTimeMilliseconds();

        Assert.Equal(2, (await Store.ReadLedgerAsync(0, null, 100)).Count);
        Assert.Empty(await Store.ReadLedgerAsync(future, null, 100));
    }

    [Fact]
    public async Task The_ledger_is_capped_near_its_configured_size()
    {
        for (var batch = 0; batch < 10; batch++)
        {
            await Store.AppendLedgerAsync(Enumerable.Range(0, 100).Select(i => new byte[] { (byte)i }).ToList());
        }

        var count = 0;
        string? after = null;
        while (true)
        {
            var page = await Store.ReadLedgerAsync(0, after, 100);
            count += page.Count;
            if (page.Count < 100) break;
            after = page[^1].Id;
        }
        // Redis trims whole internal nodes (MAXLEN ~), so "about" the size: at least it, far below what was written.
        Assert.InRange(count, Options.LedgerMaxEntries, 500);
    }
}

public sealed class MemoryStoreContractTests : StoreContractTests
{
    private readonly ManualClock _clock = new(Start);

    protected override IGatewayStore CreateStore(StoreOptions options) => new MemoryStore(options, _clock);

    protected override Task LetTimePassAsync(TimeSpan by)
    {
        _clock.Advance(by);
        return Task.CompletedTask;
    }

    protected override DateTimeOffset Now => _clock.GetUtcNow();
}

[Collection(RedisCollection.Name)]
public sealed class RedisStoreContractTests(RedisServer redis) : StoreContractTests
{
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

    protected override IGatewayStore CreateStore(StoreOptions options) =>
        new GuardedStore(new RedisStore(redis.ConnectionString, options), options, new NullGatewayEvents(), NullLogger<GuardedStore>.Instance);

    protected override Task LetTimePassAsync(TimeSpan by) => Task.Delay(by);

    protected override DateTimeOffset Now => _now;
}
