using System.Buffers;
using System.Text.Json;

namespace LlmGateway.Providers.OpenAi;

/// <summary>Builds chat.completion.chunk JSON for answers that did not arrive as OpenAI chunks.</summary>
public static class OpenAiChunks
{
    /// <summary>A whole chat.completion turned into one chunk: message becomes delta, object becomes chunk.</summary>
    public static byte[] FromCompletion(ReadOnlySpan<byte> completion)
    {
        using var doc = JsonDocument.Parse(completion.ToArray());
        var buffer = new ArrayBufferWriter<byte>(completion.Length + 32);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.NameEquals("object"u8))
                {
                    w.WriteString("object"u8, "chat.completion.chunk"u8);
                }
                else if (p.NameEquals("usage"u8))
                {
                    continue;
                }
                else if (p.NameEquals("choices"u8) && p.Value.ValueKind == JsonValueKind.Array)
                {
                    w.WriteStartArray("choices"u8);
                    foreach (var choice in p.Value.EnumerateArray())
                    {
                        w.WriteStartObject();
                        foreach (var c in choice.EnumerateObject())
                        {
                            if (c.NameEquals("message"u8))
                            {
                                w.WritePropertyName("delta"u8);
                                c.Value.WriteTo(w);
                            }
                            else
                            {
                                c.WriteTo(w);
                            }
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                else
                {
                    p.WriteTo(w);
                }
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>
/// Writes the OpenAI chunks of one streamed answer (same id, created and model throughout), for
/// providers whose wire format is not OpenAI's: the mock and the native translators.
/// </summary>
/// <remarks><paramref name="choiceIndex"/> is the choice these chunks belong to: 0, or the index of one of <c>n</c> fanned-out answers.</remarks>
public sealed class ChunkBuilder(string id, long created, string model, int choiceIndex = 0)
{
    private readonly ArrayBufferWriter<byte> _buffer = new(512);

    public string Id => id;

    public byte[] Role() => Write(static (w, _) =>
    {
        w.WriteString("role"u8, "assistant"u8);
        w.WriteString("content"u8, ""u8);
    }, 0);

    public byte[] Content(string text) => Write(static (w, t) => w.WriteString("content"u8, t), text);

    /// <summary>The first delta of a tool call: its index, id, name and (usually empty) arguments.</summary>
    public byte[] ToolCallStart(int index, string callId, string name, string arguments = "") =>
        Write(static (w, s) =>
        {
            w.WriteStartArray("tool_calls"u8);
            w.WriteStartObject();
            w.WriteNumber("index"u8, s.index);
            w.WriteString("id"u8, s.callId);
            w.WriteString("type"u8, "function"u8);
            w.WriteStartObject("function"u8);
            w.WriteString("name"u8, s.name);
            w.WriteString("arguments"u8, s.arguments);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
        }, (index, callId, name, arguments));

    /// <summary>A fragment of a tool call's JSON arguments.</summary>
    public byte[] ToolCallArguments(int index, string fragment) =>
        Write(static (w, s) =>
        {
            w.WriteStartArray("tool_calls"u8);
            w.WriteStartObject();
            w.WriteNumber("index"u8, s.index);
            w.WriteStartObject("function"u8);
            w.WriteString("arguments"u8, s.fragment);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
        }, (index, fragment));

    public byte[] Finish(string finishReason) => Write(static (_, _) => { }, 0, finishReason);

    /// <summary>The usage-only chunk OpenAI sends last when stream_options.include_usage is set.</summary>
    public byte[] Usage(TokenUsage usage)
    {
        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            WriteHeader(w);
            w.WriteStartArray("choices"u8);
            w.WriteEndArray();
            OpenAiJson.WriteUsage(w, usage);
            w.WriteEndObject();
        }
        return _buffer.WrittenSpan.ToArray();
    }

    private byte[] Write<T>(Action<Utf8JsonWriter, T> delta, T state, string? finishReason = null)
    {
        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer))
        {
            WriteHeader(w);
            w.WriteStartArray("choices"u8);
            w.WriteStartObject();
            w.WriteNumber("index"u8, choiceIndex);
            w.WriteStartObject("delta"u8);
            delta(w, state);
            w.WriteEndObject();
            w.WriteNull("logprobs"u8);
            if (finishReason is null) w.WriteNull("finish_reason"u8);
            else w.WriteString("finish_reason"u8, finishReason);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return _buffer.WrittenSpan.ToArray();
    }

    private void WriteHeader(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, id);
        w.WriteString("object"u8, "chat.completion.chunk"u8);
        w.WriteNumber("created"u8, created);
        w.WriteString("model"u8, model);
    }
}

public static class OpenAiJson
{
    public static void WriteUsage(Utf8JsonWriter w, TokenUsage usage)
    {
        w.WriteStartObject("usage"u8);
        w.WriteNumber("prompt_tokens"u8, usage.Prompt);
        w.WriteNumber("completion_tokens"u8, usage.Completion);
        w.WriteNumber("total_tokens"u8, usage.Total);
        if (usage.CachedPrompt > 0 || usage.CacheWrite > 0)
        {
            w.WriteStartObject("prompt_tokens_details"u8);
            w.WriteNumber("cached_tokens"u8, usage.CachedPrompt);
            if (usage.CacheWrite > 0) w.WriteNumber("cache_creation_tokens"u8, usage.CacheWrite);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    /// <summary>A chat.completion with one choice: its text (null when it only calls tools) and its tool calls.</summary>
    public static byte[] Completion(string id, long created, string model, string? content, string finishReason, TokenUsage usage, IReadOnlyList<OpenAiToolCall> toolCalls) =>
        toolCalls.Count == 0
            ? Completion(id, created, model, content, finishReason, usage)
            : Completion(id, created, model, content, finishReason, usage, w => WriteToolCalls(w, toolCalls));

    /// <summary>message.tool_calls: each call's id, type, function name and arguments (a string of JSON).</summary>
    public static void WriteToolCalls(Utf8JsonWriter w, IReadOnlyList<OpenAiToolCall> toolCalls)
    {
        w.WriteStartArray("tool_calls"u8);
        for (var i = 0; i < toolCalls.Count; i++)
        {
            var call = toolCalls[i];
            w.WriteStartObject();
            w.WriteString("id"u8, call.Id);
            w.WriteString("type"u8, "function"u8);
            w.WriteStartObject("function"u8);
            w.WriteString("name"u8, call.Name);
            w.WriteString("arguments"u8, call.Arguments);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>A chat.completion with several choices (Gemini's candidates for <c>n</c>), indexed in order.</summary>
    public static byte[] Completion(string id, long created, string model, IReadOnlyList<OpenAiChoice> choices, TokenUsage usage)
    {
        if (choices.Count == 1) return Completion(id, created, model, choices[0].Content, choices[0].FinishReason, usage, choices[0].ToolCalls);
        var buffer = new ArrayBufferWriter<byte>(256 * choices.Count);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteHead(w, id, created, model);
            for (var i = 0; i < choices.Count; i++)
            {
                var c = choices[i];
                WriteChoice(w, i, c.Content, c.FinishReason, c.ToolCalls.Count > 0 ? tw => WriteToolCalls(tw, c.ToolCalls) : null);
            }
            w.WriteEndArray();
            WriteUsage(w, usage);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A chat.completion with one text choice (tool calls, when any, already in OpenAI's shape).</summary>
    public static byte[] Completion(string id, long created, string model, string? content, string finishReason, TokenUsage usage, Action<Utf8JsonWriter>? writeToolCalls = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256 + (content?.Length ?? 0));
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteHead(w, id, created, model);
            WriteChoice(w, 0, content, finishReason, writeToolCalls);
            w.WriteEndArray();
            WriteUsage(w, usage);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The object's start up to its open <c>choices</c> array.</summary>
    private static void WriteHead(Utf8JsonWriter w, string id, long created, string model)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, id);
        w.WriteString("object"u8, "chat.completion"u8);
        w.WriteNumber("created"u8, created);
        w.WriteString("model"u8, model);
        w.WriteStartArray("choices"u8);
    }

    private static void WriteChoice(Utf8JsonWriter w, int index, string? content, string finishReason, Action<Utf8JsonWriter>? writeToolCalls)
    {
        w.WriteStartObject();
        w.WriteNumber("index"u8, index);
        w.WriteStartObject("message"u8);
        w.WriteString("role"u8, "assistant"u8);
        if (content is null) w.WriteNull("content"u8); else w.WriteString("content"u8, content);
        w.WriteNull("refusal"u8);
        writeToolCalls?.Invoke(w);
        w.WriteEndObject();
        w.WriteNull("logprobs"u8);
        w.WriteString("finish_reason"u8, finishReason);
        w.WriteEndObject();
    }
}

/// <summary>One choice of a chat.completion: its text (null when it only calls tools), finish reason and tool calls.</summary>
public readonly record struct OpenAiChoice(string? Content, string FinishReason, IReadOnlyList<OpenAiToolCall> ToolCalls);

/// <summary>A tool call in OpenAI's shape: <see cref="Arguments"/> is the JSON object as a string.</summary>
public readonly record struct OpenAiToolCall(string Id, string Name, string Arguments);
