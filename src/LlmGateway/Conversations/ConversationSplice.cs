using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Conversations;

/// <summary>
/// The request body with the history in it: the bytes before and after the <c>messages</c> array are
/// kept exactly as the client sent them, and the array becomes the system prompt, the stored turns,
/// then the request's own messages (each one byte-for-byte too). Nothing is re-serialized.
/// </summary>
public static class ConversationSplice
{
    /// <summary>The request's messages, split into its system prompt (system and developer messages) and the rest, in order.</summary>
    public sealed record RequestMessages(List<byte[]> System, List<byte[]> Others, int ArrayStart, int ArrayEnd);

    /// <summary>Finds the top-level <c>messages</c> array of an already-validated body; a 400 when it appears twice.</summary>
    public static RequestMessages? Split(ReadOnlySpan<byte> body, out ApiError? error)
    {
        error = null;
        int start = -1, end = -1;
        List<byte[]> system = [], others = [];
        // The body is an object (ChatRequest checked it is one); every "messages" in it is looked at.
        if (!JsonScanner.TryFind(body, "messages"u8, out var reader)) return new RequestMessages(system, others, start, end);
        do
        {
            if (start >= 0)
            {
                // Which copy would the upstream read? Refuse rather than guess.
                error = ApiError.InvalidRequest("'messages' appears more than once in the request body.", "messages");
                return null;
            }
            start = (int)reader.TokenStartIndex;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var from = (int)reader.TokenStartIndex;
                reader.Skip();
                var message = body[from..(int)reader.BytesConsumed].ToArray();
                (IsSystemPrompt(message) ? system : others).Add(message);
            }
            end = (int)reader.BytesConsumed;
        }
        while (JsonScanner.FindNext(ref reader, "messages"u8));
        return new RequestMessages(system, others, start, end);
    }

    private static bool IsSystemPrompt(byte[] message) =>
        ConversationHistory.RoleIs(message, "system"u8) || ConversationHistory.RoleIs(message, "developer"u8);

    /// <summary><paramref name="body"/> with its messages array replaced by <paramref name="messages"/>.</summary>
    public static byte[] Build(ReadOnlySpan<byte> body, RequestMessages split, IEnumerable<byte[]> messages)
    {
        var buffer = new ArrayBufferWriter<byte>(body.Length + 4096);
        buffer.Write(body[..split.ArrayStart]);
        buffer.Write("["u8);
        var first = true;
        foreach (var m in messages)
        {
            if (!first) buffer.Write(","u8);
            buffer.Write(m);
            first = false;
        }
        buffer.Write("]"u8);
        buffer.Write(body[split.ArrayEnd..]);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// The assistant message to keep from a chat.completion (the first choice): role, content, refusal
    /// and tool calls, and none of the response-only fields (annotations, logprobs) that an upstream
    /// could refuse in a request. Null when there is no message to keep.
    /// </summary>
    public static byte[]? AssistantMessage(ReadOnlySpan<byte> completion)
    {
        try
        {
            var reader = new Utf8JsonReader(completion);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (!doc.RootElement.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0) return null;
            if (!choices[0].TryGetProperty("message"u8, out var message) || message.ValueKind != JsonValueKind.Object) return null;

            var hasContent = message.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String;
            var hasCalls = message.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array && calls.GetArrayLength() > 0;
            var hasRefusal = message.TryGetProperty("refusal"u8, out var refusal) && refusal.ValueKind == JsonValueKind.String;
            if (!hasContent && !hasCalls && !hasRefusal) return null;

            var buffer = new ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("role"u8, "assistant"u8);
                if (hasContent) w.WriteString("content"u8, content.GetString());
                else w.WriteNull("content"u8);
                if (hasRefusal) w.WriteString("refusal"u8, refusal.GetString());
                if (hasCalls)
                {
                    w.WritePropertyName("tool_calls"u8);
                    calls.WriteTo(w);
                }
                w.WriteEndObject();
            }
            return buffer.WrittenSpan.ToArray();
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
