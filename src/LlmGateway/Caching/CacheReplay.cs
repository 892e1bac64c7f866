using System.Buffers;
using System.Text.Json;
using LlmGateway.Providers;

namespace LlmGateway.Caching;

/// <summary>
/// Replays a cached chat.completion as the chunks of a stream, the way OpenAI streams an answer:
/// per choice a role chunk, a chunk with the content (and tool calls, each with its index), a
/// finish chunk; then the usage chunk (empty choices) only when the client asked for it.
/// </summary>
public static class CacheReplay
{
    /// <summary>
    /// The chunks as stream events: content chunks, then the usage chunk (empty choices) marked as
    /// usage, so each ingress decides whether its client gets it, as with an upstream's stream.
    /// </summary>
    public static List<(StreamEventKind Kind, byte[] Data)> Events(ReadOnlySpan<byte> completion)
    {
        var chunks = Chunks(completion, includeUsage: true, out var hasUsage);
        var events = new List<(StreamEventKind, byte[])>(chunks.Count);
        for (var i = 0; i < chunks.Count; i++)
        {
            events.Add((hasUsage && i == chunks.Count - 1 ? StreamEventKind.Usage : StreamEventKind.Content, chunks[i]));
        }
        return events;
    }

    public static List<byte[]> Chunks(ReadOnlySpan<byte> completion, bool includeUsage) => Chunks(completion, includeUsage, out _);

    private static List<byte[]> Chunks(ReadOnlySpan<byte> completion, bool includeUsage, out bool hasUsage)
    {
        hasUsage = false;
        var reader = new Utf8JsonReader(completion);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        var header = new Header(
            root.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String ? id.GetString()! : "chatcmpl-cached",
            root.TryGetProperty("created"u8, out var c) && c.TryGetInt64(out var created) ? created : 0,
            root.TryGetProperty("model"u8, out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "",
            root.TryGetProperty("system_fingerprint"u8, out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null);

        var chunks = new List<byte[]>(4);
        if (root.TryGetProperty("choices"u8, out var choices) && choices.ValueKind == JsonValueKind.Array)
        {
            var position = 0;
            foreach (var choice in choices.EnumerateArray())
            {
                var index = choice.TryGetProperty("index"u8, out var ix) && ix.TryGetInt32(out var i) ? i : position;
                position++;
                choice.TryGetProperty("message"u8, out var message);
                var finish = choice.TryGetProperty("finish_reason"u8, out var fr) && fr.ValueKind == JsonValueKind.String ? fr.GetString()! : "stop";

                chunks.Add(Chunk(header, index, null, static (w, message) =>
                {
                    w.WriteString("role"u8, message.ValueKind == JsonValueKind.Object && message.TryGetProperty("role"u8, out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : "assistant");
                    w.WriteString("content"u8, ""u8);
                }, message));

                if (message.ValueKind == JsonValueKind.Object && HasAnswer(message))
                {
                    chunks.Add(Chunk(header, index, null, static (w, message) =>
                    {
                        if (message.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String) w.WriteString("content"u8, content.GetString());
                        if (message.TryGetProperty("refusal"u8, out var refusal) && refusal.ValueKind == JsonValueKind.String) w.WriteString("refusal"u8, refusal.GetString());
                        if (message.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
                        {
                            w.WriteStartArray("tool_calls"u8);
                            var k = 0;
                            foreach (var call in calls.EnumerateArray())
                            {
                                // Streamed tool calls carry their index; the message form does not.
                                w.WriteStartObject();
                                w.WriteNumber("index"u8, k++);
                                foreach (var p in call.EnumerateObject()) p.WriteTo(w);
                                w.WriteEndObject();
                            }
                            w.WriteEndArray();
                        }
                    }, message));
                }

                chunks.Add(Chunk(header, index, finish, static (_, _) => { }, message));
            }
        }

        if (includeUsage && root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer))
            {
                header.WriteStart(w);
                w.WriteStartArray("choices"u8);
                w.WriteEndArray();
                w.WritePropertyName("usage"u8);
                usage.WriteTo(w);
                w.WriteEndObject();
            }
            chunks.Add(buffer.WrittenSpan.ToArray());
            hasUsage = true;
        }
        return chunks;
    }

    private static bool HasAnswer(JsonElement message) =>
        (message.TryGetProperty("content"u8, out var c) && c.ValueKind == JsonValueKind.String && !c.ValueEquals(""u8)) ||
        (message.TryGetProperty("refusal"u8, out var r) && r.ValueKind == JsonValueKind.String) ||
        (message.TryGetProperty("tool_calls"u8, out var t) && t.ValueKind == JsonValueKind.Array && t.GetArrayLength() > 0);

    private static byte[] Chunk(Header header, int index, string? finish, Action<Utf8JsonWriter, JsonElement> delta, JsonElement message)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            header.WriteStart(w);
            w.WriteStartArray("choices"u8);
            w.WriteStartObject();
            w.WriteNumber("index"u8, index);
            w.WriteStartObject("delta"u8);
            delta(w, message);
            w.WriteEndObject();
            w.WriteNull("logprobs"u8);
            if (finish is null) w.WriteNull("finish_reason"u8); else w.WriteString("finish_reason"u8, finish);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private readonly record struct Header(string Id, long Created, string Model, string? Fingerprint)
    {
        public void WriteStart(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("id"u8, Id);
            w.WriteString("object"u8, "chat.completion.chunk"u8);
            w.WriteNumber("created"u8, Created);
            w.WriteString("model"u8, Model);
            if (Fingerprint is not null) w.WriteString("system_fingerprint"u8, Fingerprint);
        }
    }
}
