using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Messages;

/// <summary>
/// One streamed answer, fed as OpenAI chat.completion.chunk JSON one chunk at a time, written as
/// Anthropic's server-sent events in Anthropic's order:
/// <c>message_start</c> (with the estimated input tokens), <c>ping</c>, then per content block
/// <c>content_block_start</c> / <c>content_block_delta</c> (<c>text_delta</c> or <c>input_json_delta</c>)
/// / <c>content_block_stop</c>, then <c>message_delta</c> (stop_reason and the real usage, which chat
/// sends last) and <c>message_stop</c>. Blocks never overlap: a text block closes when a tool call
/// starts and a tool call's block when the next one starts. A failure after the start is one
/// <c>event: error</c> and no message_stop, so no client mistakes a broken answer for a complete one.
/// </summary>
public sealed class MessagesStreamTranslator(string requestedModel, int estimatedInputTokens)
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = ApiError.JsonOptions.Encoder, SkipValidation = true };

    // OpenAI tool call index -> Anthropic block index (OpenAI counts tool calls only, Anthropic every block).
    private readonly Dictionary<int, int> _toolBlocks = [];
    private Utf8JsonWriter? _writer;
    private bool _started;
    private bool _ended;
    private int _nextBlock;
    private int _openBlock = -1;
    private bool _openIsText;
    private int _openToolCall = -1;
    private string? _stopReason;
    private MessageResponseTranslator.Usage? _usage;

    /// <summary>The events the stream has written so far end with message_stop or an error.</summary>
    public bool Ended => _ended;

    /// <summary>The answer's first chunk has been seen (message_start is out).</summary>
    public bool Started => _started;

    /// <summary>Translates one chunk; writes nothing for a chunk that carries nothing Anthropic shows (the role chunk).</summary>
    public void Chunk(ReadOnlySpan<byte> chunk, IBufferWriter<byte> output)
    {
        if (_ended) return;
        var reader = new Utf8JsonReader(chunk);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        if (!_started) Start(output, MessageResponseTranslator.String(root, "id"u8), MessageResponseTranslator.String(root, "model"u8));

        if (root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            _usage = MessageResponseTranslator.Usage.From(usage);
        }
        if (!root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0) return;
        var choice = choices[0];
        if (choice.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object)
        {
            if (MessageResponseTranslator.String(delta, "content"u8) is { Length: > 0 } text) Text(output, text);
            if (MessageResponseTranslator.String(delta, "refusal"u8) is { Length: > 0 } refusal)
            {
                Text(output, refusal);
                _stopReason = "refusal";
            }
            if (delta.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray()) ToolCall(output, call);
            }
        }
        if (MessageResponseTranslator.String(choice, "finish_reason"u8) is { } finish && _stopReason != "refusal")
        {
            _stopReason = MessageResponseTranslator.StopReason(finish);
        }
    }

    /// <summary>The answer is complete: close the open block, then message_delta and message_stop.</summary>
    public void End(IBufferWriter<byte> output)
    {
        if (_ended) return;
        if (!_started) Start(output, null, null);
        CloseBlock(output);
        var w = Event(output, "message_delta"u8);
        w.WriteStartObject("delta"u8);
        w.WriteString("stop_reason"u8, _stopReason ?? "end_turn");
        w.WriteNull("stop_sequence"u8);
        w.WriteEndObject();
        // message_delta's usage is cumulative: the SDKs overwrite message_start's figures with these.
        MessageResponseTranslator.WriteUsage(w, _usage ?? new MessageResponseTranslator.Usage(estimatedInputTokens, 0, 0, 0));
        EndEvent(output);

        w = Event(output, "message_stop"u8);
        EndEvent(output);
        _ended = true;
    }

    /// <summary>The answer broke after the stream started: one error event, and nothing after it.</summary>
    public void Fail(ApiError error, string? requestId, IBufferWriter<byte> output)
    {
        if (_ended) return;
        output.Write(ErrorEvent(error, requestId));
        _ended = true;
    }

    /// <summary>The <c>event: error</c> that ends a stream which failed after it started, framed.</summary>
    public static byte[] ErrorEvent(ApiError error, string? requestId)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Write("event: error\ndata: "u8);
        buffer.Write(MessagesErrors.ToJson(error, requestId));
        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    private void Start(IBufferWriter<byte> output, string? chatId, string? model)
    {
        _started = true;
        var w = Event(output, "message_start"u8);
        w.WriteStartObject("message"u8);
        w.WriteString("id"u8, MessageResponseTranslator.MessageId(chatId));
        w.WriteString("type"u8, "message"u8);
        w.WriteString("role"u8, "assistant"u8);
        w.WriteString("model"u8, model ?? requestedModel);
        w.WriteStartArray("content"u8);
        w.WriteEndArray();
        w.WriteNull("stop_reason"u8);
        w.WriteNull("stop_sequence"u8);
        // Chat reports usage only at the end; until then the gateway's estimate stands in, as Anthropic's own count would.
        MessageResponseTranslator.WriteUsage(w, new MessageResponseTranslator.Usage(estimatedInputTokens, 0, 0, 0));
        w.WriteEndObject();
        EndEvent(output);

        w = Event(output, "ping"u8);
        EndEvent(output);
    }

    private void Text(IBufferWriter<byte> output, string text)
    {
        if (_openBlock < 0 || !_openIsText)
        {
            CloseBlock(output);
            _openBlock = _nextBlock++;
            _openIsText = true;
            var s = Event(output, "content_block_start"u8);
            s.WriteNumber("index"u8, _openBlock);
            s.WriteStartObject("content_block"u8);
            s.WriteString("type"u8, "text"u8);
            s.WriteString("text"u8, ""u8);
            s.WriteEndObject();
            EndEvent(output);
        }
        var w = Event(output, "content_block_delta"u8);
        w.WriteNumber("index"u8, _openBlock);
        w.WriteStartObject("delta"u8);
        w.WriteString("type"u8, "text_delta"u8);
        w.WriteString("text"u8, text);
        w.WriteEndObject();
        EndEvent(output);
    }

    private void ToolCall(IBufferWriter<byte> output, JsonElement call)
    {
        if (call.ValueKind != JsonValueKind.Object) return;
        var id = MessageResponseTranslator.String(call, "id"u8);
        int index;
        if (call.TryGetProperty("index"u8, out var i) && i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out var n)) index = n;
        else index = id is not null || _openToolCall < 0 ? _toolBlocks.Count : _openToolCall;
        call.TryGetProperty("function"u8, out var fn);
        var arguments = MessageResponseTranslator.String(fn, "arguments"u8);

        if (!_toolBlocks.TryGetValue(index, out var block))
        {
            CloseBlock(output);
            block = _nextBlock++;
            _toolBlocks[index] = block;
            _openBlock = block;
            _openIsText = false;
            _openToolCall = index;
            var s = Event(output, "content_block_start"u8);
            s.WriteNumber("index"u8, block);
            s.WriteStartObject("content_block"u8);
            s.WriteString("type"u8, "tool_use"u8);
            s.WriteString("id"u8, MessageResponseTranslator.ToolUseId(id));
            s.WriteString("name"u8, MessageResponseTranslator.String(fn, "name"u8) ?? "");
            // As Anthropic does: the input arrives as input_json_delta fragments; {} is the placeholder.
            s.WriteStartObject("input"u8);
            s.WriteEndObject();
            s.WriteEndObject();
            EndEvent(output);
        }
        if (string.IsNullOrEmpty(arguments)) return;
        // A fragment for a call whose block already closed (parallel calls interleaved by a provider)
        // still names its own block, which is how the SDKs accumulate input.
        var w = Event(output, "content_block_delta"u8);
        w.WriteNumber("index"u8, block);
        w.WriteStartObject("delta"u8);
        w.WriteString("type"u8, "input_json_delta"u8);
        w.WriteString("partial_json"u8, arguments);
        w.WriteEndObject();
        EndEvent(output);
    }

    private void CloseBlock(IBufferWriter<byte> output)
    {
        if (_openBlock < 0) return;
        var w = Event(output, "content_block_stop"u8);
        w.WriteNumber("index"u8, _openBlock);
        EndEvent(output);
        _openBlock = -1;
        _openToolCall = -1;
    }

    /// <summary>
    /// Writes <c>event: name\ndata: </c>, opens the data object and writes its <c>type</c>, which in Anthropic's
    /// events is always the event's name; <see cref="EndEvent"/> closes it.
    /// </summary>
    private Utf8JsonWriter Event(IBufferWriter<byte> output, ReadOnlySpan<byte> name)
    {
        WriteRaw(output, "event: "u8);
        WriteRaw(output, name);
        WriteRaw(output, "\ndata: "u8);
        if (_writer is null) _writer = new Utf8JsonWriter(output, s_options);
        else _writer.Reset(output);
        _writer.WriteStartObject();
        _writer.WriteString("type"u8, name);
        return _writer;
    }

    private void EndEvent(IBufferWriter<byte> output)
    {
        _writer!.WriteEndObject();
        _writer.Flush();
        WriteRaw(output, "\n\n"u8);
    }

    private static void WriteRaw(IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);
}
