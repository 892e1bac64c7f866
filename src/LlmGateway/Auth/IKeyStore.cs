namespace LlmGateway.Auth;

/// <summary>
/// A virtual key as stored: metadata and the SHA-256 of the secret, never the secret itself.
/// <see cref="Sha256"/> is lower-case hex.
/// </summary>
public sealed record StoredKey(
    string Id,
    string Sha256,
    IReadOnlyList<string> Models,
    int Rpm,
    int Tpm,
    decimal DailyUsd,
    decimal MonthlyUsd,
    bool LocalOnly,
    DateTimeOffset CreatedAt);

/// <summary>
/// Where virtual keys (POST /admin/keys) live: the shared store, so every instance sees a key
/// created or revoked on any one of them (<see cref="StoreKeyStore"/>: one record per id and an
/// index from hash to id, both written and deleted atomically). Lookups are cached per instance by <see cref="KeyAuthenticator"/> for
/// a few seconds, so implementations need no cache of their own. Store failures are exceptions.
/// </summary>
public interface IKeyStore
{
    /// <summary>Adds a key; false (and nothing stored) when its id or its hash is already taken.</summary>
    ValueTask<bool> CreateAsync(StoredKey key, CancellationToken cancellationToken);

    /// <summary>Every stored key, ordered by id.</summary>
    ValueTask<IReadOnlyList<StoredKey>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Deletes a key for good; false when no key has that id.</summary>
    ValueTask<bool> RevokeAsync(string id, CancellationToken cancellationToken);

    /// <summary>The key whose secret hashes to <paramref name="sha256Hex"/> (lower-case hex), or null.</summary>
    ValueTask<StoredKey?> FindByHashAsync(string sha256Hex, CancellationToken cancellationToken);
}
