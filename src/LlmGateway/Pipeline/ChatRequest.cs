using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>
/// A parsed Chat Completions request. The body stays a <see cref="JsonDocument"/> (pooled, read-only)
/// so unknown fields reach the upstream unchanged; only the few fields the gateway acts on are
/// read out here, once, and checked for type so bad input is a 400 and never a 500 later.
/// </summary>
public sealed class ChatRequest : GatewayRequest
{
    private ChatRequest(JsonDocument document, ReadOnlyMemory<byte> body) : base(document, body)
    {
    }

    public override RequestOperation Operation => RequestOperation.Chat;
    /// <summary>The client asked for the final usage chunk (<c>stream_options.include_usage</c>).</summary>
    public bool ClientWantsUsage { get; private set; }
    public double? Temperature { get; private set; }
    public long? Seed { get; private set; }
    public bool HasTools { get; private set; }
    public bool HasImages { get; private set; }
    public string? ResponseFormatType { get; private set; }
    public int MessageCount { get; private set; }
    public int ToolCount { get; private set; }

    /// <summary>Temperature 0 or a seed: what Cache:OnlyDeterministic lets the cache take.</summary>
    public override bool IsReproducible => Temperature == 0 || Seed is not null;

    /// <summary>Text of the last user message, for task-type patterns. Read lazily: most requests never need it.</summary>
    public override string LastUserText => _lastUserText ??= ReadLastUserText();
    private string? _lastUserText;

    /// <summary>Parses and checks a request body; returns the request or the 400 that explains what is wrong.</summary>
    public static ChatRequest? TryParse(ReadOnlyMemory<byte> body, out ApiError? error) =>
        TryParse(body, static (document, bytes) => new ChatRequest(document, bytes), out error);

    protected override ApiError? Read()
    {
        var root = Root;
        var textChars = 0L;
        var hasMessages = false;
        Span<char> name = stackalloc char[32]; // longer than every name read here
        foreach (var p in root.EnumerateObject())
        {
            var v = p.Value;
            switch (RequestJson.NameOf(p, name))
            {
                case "model":
                    if (ReadModel(v) is { } modelError) return modelError;
                    break;
                case "stream":
                    if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) Stream = v.GetBoolean();
                    else if (v.ValueKind != JsonValueKind.Null) return ApiError.InvalidRequest("'stream' must be a boolean.", "stream");
                    break;
                case "stream_options":
                    if (v.ValueKind == JsonValueKind.Object)
                    {
                        if (v.TryGetProperty("include_usage"u8, out var iu))
                        {
                            if (iu.ValueKind is JsonValueKind.True or JsonValueKind.False) ClientWantsUsage = iu.GetBoolean();
                            else if (iu.ValueKind != JsonValueKind.Null) return ApiError.InvalidRequest("'stream_options.include_usage' must be a boolean.", "stream_options.include_usage");
                        }
                    }
                    else if (v.ValueKind != JsonValueKind.Null) return ApiError.InvalidRequest("'stream_options' must be an object.", "stream_options");
                    break;
                case "max_tokens":
                case "max_completion_tokens":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var mt) || mt < 1)
                        return ApiError.InvalidRequest($"'{p.Name}' must be a positive integer.", p.Name);
                    if (p.NameEquals("max_completion_tokens"u8) || MaxTokens is null) MaxTokens = mt;
                    break;
                case "temperature":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var t) || t < 0 || t > 2)
                        return ApiError.InvalidRequest("'temperature' must be a number between 0 and 2.", "temperature");
                    Temperature = t;
                    break;
                case "top_p":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var tp) || tp < 0 || tp > 1)
                        return ApiError.InvalidRequest("'top_p' must be a number between 0 and 1.", "top_p");
                    break;
                case "n":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < 1)
                        return ApiError.InvalidRequest("'n' must be a positive integer.", "n");
                    N = n;
                    break;
                case "seed":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var seed))
                        return ApiError.InvalidRequest("'seed' must be an integer.", "seed");
                    Seed = seed;
                    break;
                case "tools":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Array) return ApiError.InvalidRequest("'tools' must be an array.", "tools");
                    var toolCount = v.GetArrayLength();
                    ToolCount = toolCount;
                    foreach (var tool in v.EnumerateArray())
                    {
                        if (tool.ValueKind != JsonValueKind.Object) return ApiError.InvalidRequest("Each entry of 'tools' must be an object.", "tools");
                    }
                    HasTools = toolCount > 0;
                    // Tool schemas are sent as prompt tokens too.
                    textChars += RequestJson.RawTextLength(v);
                    break;
                case "response_format":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("type"u8, out var rft) || rft.ValueKind != JsonValueKind.String)
                        return ApiError.InvalidRequest("'response_format' must be an object with a string 'type'.", "response_format");
                    ResponseFormatType = rft.GetString();
                    break;
                case "metadata":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Object) return ApiError.InvalidRequest("'metadata' must be an object.", "metadata");
                    if (v.TryGetProperty("task_type"u8, out var tt))
                    {
                        if (tt.ValueKind != JsonValueKind.String) return ApiError.InvalidRequest("'metadata.task_type' must be a string.", "metadata.task_type");
                        MetadataTaskType = tt.GetString();
                        // It is echoed in the x-gateway-task-type header, where Kestrel refuses anything
                        // but printable ASCII (a 500 if it got that far); task type names are short words.
                        if (!HeaderValues.IsSafe(MetadataTaskType!, HeaderValues.MaxTaskTypeLength))
                            return ApiError.InvalidRequest($"'metadata.task_type' must be 1 to {HeaderValues.MaxTaskTypeLength} printable ASCII characters.", "metadata.task_type");
                    }
                    break;
                case "messages":
                    var error = ReadMessages(v, ref textChars);
                    if (error is not null) return error;
                    hasMessages = true;
                    break;
            }
        }

        if (Model.Length == 0) return ApiError.InvalidRequest("'model' is required.", "model");
        if (!hasMessages) return ApiError.InvalidRequest("'messages' is required.", "messages");
        EstimatedPromptTokens = TokenEstimator.ForChat(root, Model, textChars, MessageCount, HasImages ? CountImages() : 0);
        return null;
    }

    public override ApiError? CheckLimits(Configuration.LimitsOptions limits)
    {
        if (MessageCount > limits.MaxMessages) return OverLimit("messages", MessageCount, limits.MaxMessages, nameof(limits.MaxMessages), " entries");
        if (ToolCount > limits.MaxTools) return OverLimit("tools", ToolCount, limits.MaxTools, nameof(limits.MaxTools), " entries");
        if (N > limits.MaxN) return OverLimit("n", N, limits.MaxN, nameof(limits.MaxN));
        return null;
    }

    private ApiError? ReadMessages(JsonElement v, ref long textChars)
    {
        if (v.ValueKind != JsonValueKind.Array) return ApiError.InvalidRequest("'messages' must be an array.", "messages");
        var count = v.GetArrayLength();
        if (count == 0) return ApiError.InvalidRequest("'messages' must contain at least one message.", "messages");
        MessageCount = count;

        var i = 0;
        // The message's path, for the error that names it (not made for every message that has none).
        string At() => $"messages[{i}]";
        foreach (var m in v.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) return ApiError.InvalidRequest($"'{At()}' must be an object.", At());
            if (!m.TryGetProperty("role"u8, out var role) || role.ValueKind != JsonValueKind.String)
                return ApiError.InvalidRequest($"'{At()}.role' is required and must be a string.", $"{At()}.role");
            if (!IsKnownRole(role)) return ApiError.InvalidRequest($"'{At()}.role' must be one of system, developer, user, assistant, tool.", $"{At()}.role");

            if (m.TryGetProperty("content"u8, out var content))
            {
                switch (content.ValueKind)
                {
                    case JsonValueKind.String:
                        textChars += RequestJson.TextLength(content);
                        break;
                    case JsonValueKind.Array:
                        foreach (var part in content.EnumerateArray())
                        {
                            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
                                return ApiError.InvalidRequest($"Each part of '{At()}.content' must be an object with a string 'type'.", $"{At()}.content");
                            if (type.ValueEquals("text"u8))
                            {
                                if (!part.TryGetProperty("text"u8, out var text) || text.ValueKind != JsonValueKind.String)
                                    return ApiError.InvalidRequest($"A text part of '{At()}.content' needs a string 'text'.", $"{At()}.content");
                                textChars += RequestJson.TextLength(text);
                            }
                            else if (type.ValueEquals("image_url"u8))
                            {
                                HasImages = true;
                            }
                        }
                        break;
                    case JsonValueKind.Null:
                        break;
                    default:
                        return ApiError.InvalidRequest($"'{At()}.content' must be a string, an array of parts or null.", $"{At()}.content");
                }
            }
            if (m.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                textChars += RequestJson.RawTextLength(calls);
            }
            i++;
        }
        return null;
    }

    private static bool IsKnownRole(JsonElement role) =>
        role.ValueEquals("user"u8) || role.ValueEquals("assistant"u8) || role.ValueEquals("system"u8) ||
        role.ValueEquals("tool"u8) || role.ValueEquals("developer"u8) || role.ValueEquals("function"u8);

    private int CountImages()
    {
        var images = 0;
        foreach (var m in Root.GetProperty("messages"u8).EnumerateArray())
        {
            if (m.TryGetProperty("content"u8, out var c) && c.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in c.EnumerateArray())
                {
                    if (part.GetProperty("type"u8).ValueEquals("image_url"u8)) images++;
                }
            }
        }
        return images;
    }

    private string ReadLastUserText()
    {
        var messages = Root.GetProperty("messages"u8);
        for (var i = messages.GetArrayLength() - 1; i >= 0; i--)
        {
            var m = messages[i];
            if (!m.GetProperty("role"u8).ValueEquals("user"u8)) continue;
            return MessageText(m);
        }
        return "";
    }

    /// <summary>The text of a message: its string content, or its text parts joined by newlines.</summary>
    public static string MessageText(JsonElement message)
    {
        if (!message.TryGetProperty("content"u8, out var content)) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) return "";
        var parts = new List<string>();
        foreach (var part in content.EnumerateArray())
        {
            if (part.GetProperty("type"u8).ValueEquals("text"u8)) parts.Add(part.GetProperty("text"u8).GetString()!);
        }
        return string.Join("\n", parts);
    }
}
