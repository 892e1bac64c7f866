using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Pipeline;

namespace LlmGateway.Responses;

/// <summary>
/// A <c>POST /v1/responses</c> body, checked and translated into the gateway's internal format (OpenAI
/// Chat Completions), so the one pipeline runs it for every provider type. <see cref="Parse"/> reads
/// and checks everything; <see cref="ToChatBody"/> writes the chat request, with the turns of a
/// <c>previous_response_id</c> in front.
/// <para>
/// What a chat target can't honour (reasoning items, built-in tools, background mode, logprobs, ...)
/// is refused with a 400 that names the parameter, never dropped: a client must not believe the model
/// saw something it didn't.
/// </para>
/// </summary>
public sealed class ResponsesRequest : IDisposable
{
    /// <summary>Upper bounds that keep one request from pinning the gateway, as the chat path's.</summary>
    public const int MaxInputItems = 10_000;
    public const int MaxTools = 512;
    public const int MaxContentParts = 1_000;
    public const int MaxIdLength = 128;

    /// <summary>Fields accepted and echoed, not otherwise acted on.</summary>
    private static readonly HashSet<string> s_known =
    [
        "model", "input", "instructions", "stream", "stream_options", "store", "previous_response_id",
        "tools", "tool_choice", "parallel_tool_calls", "text", "max_output_tokens", "temperature", "top_p",
        "metadata", "user", "safety_identifier", "service_tier", "prompt_cache_key", "reasoning",
        "truncation", "background", "include", "top_logprobs", "max_tool_calls", "conversation", "prompt",
        "prompt_cache_retention",
    ];

    /// <summary>Chat Completions fields written as they came (same name, same meaning).</summary>
    private static readonly string[] s_passThrough =
        ["temperature", "top_p", "parallel_tool_calls", "metadata", "user", "safety_identifier", "service_tier", "prompt_cache_key"];

    private readonly JsonDocument _document;

    private ResponsesRequest(JsonDocument document) => _document = document;

    public JsonElement Root => _document.RootElement;
    public string Model { get; private set; } = "";
    public bool Stream { get; private set; }

    /// <summary>Whether the response is kept for GET and <c>previous_response_id</c>; OpenAI's default is true.</summary>
    public bool Store { get; private set; } = true;
    public string? PreviousResponseId { get; private set; }

    /// <summary><c>instructions</c> as a chat system message; not carried into later turns (as OpenAI does).</summary>
    public byte[]? Instructions { get; private set; }

    /// <summary>The chat messages <c>input</c> translates to: the new half of this turn.</summary>
    public List<byte[]> InputMessages { get; } = [];

    /// <summary>Chat fields, in the order written after the messages.</summary>
    private readonly List<(string Name, byte[] Json)> _chatFields = [];

    /// <summary>Parses and checks a Responses body; the request or the 400 that explains what is wrong.</summary>
    public static ResponsesRequest? Parse(ReadOnlyMemory<byte> body, out ApiError? error) =>
        RequestJson.ParseObject(body, static document => new ResponsesRequest(document), static request => request.Read(), out error);

    private ApiError? Read()
    {
        var root = Root;
        var hasInput = false;
        foreach (var p in root.EnumerateObject())
        {
            if (!s_known.Contains(p.Name))
                return ApiError.InvalidRequest($"Unknown parameter: '{p.Name}'.", p.Name, "unknown_parameter");
        }

        foreach (var p in root.EnumerateObject())
        {
            var v = p.Value;
            var error = p.Name switch
            {
                "model" => ReadModel(v),
                "input" => ReadInput(v, ref hasInput),
                "instructions" => ReadInstructions(v),
                "stream" => ReadBool(v, "stream", b => Stream = b),
                "store" => ReadBool(v, "store", b => Store = b),
                "previous_response_id" => ReadPreviousResponseId(v),
                "tools" => ReadTools(v),
                "tool_choice" => ReadToolChoice(v),
                "text" => ReadText(v),
                "max_output_tokens" => ReadMaxOutputTokens(v),
                "reasoning" => ReadReasoning(v),
                "metadata" => v.ValueKind is JsonValueKind.Object or JsonValueKind.Null ? null : Invalid("'metadata' must be an object.", "metadata"),
                "temperature" => ReadNumber(v, "temperature", 0, 2),
                "top_p" => ReadNumber(v, "top_p", 0, 1),
                "parallel_tool_calls" => v.ValueKind is JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null ? null : Invalid("'parallel_tool_calls' must be a boolean.", "parallel_tool_calls"),
                "truncation" => v.ValueKind == JsonValueKind.Null || v.ValueEquals("disabled"u8) ? null
                    : v.ValueEquals("auto"u8) ? Unsupported("truncation", "'truncation: auto' is not supported: the gateway does not cut the input to fit the context window. Leave it out (or send 'disabled').")
                    : Invalid("'truncation' must be 'auto' or 'disabled'.", "truncation"),
                "background" => v.ValueKind is JsonValueKind.False or JsonValueKind.Null ? null
                    : v.ValueKind == JsonValueKind.True ? Unsupported("background", "'background: true' is not supported: the gateway answers each request while the client waits (use 'stream' for long answers).")
                    : Invalid("'background' must be a boolean.", "background"),
                "include" => ReadInclude(v),
                "top_logprobs" => v.ValueKind == JsonValueKind.Null || (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var tl) && tl == 0) ? null
                    : Unsupported("top_logprobs", "'top_logprobs' is not supported on /v1/responses by this gateway."),
                "max_tool_calls" => v.ValueKind == JsonValueKind.Null ? null
                    : Unsupported("max_tool_calls", "'max_tool_calls' is not supported: the gateway runs no tools itself, so the client decides how many calls it makes."),
                "conversation" => v.ValueKind == JsonValueKind.Null ? null
                    : Unsupported("conversation", "'conversation' (the Conversations API) is not supported; use 'previous_response_id' to continue from a stored response."),
                "prompt" => v.ValueKind == JsonValueKind.Null ? null
                    : Unsupported("prompt", "'prompt' (stored prompt templates) is not supported by this gateway; send 'instructions' and 'input'."),
                "user" or "safety_identifier" or "prompt_cache_key" or "service_tier" or "prompt_cache_retention" =>
                    v.ValueKind is JsonValueKind.String or JsonValueKind.Null ? null : Invalid($"'{p.Name}' must be a string.", p.Name),
                "stream_options" => v.ValueKind is JsonValueKind.Object or JsonValueKind.Null ? null : Invalid("'stream_options' must be an object.", "stream_options"),
                _ => null,
            };
            if (error is not null) return error;
        }

        if (Model.Length == 0) return Invalid("'model' is required.", "model");
        if (!hasInput) return Invalid("'input' is required.", "input");

        foreach (var name in s_passThrough)
        {
            if (root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null) _chatFields.Add((name, Raw(v)));
        }
        return null;
    }

    private ApiError? ReadModel(JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.String || v.GetString() is not { Length: > 0 } model) return Invalid("'model' must be a non-empty string.", "model");
        Model = model;
        return null;
    }

    private static ApiError? ReadBool(JsonElement v, string name, Action<bool> set)
    {
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) set(v.GetBoolean());
        else if (v.ValueKind != JsonValueKind.Null) return Invalid($"'{name}' must be a boolean.", name);
        return null;
    }

    private static ApiError? ReadNumber(JsonElement v, string name, double min, double max)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || d < min || d > max)
            return Invalid($"'{name}' must be a number between {min} and {max}.", name);
        return null;
    }

    private ApiError? ReadPreviousResponseId(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String || v.GetString() is not { } id || !ResponseIds.IsResponseId(id))
            return Invalid("'previous_response_id' must be the id of a response this gateway returned ('resp_…').", "previous_response_id");
        PreviousResponseId = id;
        return null;
    }

    private ApiError? ReadInstructions(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) return Invalid("'instructions' must be a string.", "instructions");
        var text = v.GetString()!;
        if (text.Length > 0) Instructions = Message(w => { w.WriteString("role"u8, "system"u8); w.WriteString("content"u8, text); });
        return null;
    }

    private ApiError? ReadMaxOutputTokens(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n < 1) return Invalid("'max_output_tokens' must be a positive integer.", "max_output_tokens");
        // max_completion_tokens: what OpenAI's reasoning models require, and what the chat path reads first.
        _chatFields.Add(("max_completion_tokens", Raw(v)));
        return null;
    }

    private ApiError? ReadReasoning(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Object) return Invalid("'reasoning' must be an object.", "reasoning");
        foreach (var p in v.EnumerateObject())
        {
            switch (p.Name)
            {
                case "effort":
                    if (p.Value.ValueKind == JsonValueKind.Null) break;
                    if (p.Value.ValueKind != JsonValueKind.String) return Invalid("'reasoning.effort' must be a string.", "reasoning.effort");
                    _chatFields.Add(("reasoning_effort", Raw(p.Value)));
                    break;
                case "summary":
                case "generate_summary":
                    if (p.Value.ValueKind == JsonValueKind.Null) break;
                    return Unsupported($"reasoning.{p.Name}", $"'reasoning.{p.Name}' is not supported: the gateway translates to Chat Completions, which returns no reasoning summaries.");
                default:
                    return Invalid($"Unknown parameter: 'reasoning.{p.Name}'.", $"reasoning.{p.Name}");
            }
        }
        return null;
    }

    private static ApiError? ReadInclude(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array) return Invalid("'include' must be an array.", "include");
        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) return Invalid($"'include[{i}]' must be a string.", $"include[{i}]");
            return Unsupported($"include[{i}]", $"'include' value '{Short(item.GetString()!)}' is not supported: the gateway translates to Chat Completions, which returns none of the extra data 'include' asks for.");
        }
        return null;
    }

    private ApiError? ReadText(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Object) return Invalid("'text' must be an object.", "text");
        foreach (var p in v.EnumerateObject())
        {
            switch (p.Name)
            {
                case "format":
                    var error = ReadTextFormat(p.Value);
                    if (error is not null) return error;
                    break;
                case "verbosity":
                    if (p.Value.ValueKind == JsonValueKind.Null) break;
                    if (p.Value.ValueKind != JsonValueKind.String) return Invalid("'text.verbosity' must be a string.", "text.verbosity");
                    _chatFields.Add(("verbosity", Raw(p.Value)));
                    break;
                default:
                    return Invalid($"Unknown parameter: 'text.{p.Name}'.", $"text.{p.Name}");
            }
        }
        return null;
    }

    private ApiError? ReadTextFormat(JsonElement f)
    {
        if (f.ValueKind == JsonValueKind.Null) return null;
        if (f.ValueKind != JsonValueKind.Object || !f.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            return Invalid("'text.format' must be an object with a string 'type'.", "text.format");
        if (type.ValueEquals("text"u8)) return null;
        if (type.ValueEquals("json_object"u8))
        {
            _chatFields.Add(("response_format", """{"type":"json_object"}"""u8.ToArray()));
            return null;
        }
        if (!type.ValueEquals("json_schema"u8)) return Invalid("'text.format.type' must be 'text', 'json_object' or 'json_schema'.", "text.format.type");

        // Responses flattens the schema into the format object; Chat Completions nests it under json_schema.
        if (!f.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String)
            return Invalid("'text.format.name' is required for 'json_schema' and must be a string.", "text.format.name");
        if (!f.TryGetProperty("schema"u8, out var schema) || schema.ValueKind != JsonValueKind.Object)
            return Invalid("'text.format.schema' is required for 'json_schema' and must be an object.", "text.format.schema");
        _chatFields.Add(("response_format", Object(w =>
        {
            w.WriteString("type"u8, "json_schema"u8);
            w.WriteStartObject("json_schema"u8);
            foreach (var p in f.EnumerateObject())
            {
                if (!p.NameEquals("type"u8)) p.WriteTo(w);
            }
            w.WriteEndObject();
        })));
        return null;
    }

    private ApiError? ReadTools(JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array) return Invalid("'tools' must be an array.", "tools");
        var count = v.GetArrayLength();
        if (count > MaxTools) return Invalid($"'tools' has {count} entries; at most {MaxTools} are accepted.", "tools");
        if (count == 0) return null;
        var tools = new List<JsonElement>(count);
        var i = 0;
        foreach (var tool in v.EnumerateArray())
        {
            var at = $"tools[{i}]";
            if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
                return Invalid($"'{at}' must be an object with a string 'type'.", $"{at}.type");
            if (!type.ValueEquals("function"u8))
            {
                return Unsupported($"{at}.type",
                    $"Tools of type '{Short(type.GetString()!)}' are not supported: the gateway translates to Chat Completions and runs no built-in tools. Only 'function' tools can be used.");
            }
            if (!tool.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0)
                return Invalid($"'{at}.name' is required and must be a string.", $"{at}.name");
            if (tool.TryGetProperty("parameters"u8, out var parameters) && parameters.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                return Invalid($"'{at}.parameters' must be an object.", $"{at}.parameters");
            tools.Add(tool);
            i++;
        }
        _chatFields.Add(("tools", Array(w =>
        {
            foreach (var tool in tools)
            {
                // Responses tools are flat; Chat Completions nests the function under "function".
                w.WriteStartObject();
                w.WriteString("type"u8, "function"u8);
                w.WriteStartObject("function"u8);
                foreach (var p in tool.EnumerateObject())
                {
                    if (p.NameEquals("type"u8) || p.Value.ValueKind == JsonValueKind.Null) continue;
                    p.WriteTo(w);
                }
                w.WriteEndObject();
                w.WriteEndObject();
            }
        })));
        return null;
    }

    private ApiError? ReadToolChoice(JsonElement v)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                if (!(v.ValueEquals("auto"u8) || v.ValueEquals("none"u8) || v.ValueEquals("required"u8)))
                    return Invalid("'tool_choice' must be 'auto', 'none', 'required' or an object.", "tool_choice");
                _chatFields.Add(("tool_choice", Raw(v)));
                return null;
            case JsonValueKind.Object:
                if (!v.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
                    return Invalid("'tool_choice.type' is required and must be a string.", "tool_choice.type");
                if (!type.ValueEquals("function"u8))
                {
                    return Unsupported("tool_choice.type",
                        $"'tool_choice' of type '{Short(type.GetString()!)}' is not supported: only 'auto', 'none', 'required' or a function ({{\"type\":\"function\",\"name\":\"…\"}}) can be chosen.");
                }
                if (!v.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String)
                    return Invalid("'tool_choice.name' is required and must be a string.", "tool_choice.name");
                _chatFields.Add(("tool_choice", Object(w =>
                {
                    w.WriteString("type"u8, "function"u8);
                    w.WriteStartObject("function"u8);
                    w.WriteString("name"u8, name.GetString());
                    w.WriteEndObject();
                })));
                return null;
            default:
                return Invalid("'tool_choice' must be a string or an object.", "tool_choice");
        }
    }

    // :: input

    private ApiError? ReadInput(JsonElement v, ref bool hasInput)
    {
        if (v.ValueKind == JsonValueKind.String)
        {
            var text = v.GetString()!;
            InputMessages.Add(Message(w => { w.WriteString("role"u8, "user"u8); w.WriteString("content"u8, text); }));
            hasInput = true;
            return null;
        }
        if (v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array) return Invalid("'input' must be a string or an array of input items.", "input");
        var count = v.GetArrayLength();
        if (count > MaxInputItems) return Invalid($"'input' has {count} items; at most {MaxInputItems} are accepted.", "input");
        hasInput = count > 0 || PreviousResponseIdIn(Root);

        // Consecutive function_call items (and the assistant message before them) are one chat
        // assistant message with tool_calls; each function_call_output is one tool message.
        PendingAssistant? assistant = null;
        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            var at = $"input[{i++}]";
            if (item.ValueKind != JsonValueKind.Object) return Invalid($"'{at}' must be an object.", at);
            var type = item.TryGetProperty("type"u8, out var t) ? t : default;
            if (type.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.String))
                return Invalid($"'{at}.type' must be a string.", $"{at}.type");

            if (type.ValueKind != JsonValueKind.String || type.ValueEquals("message"u8))
            {
                var error = ReadMessageItem(item, at, ref assistant);
                if (error is not null) return error;
            }
            else if (type.ValueEquals("function_call"u8))
            {
                if (Str(item, "call_id"u8) is not { Length: > 0 } callId) return Invalid($"'{at}.call_id' is required and must be a string.", $"{at}.call_id");
                if (Str(item, "name"u8) is not { Length: > 0 } name) return Invalid($"'{at}.name' is required and must be a string.", $"{at}.name");
                if (Str(item, "arguments"u8) is not { } arguments) return Invalid($"'{at}.arguments' is required and must be a string.", $"{at}.arguments");
                assistant ??= new PendingAssistant();
                assistant.Calls.Add((callId, name, arguments));
            }
            else if (type.ValueEquals("function_call_output"u8))
            {
                Flush(ref assistant);
                if (Str(item, "call_id"u8) is not { Length: > 0 } callId) return Invalid($"'{at}.call_id' is required and must be a string.", $"{at}.call_id");
                if (!item.TryGetProperty("output"u8, out var output)) return Invalid($"'{at}.output' is required.", $"{at}.output");
                string text;
                if (output.ValueKind == JsonValueKind.String) text = output.GetString()!;
                else if (output.ValueKind == JsonValueKind.Array)
                {
                    var error = JoinText(output, $"{at}.output", "a tool result", out text);
                    if (error is not null) return error;
                }
                else return Invalid($"'{at}.output' must be a string or an array of input_text parts.", $"{at}.output");
                InputMessages.Add(Message(w =>
                {
                    w.WriteString("role"u8, "tool"u8);
                    w.WriteString("tool_call_id"u8, callId);
                    w.WriteString("content"u8, text);
                }));
            }
            else if (type.ValueEquals("item_reference"u8))
            {
                return Unsupported($"{at}.type",
                    "Input items of type 'item_reference' are not supported: send the item itself, or 'previous_response_id' to continue from a stored response.");
            }
            else
            {
                return Unsupported($"{at}.type",
                    $"Input items of type '{Short(type.GetString()!)}' are not supported: the gateway translates to Chat Completions, which has messages, function calls and function call outputs only.");
            }
        }
        Flush(ref assistant);
        return null;
    }

    private static bool PreviousResponseIdIn(JsonElement root) =>
        root.TryGetProperty("previous_response_id"u8, out var p) && p.ValueKind == JsonValueKind.String;

    private sealed class PendingAssistant
    {
        public string? Text;
        public List<(string CallId, string Name, string Arguments)> Calls { get; } = [];
    }

    private void Flush(ref PendingAssistant? assistant)
    {
        if (assistant is null) return;
        var a = assistant;
        assistant = null;
        InputMessages.Add(Message(w =>
        {
            w.WriteString("role"u8, "assistant"u8);
            if (a.Text is not null) w.WriteString("content"u8, a.Text);
            else w.WriteNull("content"u8);
            if (a.Calls.Count == 0) return;
            w.WriteStartArray("tool_calls"u8);
            foreach (var (callId, name, arguments) in a.Calls)
            {
                w.WriteStartObject();
                w.WriteString("id"u8, callId);
                w.WriteString("type"u8, "function"u8);
                w.WriteStartObject("function"u8);
                w.WriteString("name"u8, name);
                w.WriteString("arguments"u8, arguments);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }));
    }

    private ApiError? ReadMessageItem(JsonElement item, string at, ref PendingAssistant? assistant)
    {
        if (!item.TryGetProperty("role"u8, out var role) || role.ValueKind != JsonValueKind.String)
            return Invalid($"'{at}.role' is required and must be a string.", $"{at}.role");
        var isUser = role.ValueEquals("user"u8);
        var isAssistant = role.ValueEquals("assistant"u8);
        if (!(isUser || isAssistant || role.ValueEquals("system"u8) || role.ValueEquals("developer"u8)))
            return Invalid($"'{at}.role' must be one of user, assistant, system, developer.", $"{at}.role");
        if (!item.TryGetProperty("content"u8, out var content)) return Invalid($"'{at}.content' is required.", $"{at}.content");

        if (isAssistant)
        {
            string text;
            if (content.ValueKind == JsonValueKind.String) text = content.GetString()!;
            else if (content.ValueKind == JsonValueKind.Array)
            {
                var error = JoinText(content, $"{at}.content", "an assistant message", out text);
                if (error is not null) return error;
            }
            else return Invalid($"'{at}.content' must be a string or an array of content parts.", $"{at}.content");
            // A message after function calls starts a new assistant turn; one before them carries them.
            Flush(ref assistant);
            assistant = new PendingAssistant { Text = text };
            return null;
        }

        Flush(ref assistant);
        var roleName = role.GetString()!;
        if (content.ValueKind == JsonValueKind.String)
        {
            var text = content.GetString()!;
            InputMessages.Add(Message(w => { w.WriteString("role"u8, roleName); w.WriteString("content"u8, text); }));
            return null;
        }
        if (content.ValueKind != JsonValueKind.Array) return Invalid($"'{at}.content' must be a string or an array of content parts.", $"{at}.content");
        if (!isUser)
        {
            var error = JoinText(content, $"{at}.content", $"a {roleName} message", out var text);
            if (error is not null) return error;
            InputMessages.Add(Message(w => { w.WriteString("role"u8, roleName); w.WriteString("content"u8, text); }));
            return null;
        }

        var count = content.GetArrayLength();
        if (count > MaxContentParts) return Invalid($"'{at}.content' has {count} parts; at most {MaxContentParts} are accepted.", $"{at}.content");
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            var pat = $"{at}.content[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var pt) || pt.ValueKind != JsonValueKind.String)
                return Invalid($"'{pat}' must be an object with a string 'type'.", $"{pat}.type");
            if (pt.ValueEquals("input_text"u8))
            {
                if (Str(part, "text"u8) is null) return Invalid($"'{pat}.text' is required and must be a string.", $"{pat}.text");
            }
            else if (pt.ValueEquals("input_image"u8))
            {
                if (part.TryGetProperty("file_id"u8, out var fileId) && fileId.ValueKind != JsonValueKind.Null)
                    return Unsupported($"{pat}.file_id", "Images by 'file_id' are not supported: the gateway keeps no files. Send 'image_url' (an https URL or a data: URL).");
                if (Str(part, "image_url"u8) is not { Length: > 0 }) return Invalid($"'{pat}.image_url' is required and must be a string (an https URL or a data: URL).", $"{pat}.image_url");
            }
            else
            {
                return Unsupported($"{pat}.type",
                    $"Content parts of type '{Short(pt.GetString()!)}' are not supported: user messages take 'input_text' and 'input_image' parts.");
            }
        }
        InputMessages.Add(Message(w =>
        {
            w.WriteString("role"u8, "user"u8);
            w.WriteStartArray("content"u8);
            foreach (var part in content.EnumerateArray())
            {
                w.WriteStartObject();
                if (part.GetProperty("type"u8).ValueEquals("input_text"u8))
                {
                    w.WriteString("type"u8, "text"u8);
                    w.WriteString("text"u8, part.GetProperty("text"u8).GetString());
                }
                else
                {
                    w.WriteString("type"u8, "image_url"u8);
                    w.WriteStartObject("image_url"u8);
                    w.WriteString("url"u8, part.GetProperty("image_url"u8).GetString());
                    if (Str(part, "detail"u8) is { } detail) w.WriteString("detail"u8, detail);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }));
        return null;
    }

    /// <summary>Text parts (input_text, output_text, and a refusal as its text) joined; anything else is refused for this role.</summary>
    private static ApiError? JoinText(JsonElement parts, string at, string what, out string text)
    {
        text = "";
        var count = parts.GetArrayLength();
        if (count > MaxContentParts) return Invalid($"'{at}' has {count} parts; at most {MaxContentParts} are accepted.", at);
        var texts = new List<string>(count);
        var j = 0;
        foreach (var part in parts.EnumerateArray())
        {
            var pat = $"{at}[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type"u8, out var pt) || pt.ValueKind != JsonValueKind.String)
                return Invalid($"'{pat}' must be an object with a string 'type'.", $"{pat}.type");
            var field = pt.ValueEquals("refusal"u8) ? "refusal"u8 : "text"u8;
            if (!(pt.ValueEquals("input_text"u8) || pt.ValueEquals("output_text"u8) || pt.ValueEquals("text"u8) || pt.ValueEquals("refusal"u8)))
                return Unsupported($"{pat}.type", $"Content parts of type '{Short(pt.GetString()!)}' are not supported in {what}: only text can be translated there.");
            if (Str(part, field) is not { } s) return Invalid($"'{pat}.{(field.SequenceEqual("text"u8) ? "text" : "refusal")}' is required and must be a string.", pat);
            texts.Add(s);
        }
        text = string.Concat(texts);
        return null;
    }

    // :: output

    /// <summary>
    /// The chat request: instructions, then <paramref name="history"/> (a previous response's turns),
    /// then the input, then the translated parameters.
    /// </summary>
    public byte[] ToChatBody(IEnumerable<byte[]> history)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer, ResponsesJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("model"u8, Model);
            w.WriteStartArray("messages"u8);
            if (Instructions is not null) w.WriteRawValue(Instructions, skipInputValidation: true);
            foreach (var m in history) w.WriteRawValue(m, skipInputValidation: true);
            foreach (var m in InputMessages) w.WriteRawValue(m, skipInputValidation: true);
            w.WriteEndArray();
            if (Stream)
            {
                w.WriteBoolean("stream"u8, true);
                // The usage chunk is what response.completed reports, so it is always asked for.
                w.WriteStartObject("stream_options"u8);
                w.WriteBoolean("include_usage"u8, true);
                w.WriteEndObject();
            }
            foreach (var (name, json) in _chatFields)
            {
                w.WritePropertyName(name);
                w.WriteRawValue(json, skipInputValidation: true);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    // :: helpers

    private static ApiError Invalid(string message, string param, string? code = null) => ApiError.InvalidRequest(message, param, code);

    /// <summary>A parameter OpenAI knows that a chat target can't honour: refused, never dropped.</summary>
    private static ApiError Unsupported(string param, string message) => ApiError.InvalidRequest(message, param, "unsupported_parameter");

    private static string? Str(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string Short(string s) => s.Length <= 64 ? s : s[..64] + "…";

    private static byte[] Raw(JsonElement v) => System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(v).ToArray();

    private static byte[] Message(Action<Utf8JsonWriter> body) => Object(body);

    private static byte[] Object(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, ResponsesJson.WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Array(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, ResponsesJson.WriterOptions))
        {
            w.WriteStartArray();
            body(w);
            w.WriteEndArray();
        }
        return buffer.WrittenSpan.ToArray();
    }

    public void Dispose() => _document.Dispose();
}
