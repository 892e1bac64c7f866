using System.Collections.Concurrent;

namespace LlmGateway.Auth;

/// <summary>
/// The embedded key store: one process, no persistence (keys created through the admin API are gone
/// after a restart; configured keys are not affected). Lookups are lock-free; writes take a lock so
/// the id and hash indexes never disagree.
/// </summary>
public sealed class InMemoryKeyStore : IKeyStore
{
    private readonly ConcurrentDictionary<string, StoredKey> _byId = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StoredKey> _byHash = new(StringComparer.Ordinal);
    private readonly Lock _write = new();

    public ValueTask<bool> CreateAsync(StoredKey key, CancellationToken cancellationToken)
    {
        lock (_write)
        {
            if (_byId.ContainsKey(key.Id) || _byHash.ContainsKey(key.Sha256)) return ValueTask.FromResult(false);
            _byHash[key.Sha256] = key;
            _byId[key.Id] = key;
        }
        return ValueTask.FromResult(true);
    }

    public ValueTask<IReadOnlyList<StoredKey>> ListAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<StoredKey> keys = [.. _byId.Values.OrderBy(k => k.Id, StringComparer.Ordinal)];
        return ValueTask.FromResult(keys);
    }

    public ValueTask<bool> RevokeAsync(string id, CancellationToken cancellationToken)
    {
        lock (_write)
        {
            if (!_byId.TryRemove(id, out var key)) return ValueTask.FromResult(false);
            _byHash.TryRemove(key.Sha256, out _);
        }
        return ValueTask.FromResult(true);
    }

    public ValueTask<StoredKey?> FindByHashAsync(string sha256Hex, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_byHash.GetValueOrDefault(sha256Hex));
}
