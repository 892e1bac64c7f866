using System.Buffers;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Responses;

/// <summary>
/// The request parameters a response object repeats back (OpenAI's Response echoes them), kept as the
/// client's own JSON so a GET much later returns exactly what was asked.
/// </summary>
public sealed class ResponseEcho
{
    private readonly Dictionary<string, byte[]> _fields = new(StringComparer.Ordinal);

    /// <summary>The fields a Response repeats; the rest of a request is not part of it.</summary>
    private static readonly string[] s_echoed =
    [
        "instructions", "max_output_tokens", "metadata", "parallel_tool_calls", "previous_response_id",
        "reasoning", "store", "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user",
        "safety_identifier", "prompt_cache_key", "service_tier",
    ];

    public static ResponseEcho From(JsonElement request)
    {
        var echo = new ResponseEcho();
        foreach (var name in s_echoed)
        {
            if (request.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
            {
                echo._fields[name] = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(v).ToArray();
            }
        }
        return echo;
    }

    public bool TryGet(string name, out byte[] json) => _fields.TryGetValue(name, out json!);

    /// <summary>Writes the field as the client sent it, else <paramref name="fallback"/> (raw JSON).</summary>
    internal void Write(Utf8JsonWriter w, string name, ReadOnlySpan<byte> fallback)
    {
        w.WritePropertyName(name);
        if (_fields.TryGetValue(name, out var json)) w.WriteRawValue(json, skipInputValidation: true);
        else w.WriteRawValue(fallback, skipInputValidation: true);
    }
}

/// <summary>Tokens as a Response reports them.</summary>
public readonly record struct ResponseUsage(int InputTokens, int OutputTokens, int CachedTokens = 0, int ReasoningTokens = 0)
{
    public int TotalTokens => InputTokens + OutputTokens;

    /// <summary>A chat.completion's (or a usage chunk's) <c>usage</c> object.</summary>
    public static ResponseUsage? FromChat(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object) return null;
        return new ResponseUsage(
            Int(usage, "prompt_tokens"u8),
            Int(usage, "completion_tokens"u8),
            usage.TryGetProperty("prompt_tokens_details"u8, out var pd) && pd.ValueKind == JsonValueKind.Object ? Int(pd, "cached_tokens"u8) : 0,
            usage.TryGetProperty("completion_tokens_details"u8, out var cd) && cd.ValueKind == JsonValueKind.Object ? Int(cd, "reasoning_tokens"u8) : 0);
    }

    private static int Int(JsonElement o, ReadOnlySpan<byte> name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : 0;

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("input_tokens"u8, InputTokens);
        w.WriteStartObject("input_tokens_details"u8);
        w.WriteNumber("cached_tokens"u8, CachedTokens);
        w.WriteEndObject();
        w.WriteNumber("output_tokens"u8, OutputTokens);
        w.WriteStartObject("output_tokens_details"u8);
        w.WriteNumber("reasoning_tokens"u8, ReasoningTokens);
        w.WriteEndObject();
        w.WriteNumber("total_tokens"u8, TotalTokens);
        w.WriteEndObject();
    }
}

public static class ResponseStatuses
{
    public const string InProgress = "in_progress";
    public const string Completed = "completed";
    public const string Incomplete = "incomplete";
    public const string Failed = "failed";
}

/// <summary>One entry of a response's <c>output</c>.</summary>
public abstract class OutputItem(string id)
{
    public string Id { get; } = id;
    public string Status { get; set; } = ResponseStatuses.InProgress;
    public abstract void WriteTo(Utf8JsonWriter w);

    /// <summary>The chat message this item adds to a conversation when it is replayed (null: it adds to the one before).</summary>
    internal abstract void AddTo(List<ChatReplay> messages);
}

/// <summary>A part of an assistant message: <c>output_text</c>, or a <c>refusal</c>.</summary>
public sealed class ContentPart(bool refusal)
{
    public bool IsRefusal { get; } = refusal;
    public StringBuilder Text { get; } = new();

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        if (IsRefusal)
        {
            w.WriteString("type"u8, "refusal"u8);
            w.WriteString("refusal"u8, Text.ToString());
        }
        else
        {
            w.WriteString("type"u8, "output_text"u8);
            w.WriteString("text"u8, Text.ToString());
            w.WriteStartArray("annotations"u8);
            w.WriteEndArray();
            w.WriteStartArray("logprobs"u8);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }
}

/// <summary>An assistant message item: <c>{"type":"message","role":"assistant","content":[…]}</c>.</summary>
public sealed class MessageItem(string id) : OutputItem(id)
{
    public List<ContentPart> Content { get; } = [];

    public override void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, Id);
        w.WriteString("type"u8, "message"u8);
        w.WriteString("status"u8, Status);
        w.WriteString("role"u8, "assistant"u8);
        w.WriteStartArray("content"u8);
        foreach (var part in Content) part.WriteTo(w);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    internal override void AddTo(List<ChatReplay> messages)
    {
        var text = new StringBuilder();
        foreach (var part in Content) text.Append(part.Text);
        messages.Add(new ChatReplay(text.ToString()));
    }
}

/// <summary>A function call item: <c>{"type":"function_call","call_id":…,"name":…,"arguments":…}</c>.</summary>
public sealed class FunctionCallItem(string id, string callId, string name) : OutputItem(id)
{
    public string CallId { get; } = callId;
    public string Name { get; set; } = name;
    public StringBuilder Arguments { get; } = new();

    public override void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, Id);
        w.WriteString("type"u8, "function_call"u8);
        w.WriteString("status"u8, Status);
        w.WriteString("arguments"u8, Arguments.ToString());
        w.WriteString("call_id"u8, CallId);
        w.WriteString("name"u8, Name);
        w.WriteEndObject();
    }

    internal override void AddTo(List<ChatReplay> messages)
    {
        // Calls join the assistant message before them, as Chat Completions has them.
        if (messages.Count == 0) messages.Add(new ChatReplay(null));
        messages[^1].Calls.Add(this);
    }
}

/// <summary>An assistant chat message being rebuilt from output items.</summary>
internal sealed class ChatReplay(string? text)
{
    public string? Text { get; } = text;
    public List<FunctionCallItem> Calls { get; } = [];
}

/// <summary>
/// A Response object (<c>"object":"response"</c>), as the non-streamed answer, as the snapshot in
/// <c>response.created</c> … <c>response.completed</c>, and as kept for GET.
/// </summary>
public sealed class ResponseObject(string id, long createdAt, string model, ResponseEcho echo)
{
    public string Id { get; } = id;
    public long CreatedAt { get; } = createdAt;
    public string Model { get; set; } = model;
    public ResponseEcho Echo { get; } = echo;
    public string Status { get; set; } = ResponseStatuses.InProgress;

    /// <summary>Why a response is incomplete: <c>max_output_tokens</c> or <c>content_filter</c>.</summary>
    public string? IncompleteReason { get; set; }
    public ApiError? Error { get; set; }
    public List<OutputItem> Output { get; } = [];
    public ResponseUsage? Usage { get; set; }
    public long? CompletedAt { get; set; }

    /// <summary>The finish_reason of the chat answer, as a response status (and the reason when incomplete).</summary>
    public void Finish(string? finishReason, long now)
    {
        (Status, IncompleteReason) = finishReason switch
        {
            "length" => (ResponseStatuses.Incomplete, "max_output_tokens"),
            "content_filter" => (ResponseStatuses.Incomplete, "content_filter"),
            _ => (ResponseStatuses.Completed, (string?)null),
        };
        if (Status == ResponseStatuses.Completed) CompletedAt = now;
    }

    /// <summary>
    /// The assistant's side of this turn as chat messages (one assistant message with its text and tool
    /// calls), for the next turn's <c>previous_response_id</c>.
    /// </summary>
    public List<byte[]> ToChatMessages()
    {
        var replays = new List<ChatReplay>();
        foreach (var item in Output) item.AddTo(replays);
        var messages = new List<byte[]>(replays.Count);
        foreach (var r in replays)
        {
            var buffer = new ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer, ResponsesJson.WriterOptions))
            {
                w.WriteStartObject();
                w.WriteString("role"u8, "assistant"u8);
                if (r.Text is not null) w.WriteString("content"u8, r.Text);
                else w.WriteNull("content"u8);
                if (r.Calls.Count > 0)
                {
                    w.WriteStartArray("tool_calls"u8);
                    foreach (var call in r.Calls)
                    {
                        w.WriteStartObject();
                        w.WriteString("id"u8, call.CallId);
                        w.WriteString("type"u8, "function"u8);
                        w.WriteStartObject("function"u8);
                        w.WriteString("name"u8, call.Name);
                        w.WriteString("arguments"u8, call.Arguments.ToString());
                        w.WriteEndObject();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            messages.Add(buffer.WrittenSpan.ToArray());
        }
        return messages;
    }

    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, ResponsesJson.WriterOptions))
        {
            WriteTo(w);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, Id);
        w.WriteString("object"u8, "response"u8);
        w.WriteNumber("created_at"u8, CreatedAt);
        w.WriteString("status"u8, Status);
        w.WriteBoolean("background"u8, false);
        if (CompletedAt is { } completed) w.WriteNumber("completed_at"u8, completed);
        else w.WriteNull("completed_at"u8);
        if (Error is { } error)
        {
            w.WriteStartObject("error"u8);
            w.WriteString("code"u8, ErrorCode(error));
            w.WriteString("message"u8, error.Message);
            w.WriteEndObject();
        }
        else w.WriteNull("error"u8);
        if (IncompleteReason is { } reason)
        {
            w.WriteStartObject("incomplete_details"u8);
            w.WriteString("reason"u8, reason);
            w.WriteEndObject();
        }
        else w.WriteNull("incomplete_details"u8);
        Echo.Write(w, "instructions", "null"u8);
        Echo.Write(w, "max_output_tokens", "null"u8);
        Echo.Write(w, "metadata", "{}"u8);
        w.WriteString("model"u8, Model);
        w.WriteStartArray("output"u8);
        foreach (var item in Output) item.WriteTo(w);
        w.WriteEndArray();
        Echo.Write(w, "parallel_tool_calls", "true"u8);
        Echo.Write(w, "previous_response_id", "null"u8);
        Echo.Write(w, "reasoning", """{"effort":null,"summary":null}"""u8);
        Echo.Write(w, "store", "true"u8);
        Echo.Write(w, "temperature", "1.0"u8);
        Echo.Write(w, "text", """{"format":{"type":"text"}}"""u8);
        Echo.Write(w, "tool_choice", "\"auto\""u8);
        Echo.Write(w, "tools", "[]"u8);
        Echo.Write(w, "top_p", "1.0"u8);
        Echo.Write(w, "truncation", "\"disabled\""u8);
        if (Usage is { } usage)
        {
            w.WritePropertyName("usage"u8);
            usage.WriteTo(w);
        }
        else w.WriteNull("usage"u8);
        foreach (var optional in s_optional)
        {
            if (Echo.TryGet(optional, out var json))
            {
                w.WritePropertyName(optional);
                w.WriteRawValue(json, skipInputValidation: true);
            }
        }
        w.WriteEndObject();
    }

    private static readonly string[] s_optional = ["user", "safety_identifier", "prompt_cache_key", "service_tier"];

    /// <summary>
    /// A failed response's <c>error.code</c>. OpenAI's codes for a response are few (server_error,
    /// rate_limit_exceeded, ...); the gateway's code is more precise and clients treat the field as a string.
    /// </summary>
    private static string ErrorCode(ApiError error) => error.Code ?? (error.Status >= 500 ? "server_error" : error.Type);
}
