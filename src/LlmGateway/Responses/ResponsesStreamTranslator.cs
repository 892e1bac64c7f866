using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Responses;

/// <summary>
/// Turns a chat.completion.chunk stream, fed one chunk at a time, into the Responses API's event stream,
/// written as SSE (<c>event: …</c> and <c>data: {…}</c>) to <paramref name="output"/>:
/// <code>
/// response.created, response.in_progress
///   response.output_item.added (message), response.content_part.added,
///   response.output_text.delta …, response.output_text.done, response.content_part.done, response.output_item.done
///   response.output_item.added (function_call), response.function_call_arguments.delta …,
///   response.function_call_arguments.done, response.output_item.done
/// response.completed (or response.incomplete when the output limit cut the answer) | response.failed
/// </code>
/// Every event has a <c>sequence_number</c> from 0; item events carry <c>output_index</c>, <c>item_id</c>
/// and, for text, <c>content_index</c>. The snapshot in the last event is <see cref="Response"/>.
/// </summary>
public sealed class ResponsesStreamTranslator(ResponseObject response, IBufferWriter<byte> output, TimeProvider time)
{
    private int _sequence;
    private bool _started;
    private bool _ended;
    private MessageItem? _message;
    private int _messageIndex;
    private ContentPart? _part;
    private string? _finishReason;

    /// <summary>Function calls by their chat index; they stay open until the answer ends (chat streams may interleave them).</summary>
    private readonly Dictionary<int, (FunctionCallItem Item, int OutputIndex)> _calls = [];
    private readonly List<(FunctionCallItem Item, int OutputIndex)> _openCalls = [];

    public ResponseObject Response { get; } = response;

    /// <summary>True once a terminal event (completed, incomplete or failed) was written.</summary>
    public bool Ended => _ended;

    /// <summary>response.created and response.in_progress.</summary>
    public void Start()
    {
        if (_started) return;
        _started = true;
        WriteResponseEvent("response.created");
        WriteResponseEvent("response.in_progress");
    }

    /// <summary>One chat.completion.chunk (content, tool calls, finish_reason, or usage). False when it is not JSON.</summary>
    public bool Chunk(ReadOnlySpan<byte> chunk)
    {
        Start();
        if (ResponsesJson.Parse(chunk) is not { } doc) return false;
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return false;
            if (root.TryGetProperty("usage"u8, out var usage) && ResponseUsage.FromChat(usage) is { } u) Response.Usage = u;
            if (!root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array) return true;
            foreach (var choice in choices.EnumerateArray())
            {
                // Responses has one answer per request; the chat request asks for one (n is never set).
                if (choice.ValueKind != JsonValueKind.Object) continue;
                if (choice.TryGetProperty("index"u8, out var ci) && ci.ValueKind == JsonValueKind.Number && ci.GetInt32() != 0) continue;
                if (choice.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object)
                {
                    if (delta.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
                        Text(text, refusal: false);
                    if (delta.TryGetProperty("refusal"u8, out var refusal) && refusal.ValueKind == JsonValueKind.String && refusal.GetString() is { Length: > 0 } r)
                        Text(r, refusal: true);
                    if (delta.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
                    {
                        var position = 0;
                        foreach (var call in calls.EnumerateArray())
                        {
                            if (call.ValueKind == JsonValueKind.Object) ToolCall(call, position);
                            position++;
                        }
                    }
                }
                if (choice.TryGetProperty("finish_reason"u8, out var finish) && finish.ValueKind == JsonValueKind.String) _finishReason = finish.GetString();
            }
            return true;
        }
    }

    /// <summary>The upstream ended cleanly: close what is open, then response.completed (or response.incomplete).</summary>
    public void Complete()
    {
        if (_ended) return;
        Start();
        Response.Finish(_finishReason, time.GetUtcNow().ToUnixTimeSeconds());
        var itemStatus = Response.Status == ResponseStatuses.Incomplete ? ResponseStatuses.Incomplete : ResponseStatuses.Completed;
        CloseMessage(itemStatus);
        foreach (var (item, index) in _openCalls)
        {
            item.Status = itemStatus;
            Write("response.function_call_arguments.done", w =>
            {
                w.WriteString("item_id"u8, item.Id);
                w.WriteNumber("output_index"u8, index);
                w.WriteString("name"u8, item.Name);
                w.WriteString("arguments"u8, item.Arguments.ToString());
            });
            WriteItemEvent("response.output_item.done", item, index);
        }
        _openCalls.Clear();
        _ended = true;
        WriteResponseEvent(Response.Status == ResponseStatuses.Incomplete ? "response.incomplete" : "response.completed");
    }

    /// <summary>
    /// The stream broke after it started: response.failed with the error, the items left as they were
    /// (in progress), so no client takes the partial answer for a complete one.
    /// </summary>
    public void Fail(ApiError error)
    {
        if (_ended) return;
        Start();
        _ended = true;
        Response.Status = ResponseStatuses.Failed;
        Response.Error = error;
        WriteResponseEvent("response.failed");
    }

    private void Text(string delta, bool refusal)
    {
        if (_message is null)
        {
            _messageIndex = Response.Output.Count;
            _message = new MessageItem(ResponseIds.ItemId(Response.Id, "msg_", _messageIndex));
            Response.Output.Add(_message);
            WriteItemEvent("response.output_item.added", _message, _messageIndex);
        }
        if (_part is not null && _part.IsRefusal != refusal) ClosePart();
        if (_part is null)
        {
            _part = new ContentPart(refusal);
            _message.Content.Add(_part);
            WritePartEvent("response.content_part.added", _part);
        }
        _part.Text.Append(delta);
        var contentIndex = _message.Content.Count - 1;
        Write(refusal ? "response.refusal.delta" : "response.output_text.delta", w =>
        {
            w.WriteString("item_id"u8, _message.Id);
            w.WriteNumber("output_index"u8, _messageIndex);
            w.WriteNumber("content_index"u8, contentIndex);
            w.WriteString("delta"u8, delta);
            if (!refusal)
            {
                w.WriteStartArray("logprobs"u8);
                w.WriteEndArray();
            }
        });
    }

    private void ToolCall(JsonElement call, int position)
    {
        var chatIndex = call.TryGetProperty("index"u8, out var ix) && ix.ValueKind == JsonValueKind.Number && ix.TryGetInt32(out var i) ? i : position;
        var fn = call.TryGetProperty("function"u8, out var f) && f.ValueKind == JsonValueKind.Object ? f : default;
        var name = fn.ValueKind == JsonValueKind.Object && fn.TryGetProperty("name"u8, out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        var arguments = fn.ValueKind == JsonValueKind.Object && fn.TryGetProperty("arguments"u8, out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;

        if (!_calls.TryGetValue(chatIndex, out var open))
        {
            // Text before a call is a finished message: Responses puts the call in an item after it.
            CloseMessage(ResponseStatuses.Completed);
            var outputIndex = Response.Output.Count;
            var callId = call.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String && id.GetString() is { Length: > 0 } given
                ? given
                : ResponseIds.CallId(Response.Id, outputIndex);
            var item = new FunctionCallItem(ResponseIds.ItemId(Response.Id, "fc_", outputIndex), callId, name ?? "");
            Response.Output.Add(item);
            open = (item, outputIndex);
            _calls[chatIndex] = open;
            _openCalls.Add(open);
            WriteItemEvent("response.output_item.added", item, outputIndex);
        }
        else if (open.Item.Name.Length == 0 && name is { Length: > 0 })
        {
            open.Item.Name = name;
        }

        if (arguments is { Length: > 0 })
        {
            open.Item.Arguments.Append(arguments);
            Write("response.function_call_arguments.delta", w =>
            {
                w.WriteString("item_id"u8, open.Item.Id);
                w.WriteNumber("output_index"u8, open.OutputIndex);
                w.WriteString("delta"u8, arguments);
            });
        }
    }

    private void ClosePart()
    {
        if (_part is null || _message is null) return;
        var part = _part;
        var contentIndex = _message.Content.Count - 1;
        if (part.IsRefusal)
        {
            Write("response.refusal.done", w =>
            {
                w.WriteString("item_id"u8, _message.Id);
                w.WriteNumber("output_index"u8, _messageIndex);
                w.WriteNumber("content_index"u8, contentIndex);
                w.WriteString("refusal"u8, part.Text.ToString());
            });
        }
        else
        {
            Write("response.output_text.done", w =>
            {
                w.WriteString("item_id"u8, _message.Id);
                w.WriteNumber("output_index"u8, _messageIndex);
                w.WriteNumber("content_index"u8, contentIndex);
                w.WriteString("text"u8, part.Text.ToString());
                w.WriteStartArray("logprobs"u8);
                w.WriteEndArray();
            });
        }
        WritePartEvent("response.content_part.done", part);
        _part = null;
    }

    private void CloseMessage(string status)
    {
        if (_message is null) return;
        ClosePart();
        _message.Status = status;
        WriteItemEvent("response.output_item.done", _message, _messageIndex);
        _message = null;
    }

    private void WritePartEvent(string type, ContentPart part)
    {
        var contentIndex = _message!.Content.IndexOf(part);
        Write(type, w =>
        {
            w.WriteString("item_id"u8, _message.Id);
            w.WriteNumber("output_index"u8, _messageIndex);
            w.WriteNumber("content_index"u8, contentIndex);
            w.WritePropertyName("part"u8);
            if (type == "response.content_part.added")
            {
                // The part as it starts: empty. Written fresh, since the text is appended to right after.
                new ContentPart(part.IsRefusal).WriteTo(w);
            }
            else
            {
                part.WriteTo(w);
            }
        });
    }

    private void WriteItemEvent(string type, OutputItem item, int outputIndex) => Write(type, w =>
    {
        w.WriteNumber("output_index"u8, outputIndex);
        w.WritePropertyName("item"u8);
        item.WriteTo(w);
    });

    private void WriteResponseEvent(string type) => Write(type, w =>
    {
        w.WritePropertyName("response"u8);
        Response.WriteTo(w);
    });

    private static readonly byte[] s_event = "event: "u8.ToArray();
    private static readonly byte[] s_data = "\ndata: "u8.ToArray();
    private static readonly byte[] s_end = "\n\n"u8.ToArray();

    private void Write(string type, Action<Utf8JsonWriter> fields)
    {
        output.Write(s_event);
        System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.ASCII, type.AsSpan(), output);
        output.Write(s_data);
        using (var w = new Utf8JsonWriter(output, ResponsesJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, type);
            w.WriteNumber("sequence_number"u8, _sequence++);
            fields(w);
            w.WriteEndObject();
        }
        output.Write(s_end);
    }
}
