using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Storage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Responses;

/// <summary>
/// A stored response: the Response object as it was answered, the conversation up to and including it,
/// and its request's input items as <c>input_items</c> lists them (a JSON array; empty for a response
/// stored before the gateway kept them).
/// </summary>
public sealed record StoredResponse(byte[] Response, ConversationHistory History, byte[] InputItems);

/// <summary>
/// Responses kept for <c>GET /v1/responses/{id}</c> and <c>previous_response_id</c> (<c>store</c>,
/// true unless the client says false, as OpenAI). They live in the gateway's store beside the
/// conversations and under their rules (<c>Gateway:Conversations</c>): forgotten after
/// <c>TtlSeconds</c>, and the replayed history kept under <c>MaxHistoryTokens</c> and
/// <c>MaxTurns</c> by dropping the oldest turns.
/// <list type="bullet">
/// <item>Scope: the store key holds the caller's key id, so one key never sees another's responses: a
/// foreign id is simply an unknown one (404).</item>
/// <item>Each stored response holds the whole (trimmed) chain that led to it, so a turn needs one read,
/// and deleting an earlier response does not break the later ones.</item>
/// <item><c>instructions</c> are not part of the chain: as in OpenAI, a new turn's instructions replace them.</item>
/// </list>
/// </summary>
public sealed class ResponseStore(IOptions<GatewayOptions> options, IGatewayStore store, TimeProvider time, ILogger<ResponseStore> logger)
{
    internal const string KeyPrefix = "resp:";
    private const int Version = 1;

    private readonly ConversationOptions _options = options.Value.Conversations;

    private TimeSpan Ttl => TimeSpan.FromSeconds(_options.TtlSeconds);

    /// <summary>
    /// The store key of a response in the caller's scope. Response ids can't hold ':', so the last ':'
    /// separates the key id from the response id and no two scopes can meet.
    /// </summary>
    public static string StoreKey(CallerIdentity? caller, string id) => KeyPrefix + (caller?.KeyId ?? "") + ":" + id;

    /// <summary>The response in the caller's scope, or null. Throws <see cref="StoreUnavailableException"/>.</summary>
    public async Task<StoredResponse?> GetAsync(CallerIdentity? caller, string id)
    {
        var stored = Decode(await store.GetAsync(StoreKey(caller, id)).ConfigureAwait(false));
        stored?.History.Trim(_options.MaxHistoryTokens, _options.MaxTurns); // the options may have shrunk since it was stored
        return stored;
    }

    /// <summary>
    /// Keeps a finished response with its history: <paramref name="previous"/> (the chain it continued,
    /// or null) plus this turn's input and output, trimmed to the limits. Never throws for the store: the
    /// client has a good answer either way, so a failed write is a warning.
    /// </summary>
    public async Task SaveAsync(CallerIdentity? caller, ResponseObject response, ConversationHistory? previous, List<byte[]> input, byte[] inputItems)
    {
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var history = new ConversationHistory { CreatedAt = previous?.CreatedAt ?? now, UpdatedAt = now };
        if (previous is not null) history.Turns.AddRange(previous.Turns);
        var turn = new List<byte[]>(input.Count + 1);
        turn.AddRange(input);
        turn.AddRange(response.ToChatMessages());
        history.Turns.Add(new ConversationTurnMessages(turn));
        history.Trim(_options.MaxHistoryTokens, _options.MaxTurns);
        try
        {
            await store.SetAsync(StoreKey(caller, response.Id), Encode(response.ToJson(), history, inputItems), Ttl).ConfigureAwait(false);
        }
        catch (StoreUnavailableException e)
        {
            logger.LogWarning("Response {ResponseId} was not stored (GET and previous_response_id won't find it): {Reason}", response.Id, e.Message);
        }
    }

    /// <summary>Deletes the response; false when there was none. Throws <see cref="StoreUnavailableException"/>.</summary>
    public async Task<bool> DeleteAsync(CallerIdentity? caller, string id)
    {
        var key = StoreKey(caller, id);
        // A deletion marker or an expired entry is no response: only a real one counts as deleted.
        var existed = Decode(await store.GetAsync(key).ConfigureAwait(false)) is not null;
        await store.DeleteAsync(key).ConfigureAwait(false);
        return existed;
    }

    /// <summary><c>{"v":1,"response":{…},"history":{…},"input_items":[…]}</c>, the history in the conversations' own encoding.</summary>
    internal static byte[] Encode(byte[] response, ConversationHistory history, byte[] inputItems)
    {
        var buffer = new ArrayBufferWriter<byte>(response.Length + 1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("v"u8, Version);
            w.WritePropertyName("response"u8);
            w.WriteRawValue(response, skipInputValidation: true);
            w.WritePropertyName("history"u8);
            w.WriteRawValue(history.Encode(), skipInputValidation: true);
            w.WritePropertyName("input_items"u8);
            w.WriteRawValue(inputItems, skipInputValidation: true);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Null for nothing, a deletion marker, or anything that is not a stored response of this version.</summary>
    internal static StoredResponse? Decode(byte[]? bytes)
    {
        if (bytes is not { Length: > 0 }) return null;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("v"u8, out var v) || !v.TryGetInt32(out var version) || version != Version) return null;
            if (!root.TryGetProperty("response"u8, out var response) || response.ValueKind != JsonValueKind.Object) return null;
            if (!root.TryGetProperty("history"u8, out var h) || ConversationHistory.Decode(JsonMarshal.GetRawUtf8Value(h).ToArray()) is not { } history) return null;
            // Added to version 1 later: a response stored before has no items to list.
            var items = root.TryGetProperty("input_items"u8, out var i) && i.ValueKind == JsonValueKind.Array ? JsonMarshal.GetRawUtf8Value(i).ToArray() : "[]"u8.ToArray();
            return new StoredResponse(JsonMarshal.GetRawUtf8Value(response).ToArray(), history, items);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
