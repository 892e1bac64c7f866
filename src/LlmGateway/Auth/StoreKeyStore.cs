using System.Text.Json;
using LlmGateway.Storage;

namespace LlmGateway.Auth;

/// <summary>
/// Virtual keys in the gateway's store: in memory for one process, in Redis when instances share it,
/// so a key created or revoked on one instance is seen by all. Each key is one JSON record indexed by
/// its hash; create and revoke are atomic in the store. Store failures surface as exceptions
/// (<see cref="KeyAuthenticator"/> refuses virtual keys while the store is down).
/// </summary>
public sealed class StoreKeyStore(IGatewayStore store) : IKeyStore
{
    public async ValueTask<bool> CreateAsync(StoredKey key, CancellationToken cancellationToken) =>
        await store.AddRecordAsync(key.Id, key.Sha256, JsonSerializer.SerializeToUtf8Bytes(key, AuthJsonContext.Default.StoredKey)).ConfigureAwait(false);

    public async ValueTask<IReadOnlyList<StoredKey>> ListAsync(CancellationToken cancellationToken)
    {
        var records = await store.ListRecordsAsync().ConfigureAwait(false);
        return [.. records.Select(Read).OrderBy(k => k.Id, StringComparer.Ordinal)];
    }

    public async ValueTask<bool> RevokeAsync(string id, CancellationToken cancellationToken) =>
        await store.DeleteRecordAsync(id).ConfigureAwait(false);

    public async ValueTask<StoredKey?> FindByHashAsync(string sha256Hex, CancellationToken cancellationToken) =>
        await store.FindRecordByHashAsync(sha256Hex).ConfigureAwait(false) is { } record ? Read(record) : null;

    private static StoredKey Read(byte[] record) =>
        JsonSerializer.Deserialize(record, AuthJsonContext.Default.StoredKey) ?? throw new InvalidDataException("A stored key record is empty.");
}
