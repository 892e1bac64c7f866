using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Caching;

/// <summary>
/// Passes a stream through to the handler unchanged while keeping a copy of its chunks, so that a
/// streamed answer can be cached once it completed. It stops copying (and the answer is not cached)
/// when the chunks outgrow the budget it was given.
/// </summary>
internal sealed class CapturingStream : ChatStream
{
    private readonly ChatStream _inner;
    private readonly List<byte[]> _chunks = [];
    private readonly long _maxBytes;
    private long _bytes;

    public CapturingStream(ChatStream inner, IEnumerable<byte[]> alreadyRead, long maxBytes)
    {
        _inner = inner;
        _maxBytes = maxBytes;
        Usage = inner.Usage;
        FinishReason = inner.FinishReason;
        foreach (var chunk in alreadyRead) Keep(chunk);
    }

    /// <summary>
    /// Wraps the stream of an execution, counting the chunks the executor already read before it
    /// committed. Used by the cache and by conversations (which reuse the cache's capture when both apply).
    /// </summary>
    public static CapturingStream Over(ChatStream stream, Resilience.Execution execution, long maxBytes)
    {
        var alreadyRead = new List<byte[]>(execution.Pending.Count);
        foreach (var (kind, data) in execution.Pending)
        {
            if (kind is StreamEventKind.Chunk or StreamEventKind.Content or StreamEventKind.Usage) alreadyRead.Add(data);
        }
        return new CapturingStream(stream, alreadyRead, maxBytes);
    }

    /// <summary>The wrapped stream's: a cacheable stream coalesces the events that arrived together, as any other does.</summary>
    public override bool HasBufferedEvent => _inner.HasBufferedEvent;

    /// <summary>The upstream ended cleanly ([DONE]) and every chunk was kept.</summary>
    public bool Completed { get; private set; }

    public bool Overflowed { get; private set; }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        var ev = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
        Usage = _inner.Usage;
        FinishReason = _inner.FinishReason;
        switch (ev.Kind)
        {
            case StreamEventKind.Chunk or StreamEventKind.Content or StreamEventKind.Usage:
                if (!Overflowed) Keep(ev.Data.ToArray());
                break;
            case StreamEventKind.End:
                Completed = !Overflowed;
                break;
        }
        return ev;
    }

    private void Keep(byte[] chunk)
    {
        _bytes += chunk.Length;
        if (_bytes > _maxBytes)
        {
            Overflowed = true;
            _chunks.Clear();
            return;
        }
        _chunks.Add(chunk);
    }

    /// <summary>The answer as one chat.completion, or null when it is not complete or not readable.</summary>
    public byte[]? Assemble() => Completed ? StreamAssembler.Assemble(_chunks, Usage) : null;

    /// <summary>The inner stream belongs to the provider response, which disposes it.</summary>
    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// Turns the chunks of a streamed answer back into the chat.completion a non-streaming request would
/// have received: deltas concatenated per choice (content, refusal, tool call names and arguments by
/// index), the finish reason, and the usage chunk.
/// </summary>
public static class StreamAssembler
{
    public static byte[]? Assemble(IReadOnlyList<byte[]> chunks, TokenUsage fallbackUsage)
    {
        string? id = null, model = null, fingerprint = null, serviceTier = null;
        long created = 0;
        byte[]? usage = null;
        var choices = new SortedDictionary<int, Choice>();
        try
        {
            foreach (var chunk in chunks)
            {
                using var doc = JsonDocument.Parse(chunk);
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) return null;
                id ??= String(root, "id"u8);
                model ??= String(root, "model"u8);
                fingerprint ??= String(root, "system_fingerprint"u8);
                serviceTier ??= String(root, "service_tier"u8);
                if (created == 0 && root.TryGetProperty("created"u8, out var c) && c.ValueKind == JsonValueKind.Number) c.TryGetInt64(out created);
                if (root.TryGetProperty("usage"u8, out var u) && u.ValueKind == JsonValueKind.Object) usage = Encoding.UTF8.GetBytes(u.GetRawText());
                if (!root.TryGetProperty("choices"u8, out var cs) || cs.ValueKind != JsonValueKind.Array) continue;
                var position = 0;
                foreach (var choice in cs.EnumerateArray())
                {
                    var index = choice.TryGetProperty("index"u8, out var ix) && ix.TryGetInt32(out var i) ? i : position;
                    position++;
                    if (!choices.TryGetValue(index, out var state)) choices[index] = state = new Choice();
                    if (choice.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object) state.Add(delta);
                    if (String(choice, "finish_reason"u8) is { } finish) state.Finish = finish;
                }
            }
        }
        catch (JsonException)
        {
            return null;
        }
        if (choices.Count == 0) return null;
        foreach (var choice in choices.Values)
        {
            if (choice.Finish is null) return null; // not a complete answer
        }

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id"u8, id ?? "chatcmpl-cached");
            w.WriteString("object"u8, "chat.completion"u8);
            w.WriteNumber("created"u8, created);
            w.WriteString("model"u8, model ?? "");
            if (fingerprint is not null) w.WriteString("system_fingerprint"u8, fingerprint);
            if (serviceTier is not null) w.WriteString("service_tier"u8, serviceTier);
            w.WriteStartArray("choices"u8);
            foreach (var (index, choice) in choices) choice.WriteTo(w, index);
            w.WriteEndArray();
            if (usage is not null)
            {
                w.WritePropertyName("usage"u8);
                w.WriteRawValue(usage, skipInputValidation: true);
            }
            else
            {
                OpenAiJson.WriteUsage(w, fallbackUsage);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static string? String(JsonElement e, ReadOnlySpan<byte> name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private sealed class Choice
    {
        private string _role = "assistant";
        private StringBuilder? _content;
        private StringBuilder? _refusal;
        private SortedDictionary<int, ToolCall>? _tools;

        public string? Finish { get; set; }

        public void Add(JsonElement delta)
        {
            if (String(delta, "role"u8) is { Length: > 0 } role) _role = role;
            if (String(delta, "content"u8) is { } content) (_content ??= new StringBuilder()).Append(content);
            if (String(delta, "refusal"u8) is { } refusal) (_refusal ??= new StringBuilder()).Append(refusal);
            if (delta.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                var position = 0;
                foreach (var call in calls.EnumerateArray())
                {
                    var index = call.TryGetProperty("index"u8, out var ix) && ix.TryGetInt32(out var i) ? i : position;
                    position++;
                    _tools ??= [];
                    if (!_tools.TryGetValue(index, out var tool)) _tools[index] = tool = new ToolCall();
                    tool.Id ??= String(call, "id"u8);
                    tool.Type ??= String(call, "type"u8);
                    if (call.TryGetProperty("function"u8, out var f) && f.ValueKind == JsonValueKind.Object)
                    {
                        if (String(f, "name"u8) is { Length: > 0 } name) tool.Name = name;
                        if (String(f, "arguments"u8) is { } args) tool.Arguments.Append(args);
                    }
                }
            }
        }

        public void WriteTo(Utf8JsonWriter w, int index)
        {
            w.WriteStartObject();
            w.WriteNumber("index"u8, index);
            w.WriteStartObject("message"u8);
            w.WriteString("role"u8, _role);
            if (_content is null) w.WriteNull("content"u8); else w.WriteString("content"u8, _content.ToString());
            if (_refusal is null) w.WriteNull("refusal"u8); else w.WriteString("refusal"u8, _refusal.ToString());
            if (_tools is { Count: > 0 })
            {
                w.WriteStartArray("tool_calls"u8);
                foreach (var tool in _tools.Values)
                {
                    w.WriteStartObject();
                    w.WriteString("id"u8, tool.Id ?? "");
                    w.WriteString("type"u8, tool.Type ?? "function");
                    w.WriteStartObject("function"u8);
                    w.WriteString("name"u8, tool.Name ?? "");
                    w.WriteString("arguments"u8, tool.Arguments.ToString());
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
            w.WriteNull("logprobs"u8);
            w.WriteString("finish_reason"u8, Finish);
            w.WriteEndObject();
        }
    }

    private sealed class ToolCall
    {
        public string? Id;
        public string? Type;
        public string? Name;
        public readonly StringBuilder Arguments = new();
    }
}
