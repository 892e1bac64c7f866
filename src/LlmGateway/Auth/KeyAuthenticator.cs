using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.Auth;

public enum AuthOutcome
{
    Authenticated,
    Missing,
    Invalid,
    StoreUnavailable,
}

public readonly record struct AuthResult(AuthOutcome Outcome, CallerIdentity? Caller);

/// <summary>
/// Turns a presented key into a <see cref="CallerIdentity"/>: first the configured keys
/// (Gateway:Auth:Keys, compared as SHA-256 hashes in constant time), then the virtual keys of the
/// <see cref="IKeyStore"/>. Store answers, including "no such key", are cached per instance for
/// <see cref="CacheTtl"/>, which bounds how long a key revoked on another instance still works here.
/// </summary>
public sealed class KeyAuthenticator
{
    /// <summary>How long a store lookup is trusted: revocation reaches every instance within this.</summary>
    public static readonly TimeSpan CacheTtl = TimeSpan.FromSeconds(5);

    /// <summary>Bounds the cache against floods of made-up keys (each one a distinct miss).</summary>
    public const int MaxCacheEntries = 10_000;

    private readonly ConfiguredKey[] _configured;
    private readonly IKeyStore _store;
    private readonly TimeProvider _time;
    private readonly IGatewayEvents _events;
    private readonly ILogger<KeyAuthenticator> _logger;
    private readonly ConcurrentDictionary<HashKey, CacheEntry> _cache = new();

    public KeyAuthenticator(IOptions<GatewayOptions> options, IKeyStore store, TimeProvider time, IGatewayEvents events, ILogger<KeyAuthenticator> logger)
    {
        _store = store;
        _time = time;
        _events = events;
        _logger = logger;
        var keys = options.Value.Auth.Keys;
        _configured = new ConfiguredKey[keys.Count];
        for (var i = 0; i < keys.Count; i++)
        {
            // The validator has checked the hex; a bad one would have stopped start-up.
            _configured[i] = new ConfiguredKey(Convert.FromHexString(keys[i].Sha256), CallerIdentity.FromConfig(keys[i]));
        }
    }

    /// <summary>Ids of the keys from configuration: not revocable through the admin API, not reusable by it.</summary>
    public bool IsConfiguredId(string id)
    {
        foreach (var k in _configured)
        {
            if (string.Equals(k.Identity.KeyId, id, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    public IEnumerable<CallerIdentity> Configured => _configured.Select(k => k.Identity);

    public ValueTask<AuthResult> AuthenticateAsync(string? presented, CancellationToken cancellationToken)
    {
        if (presented is null) return ValueTask.FromResult(new AuthResult(AuthOutcome.Missing, null));
        Span<byte> hash = stackalloc byte[32];
        if (!GatewayKeys.TryHash(presented, hash)) return ValueTask.FromResult(new AuthResult(AuthOutcome.Invalid, null));

        // Every configured hash is compared, match or not, each in constant time: neither the
        // comparison nor the loop says how close a guess came or which entry it was near.
        CallerIdentity? match = null;
        foreach (var k in _configured)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, k.Hash)) match = k.Identity;
        }
        if (match is not null) return ValueTask.FromResult(new AuthResult(AuthOutcome.Authenticated, match));

        var key = HashKey.From(hash);
        var now = _time.GetUtcNow();
        if (_cache.TryGetValue(key, out var cached) && cached.Expires > now)
        {
            return ValueTask.FromResult(cached.Identity is null
                ? new AuthResult(AuthOutcome.Invalid, null)
                : new AuthResult(AuthOutcome.Authenticated, cached.Identity));
        }
        return LookUpAsync(key, cancellationToken);
    }

    private async ValueTask<AuthResult> LookUpAsync(HashKey key, CancellationToken cancellationToken)
    {
        var hash = key.ToBytes();
        StoredKey? stored;
        try
        {
            stored = await _store.FindByHashAsync(Convert.ToHexStringLower(hash), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Fail closed: a key that cannot be checked is not accepted. Configured keys still work.
            // The guarded store has counted its own failures; anything else is counted here.
            if (e is not StoreUnavailableException) _events.StoreError(StoreOperations.KeyLookup);
            _logger.LogWarning("Key store lookup failed ({Error}); virtual keys are refused until it answers", e.GetType().Name);
            return new AuthResult(AuthOutcome.StoreUnavailable, null);
        }

        // The store found it by hash; confirm in constant time rather than trust its index.
        Span<byte> storedHash = stackalloc byte[32];
        var identity = stored is not null && GatewayKeys.TryParseHash(stored.Sha256, storedHash) && CryptographicOperations.FixedTimeEquals(storedHash, hash)
            ? CallerIdentity.FromStored(stored)
            : null;

        if (_cache.Count >= MaxCacheEntries) Trim();
        _cache[key] = new CacheEntry(identity, _time.GetUtcNow() + CacheTtl);
        return identity is null ? new AuthResult(AuthOutcome.Invalid, null) : new AuthResult(AuthOutcome.Authenticated, identity);
    }

    /// <summary>Lookups cached on this instance (for tests and diagnostics).</summary>
    internal int CachedEntries => _cache.Count;

    /// <summary>Drops this instance's cached lookups of a key at once (it was revoked here).</summary>
    public void Forget(string keyId)
    {
        foreach (var (k, entry) in _cache)
        {
            if (entry.Identity is { } id && string.Equals(id.KeyId, keyId, StringComparison.Ordinal)) _cache.TryRemove(k, out _);
        }
    }

    /// <summary>Drops a cached "no such key" for a hash that was just created here.</summary>
    public void ForgetHash(string sha256Hex)
    {
        Span<byte> hash = stackalloc byte[32];
        if (GatewayKeys.TryParseHash(sha256Hex, hash)) _cache.TryRemove(HashKey.From(hash), out _);
    }

    private void Trim()
    {
        var now = _time.GetUtcNow();
        foreach (var (k, entry) in _cache)
        {
            if (entry.Expires <= now) _cache.TryRemove(k, out _);
        }
        // Still mostly live entries: someone is cycling through made-up keys. Start over rather than grow, and rather
        // than keep a cache that one more key fills again: a trim that freed only the few entries expired since the
        // last one came back for every lookup, each a look through all 10,000.
        if (_cache.Count >= MaxCacheEntries * 3 / 4) _cache.Clear();
    }

    private sealed record ConfiguredKey(byte[] Hash, CallerIdentity Identity);

    private sealed record CacheEntry(CallerIdentity? Identity, DateTimeOffset Expires);

    /// <summary>A SHA-256 as four longs: a cache key that costs no allocation.</summary>
    private readonly record struct HashKey(ulong A, ulong B, ulong C, ulong D)
    {
        public static HashKey From(ReadOnlySpan<byte> hash) => new(
            BinaryPrimitives.ReadUInt64BigEndian(hash),
            BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));

        public byte[] ToBytes()
        {
            var bytes = new byte[32];
            BinaryPrimitives.WriteUInt64BigEndian(bytes, A);
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), B);
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(16), C);
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(24), D);
            return bytes;
        }
    }
}
