using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Messages;

/// <summary>
/// A chat.completion (the gateway's answer, whichever provider gave it) as an Anthropic Message:
/// <c>{"id":"msg_…","type":"message","role":"assistant","model":…,"content":[…],"stop_reason":…,"stop_sequence":null,"usage":{…}}</c>.
/// The text is one text block, each tool call a tool_use block after it, its JSON arguments parsed
/// into <c>input</c>. finish_reason maps to stop_reason (<see cref="StopReason"/>).
/// </summary>
public static class MessageResponseTranslator
{
    /// <summary>
    /// finish_reason as stop_reason. Chat says "stop" both for a natural end and for a stop sequence
    /// and doesn't say which sequence matched, so both are end_turn with stop_sequence null.
    /// </summary>
    public static string StopReason(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    public static byte[] Translate(ReadOnlySpan<byte> completion, string requestedModel)
    {
        var reader = new Utf8JsonReader(completion);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;

        JsonElement message = default;
        string? finish = null;
        if (root.TryGetProperty("choices"u8, out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0)
        {
            var choice = choices[0];
            choice.TryGetProperty("message"u8, out message);
            finish = String(choice, "finish_reason"u8);
        }

        var buffer = new ArrayBufferWriter<byte>(completion.Length + 256);
        using (var w = new Utf8JsonWriter(buffer, ApiError.JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("id"u8, MessageId(String(root, "id"u8)));
            w.WriteString("type"u8, "message"u8);
            w.WriteString("role"u8, "assistant"u8);
            w.WriteString("model"u8, String(root, "model"u8) ?? requestedModel);
            w.WriteStartArray("content"u8);
            var refused = false;
            if (message.ValueKind == JsonValueKind.Object)
            {
                var text = ContentText(message);
                if (text.Length == 0 && String(message, "refusal"u8) is { Length: > 0 } refusal)
                {
                    text = refusal;
                    refused = true;
                }
                if (text.Length > 0) WriteTextBlock(w, text);
                if (message.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
                {
                    foreach (var call in calls.EnumerateArray()) WriteToolUse(w, call);
                }
            }
            w.WriteEndArray();
            w.WriteString("stop_reason"u8, refused ? "refusal" : StopReason(finish));
            w.WriteNull("stop_sequence"u8);
            WriteUsage(w, root.TryGetProperty("usage"u8, out var usage) ? Usage.From(usage) : default);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Anthropic's ids look like msg_01XFDUDYJgAACzvnptvVoYEL: the chat id's own characters after the
    /// prefix, so the same answer (a cache hit, a log line) keeps a recognisable id.
    /// </summary>
    public static string MessageId(string? chatId)
    {
        if (chatId is { Length: > 0 })
        {
            var start = chatId.StartsWith("chatcmpl-", StringComparison.Ordinal) ? "chatcmpl-".Length : 0;
            Span<char> chars = stackalloc char[Math.Min(chatId.Length - start, 64)];
            var n = 0;
            foreach (var c in chatId.AsSpan(start))
            {
                if (n == chars.Length) break;
                if (char.IsAsciiLetterOrDigit(c) || c is '_' or '-') chars[n++] = c;
            }
            if (n > 0) return string.Concat("msg_", chars[..n]);
        }
        return Http.RandomIds.New("msg_");
    }

    internal static void WriteTextBlock(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type"u8, "text"u8);
        w.WriteString("text"u8, text);
        w.WriteEndObject();
    }

    private static void WriteToolUse(Utf8JsonWriter w, JsonElement call)
    {
        if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function"u8, out var fn) || fn.ValueKind != JsonValueKind.Object) return;
        w.WriteStartObject();
        w.WriteString("type"u8, "tool_use"u8);
        w.WriteString("id"u8, ToolUseId(String(call, "id"u8)));
        w.WriteString("name"u8, String(fn, "name"u8) ?? "");
        w.WritePropertyName("input"u8);
        WriteInput(w, String(fn, "arguments"u8));
        w.WriteEndObject();
    }

    /// <summary>Tool call ids are kept (the client sends them back in tool_result); a missing one gets Anthropic's prefix.</summary>
    internal static string ToolUseId(string? id) => id is { Length: > 0 } ? id : Http.RandomIds.New("toolu_");

    /// <summary>
    /// The arguments string as the input object. A model that produced no arguments gets {}; one that
    /// produced something that isn't a JSON object gets it kept as a string, so the client's schema
    /// check reports it rather than the gateway inventing an input.
    /// </summary>
    internal static void WriteInput(Utf8JsonWriter w, string? arguments)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            w.WriteStartObject();
            w.WriteEndObject();
            return;
        }
        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                parsed.RootElement.WriteTo(w);
                return;
            }
        }
        catch (JsonException)
        {
        }
        w.WriteStringValue(arguments);
    }

    /// <summary>message.content as text: a string, or the text parts of an array.</summary>
    private static string ContentText(JsonElement message)
    {
        if (!message.TryGetProperty("content"u8, out var content)) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) return "";
        var text = new System.Text.StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (String(part, "text"u8) is { } t) text.Append(t);
        }
        return text.ToString();
    }

    internal static void WriteUsage(Utf8JsonWriter w, Usage usage)
    {
        w.WriteStartObject("usage"u8);
        w.WriteNumber("input_tokens"u8, usage.Input);
        w.WriteNumber("cache_creation_input_tokens"u8, usage.CacheCreation);
        w.WriteNumber("cache_read_input_tokens"u8, usage.CacheRead);
        w.WriteNumber("output_tokens"u8, usage.Output);
        w.WriteEndObject();
    }

    internal static string? String(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>
    /// Chat usage in Anthropic's terms. Chat's prompt_tokens count every prompt token; Anthropic's
    /// input_tokens leave out those read from or written to the prompt cache, which it reports apart
    /// (the gateway's chat usage names them in prompt_tokens_details.cached_tokens and cache_creation_tokens).
    /// </summary>
    internal readonly record struct Usage(int Input, int Output, int CacheRead, int CacheCreation)
    {
        public static Usage From(JsonElement usage)
        {
            var prompt = Int(usage, "prompt_tokens"u8);
            var output = Int(usage, "completion_tokens"u8);
            int read = 0, write = 0;
            if (usage.ValueKind == JsonValueKind.Object && usage.TryGetProperty("prompt_tokens_details"u8, out var details))
            {
                read = Int(details, "cached_tokens"u8);
                write = Int(details, "cache_creation_tokens"u8);
            }
            return new Usage(Math.Max(0, prompt - read - write), output, read, write);
        }

        private static int Int(JsonElement obj, ReadOnlySpan<byte> name) =>
            obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i > 0 ? i : 0;
    }
}
