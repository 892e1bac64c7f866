using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using LlmGateway.ChatCompletions;

namespace LlmGateway.Conversations;

/// <summary>
/// One turn: the messages a request brought (its system messages aside) and the assistant's reply.
/// Messages stay the client's own JSON bytes, so what is replayed is exactly what was sent.
/// </summary>
public sealed class ConversationTurnMessages(List<byte[]> messages)
{
    public List<byte[]> Messages { get; } = messages;

    /// <summary>Estimated prompt tokens of these messages when they are replayed.</summary>
    public int Tokens { get; } = ConversationHistory.EstimateTokens(messages);

    /// <summary>
    /// A turn that starts with a tool result (or an assistant message) continues the turn before it: it
    /// answers that turn's tool calls, so the two are only ever dropped together (a tool message without
    /// the assistant message that called it is refused by OpenAI).
    /// </summary>
    public bool StartsGroup => Messages.Count == 0 || ConversationHistory.RoleIs(Messages[0], "user"u8);
}

/// <summary>
/// A stored conversation: the system prompt (its system and developer messages, always first and never
/// trimmed) and the turns in order. Stored as JSON under the caller's scope:
/// <c>{"v":1,"created_at":…,"updated_at":…,"system":[…],"turns":[{"messages":[…]},…]}</c>.
/// </summary>
public sealed class ConversationHistory
{
    private const int Version = 1;

    public List<byte[]> System { get; set; } = [];
    public List<ConversationTurnMessages> Turns { get; } = [];

    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }

    public int Tokens
    {
        get
        {
            var tokens = EstimateTokens(System);
            foreach (var turn in Turns) tokens += turn.Tokens;
            return tokens;
        }
    }

    /// <summary>
    /// Drops the oldest turns (a user turn together with the tool-result turns that continue it) until
    /// the history fits <paramref name="maxTokens"/> and <paramref name="maxTurns"/> (0 = no limit).
    /// The system prompt stays even when it alone is over the budget. Returns how many turns went.
    /// </summary>
    public int Trim(int maxTokens, int maxTurns)
    {
        var tokens = Tokens;
        var dropped = 0;
        while (Turns.Count > 0 && (tokens > maxTokens || (maxTurns > 0 && Turns.Count > maxTurns)))
        {
            var group = 0;
            do
            {
                tokens -= Turns[group].Tokens;
                group++;
            }
            while (group < Turns.Count && !Turns[group].StartsGroup);
            Turns.RemoveRange(0, group);
            dropped += group;
        }
        return dropped;
    }

    /// <summary>Every message in the order it is replayed: the system prompt, then each turn.</summary>
    public IEnumerable<byte[]> Messages()
    {
        foreach (var m in System) yield return m;
        foreach (var turn in Turns)
        {
            foreach (var m in turn.Messages) yield return m;
        }
    }

    public byte[] Encode()
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("v"u8, Version);
            w.WriteNumber("created_at"u8, CreatedAt);
            w.WriteNumber("updated_at"u8, UpdatedAt);
            w.WriteStartArray("system"u8);
            foreach (var m in System) w.WriteRawValue(m, skipInputValidation: true);
            w.WriteEndArray();
            w.WriteStartArray("turns"u8);
            foreach (var turn in Turns)
            {
                w.WriteStartObject();
                w.WriteStartArray("messages"u8);
                foreach (var m in turn.Messages) w.WriteRawValue(m, skipInputValidation: true);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Null for nothing, a deletion marker (empty) or anything that is not a history of this version.</summary>
    public static ConversationHistory? Decode(byte[]? bytes)
    {
        if (bytes is not { Length: > 0 }) return null;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("v"u8, out var v) || !v.TryGetInt32(out var version) || version != Version) return null;
            var history = new ConversationHistory
            {
                CreatedAt = root.GetProperty("created_at"u8).GetInt64(),
                UpdatedAt = root.GetProperty("updated_at"u8).GetInt64(),
                System = Raw(root.GetProperty("system"u8)),
            };
            foreach (var turn in root.GetProperty("turns"u8).EnumerateArray())
            {
                history.Turns.Add(new ConversationTurnMessages(Raw(turn.GetProperty("messages"u8))));
            }
            return history;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            return null;
        }
    }

    private static List<byte[]> Raw(JsonElement array)
    {
        var list = new List<byte[]>(array.GetArrayLength());
        foreach (var m in array.EnumerateArray()) list.Add(JsonMarshal.GetRawUtf8Value(m).ToArray());
        return list;
    }

    /// <summary>The chat path's own estimate (<see cref="TokenEstimator"/>): text and tool calls at four characters a token, plus framing per message and a flat cost per image.</summary>
    public static int EstimateTokens(List<byte[]> messages)
    {
        if (messages.Count == 0) return 0;
        long chars = 0;
        var images = 0;
        foreach (var bytes in messages)
        {
            var reader = new Utf8JsonReader(bytes);
            using var doc = JsonDocument.ParseValue(ref reader);
            var m = doc.RootElement;
            if (m.ValueKind != JsonValueKind.Object) continue;
            if (m.TryGetProperty("content"u8, out var content))
            {
                if (content.ValueKind == JsonValueKind.String) chars += content.GetString()!.Length;
                else if (content.ValueKind == JsonValueKind.Array)
                {
                    foreach (var part in content.EnumerateArray())
                    {
                        if (part.ValueKind != JsonValueKind.Object) continue;
                        if (part.TryGetProperty("text"u8, out var text) && text.ValueKind == JsonValueKind.String) chars += text.GetString()!.Length;
                        else if (part.TryGetProperty("type"u8, out var type) && type.ValueEquals("image_url"u8)) images++;
                    }
                }
            }
            if (m.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array) chars += JsonMarshal.GetRawUtf8Value(calls).Length;
        }
        // FromCharacters counts the reply's framing once per request; history is part of a prompt, not a reply.
        return TokenEstimator.FromCharacters(chars, messages.Count, images) - TokenEstimator.TokensPerReply;
    }

    /// <summary>Whether a message's role is <paramref name="role"/>.</summary>
    public static bool RoleIs(byte[] message, ReadOnlySpan<byte> role) =>
        JsonScanner.TryFind(message, "role"u8, out var reader) && reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(role);
}
