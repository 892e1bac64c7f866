using System.Text.Json;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// An OpenAI chat request as an Anthropic Messages request. System and developer messages become
/// the top-level <c>system</c>; user, assistant and tool messages become content blocks (text, image,
/// tool_use, tool_result), consecutive turns of the same role merged because tool results must sit
/// in the one user turn that follows the assistant's tool calls. <c>max_tokens</c> is always sent
/// (Anthropic requires it). Client strings are copied as JSON, not decoded and re-encoded.
/// </summary>
public static class AnthropicRequestWriter
{
    public static byte[] Write(ProviderRequest request) =>
        RequestTranslation.Write(request.Chat.Body.Length + 256, request, static (w, r) => Write(w, r));

    public static void Write(Utf8JsonWriter w, ProviderRequest request)
    {
        var f = ChatFields.Read(request.Chat.Root);
        JsonElement messages = f.Messages, tools = f.Tools, toolChoice = f.ToolChoice, parallel = f.ParallelToolCalls, stop = f.Stop,
            temperature = f.Temperature, topP = f.TopP, user = f.User;
        var structured = AnthropicStructuredOutput.TryRead(f.ResponseFormat, out var schema, out var schemaDescription);

        w.WriteStartObject();
        w.WriteString("model"u8, request.UpstreamModel);
        w.WriteNumber("max_tokens"u8, request.MaxOutputTokens);
        WriteSystem(w, messages);
        WriteMessages(w, messages);
        if (!RequestTranslation.IsNullOrMissing(temperature))
        {
            w.WritePropertyName("temperature"u8);
            temperature.WriteTo(w);
        }
        if (!RequestTranslation.IsNullOrMissing(topP))
        {
            w.WritePropertyName("top_p"u8);
            topP.WriteTo(w);
        }
        if (RequestTranslation.HasStop(stop)) RequestTranslation.WriteStop(w, "stop_sequences"u8, stop);
        if (request.Stream) w.WriteBoolean("stream"u8, true);
        var hasTools = tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0 && RequestTranslation.ToolChoice(toolChoice).Mode != "none";
        if (structured)
        {
            // The JSON answer comes as the input of a tool (AnthropicStructuredOutput): forced, unless
            // the client's own tools are on offer too, whose tool_choice then stands.
            w.WriteStartArray("tools"u8);
            if (hasTools) WriteToolEntries(w, tools);
            AnthropicStructuredOutput.WriteTool(w, schema, schemaDescription);
            w.WriteEndArray();
            if (hasTools)
            {
                WriteToolChoice(w, toolChoice, parallel);
            }
            else
            {
                w.WriteStartObject("tool_choice"u8);
                w.WriteString("type"u8, "tool"u8);
                w.WriteString("name"u8, AnthropicStructuredOutput.ToolName);
                w.WriteEndObject();
            }
        }
        else if (tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
        {
            WriteTools(w, tools);
            WriteToolChoice(w, toolChoice, parallel);
        }
        if (user.ValueKind == JsonValueKind.String && !RequestTranslation.IsEmptyString(user))
        {
            w.WriteStartObject("metadata"u8);
            w.WritePropertyName("user_id"u8);
            user.WriteTo(w);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static bool IsSystem(JsonElement role) => role.ValueEquals("system"u8) || role.ValueEquals("developer"u8);

    private static void WriteSystem(Utf8JsonWriter w, JsonElement messages)
    {
        var open = false;
        foreach (var m in messages.EnumerateArray())
        {
            if (!IsSystem(m.GetProperty("role"u8)) || !m.TryGetProperty("content"u8, out var content)) continue;
            if (content.ValueKind == JsonValueKind.String)
            {
                if (RequestTranslation.IsEmptyString(content)) continue;
                OpenSystem(w, ref open);
                WriteTextBlock(w, content, default);
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in content.EnumerateArray())
                {
                    if (!part.GetProperty("type"u8).ValueEquals("text"u8)) continue;
                    var text = part.GetProperty("text"u8);
                    if (RequestTranslation.IsEmptyString(text)) continue;
                    OpenSystem(w, ref open);
                    WriteTextBlock(w, text, part);
                }
            }
        }
        if (open) w.WriteEndArray();

        static void OpenSystem(Utf8JsonWriter w, ref bool open)
        {
            if (open) return;
            w.WriteStartArray("system"u8);
            open = true;
        }
    }

    private static void WriteMessages(Utf8JsonWriter w, JsonElement messages)
    {
        w.WriteStartArray("messages"u8);
        var openRole = 0; // 0 none, 1 user, 2 assistant
        var i = -1;
        foreach (var m in messages.EnumerateArray())
        {
            i++;
            var role = m.GetProperty("role"u8);
            if (IsSystem(role)) continue;
            var isAssistant = role.ValueEquals("assistant"u8);
            var isTool = role.ValueEquals("tool"u8);
            if (role.ValueEquals("function"u8))
            {
                throw new RequestTranslationException($"'messages[{i}]': role 'function' is deprecated and can't be translated; use 'tool' messages with tool_call_id.", $"messages[{i}].role");
            }
            m.TryGetProperty("content"u8, out var content);
            m.TryGetProperty("tool_calls"u8, out var calls);
            if (!isTool && !RequestTranslation.HasSomethingToSend(content, isAssistant ? calls : default)) continue;

            var target = isAssistant ? 2 : 1;
            if (openRole != target)
            {
                if (openRole != 0)
                {
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteStartObject();
                w.WriteString("role"u8, isAssistant ? "assistant"u8 : "user"u8);
                w.WriteStartArray("content"u8);
                openRole = target;
            }

            if (isTool) WriteToolResult(w, m, content, i);
            else
            {
                WriteContentBlocks(w, content, i, allowImages: !isAssistant);
                if (isAssistant) WriteToolUses(w, calls, i);
            }
        }
        if (openRole != 0)
        {
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteContentBlocks(Utf8JsonWriter w, JsonElement content, int i, bool allowImages)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            if (!RequestTranslation.IsEmptyString(content)) WriteTextBlock(w, content, default);
            return;
        }
        if (content.ValueKind != JsonValueKind.Array) return;
        foreach (var part in content.EnumerateArray())
        {
            var type = part.GetProperty("type"u8);
            if (type.ValueEquals("text"u8))
            {
                var text = part.GetProperty("text"u8);
                if (!RequestTranslation.IsEmptyString(text)) WriteTextBlock(w, text, part);
            }
            else if (type.ValueEquals("image_url"u8) && allowImages)
            {
                WriteImageBlock(w, part, $"messages[{i}].content");
            }
            else if (type.ValueEquals("refusal"u8))
            {
                // An assistant's earlier refusal: nothing Anthropic can take back in.
            }
            else
            {
                throw new RequestTranslationException($"'messages[{i}].content' has a part of type {type.GetRawText()}, which can't be translated for Anthropic.", $"messages[{i}].content");
            }
        }
    }

    /// <summary>A text block; <c>cache_control</c> on the OpenAI part is kept, so clients can mark prompt-cache breakpoints.</summary>
    private static void WriteTextBlock(Utf8JsonWriter w, JsonElement text, JsonElement part)
    {
        w.WriteStartObject();
        w.WriteString("type"u8, "text"u8);
        w.WritePropertyName("text"u8);
        text.WriteTo(w);
        if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("cache_control"u8, out var cache) && cache.ValueKind == JsonValueKind.Object)
        {
            w.WritePropertyName("cache_control"u8);
            cache.WriteTo(w);
        }
        w.WriteEndObject();
    }

    private static void WriteImageBlock(Utf8JsonWriter w, JsonElement part, string param)
    {
        var url = RequestTranslation.ImageUrl(part, param);
        w.WriteStartObject();
        w.WriteString("type"u8, "image"u8);
        w.WriteStartObject("source"u8);
        if (RequestTranslation.TryParseDataUrl(url, out var mediaType, out var data))
        {
            w.WriteString("type"u8, "base64"u8);
            w.WriteString("media_type"u8, mediaType);
            w.WriteString("data"u8, data);
        }
        else if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            w.WriteString("type"u8, "url"u8);
            w.WriteString("url"u8, url);
        }
        else
        {
            throw new RequestTranslationException($"An image in '{param}' must be an http(s) URL or a base64 data URL.", param);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteToolUses(Utf8JsonWriter w, JsonElement calls, int i)
    {
        if (calls.ValueKind != JsonValueKind.Array) return;
        var param = $"messages[{i}].tool_calls";
        foreach (var call in calls.EnumerateArray())
        {
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("id"u8, out var id) || id.ValueKind != JsonValueKind.String)
            {
                throw new RequestTranslationException($"Each entry of '{param}' needs a string 'id'.", param);
            }
            var (name, arguments) = RequestTranslation.ToolCallFunction(call, param);
            using (arguments)
            {
                w.WriteStartObject();
                w.WriteString("type"u8, "tool_use"u8);
                w.WritePropertyName("id"u8);
                id.WriteTo(w);
                w.WritePropertyName("name"u8);
                name.WriteTo(w);
                w.WritePropertyName("input"u8);
                arguments.RootElement.WriteTo(w);
                w.WriteEndObject();
            }
        }
    }

    private static void WriteToolResult(Utf8JsonWriter w, JsonElement message, JsonElement content, int i)
    {
        if (!message.TryGetProperty("tool_call_id"u8, out var id) || id.ValueKind != JsonValueKind.String)
        {
            throw new RequestTranslationException($"'messages[{i}]' is a tool message without a string 'tool_call_id'.", $"messages[{i}].tool_call_id");
        }
        w.WriteStartObject();
        w.WriteString("type"u8, "tool_result"u8);
        w.WritePropertyName("tool_use_id"u8);
        id.WriteTo(w);
        if (content.ValueKind == JsonValueKind.String)
        {
            w.WritePropertyName("content"u8);
            content.WriteTo(w);
        }
        else if (content.ValueKind == JsonValueKind.Array && RequestTranslation.HasSomethingToSend(content, default))
        {
            w.WriteStartArray("content"u8);
            WriteContentBlocks(w, content, i, allowImages: true);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void WriteTools(Utf8JsonWriter w, JsonElement tools)
    {
        w.WriteStartArray("tools"u8);
        WriteToolEntries(w, tools);
        w.WriteEndArray();
    }

    private static void WriteToolEntries(Utf8JsonWriter w, JsonElement tools)
    {
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var fn = RequestTranslation.ToolFunction(tool, i++);
            w.WriteStartObject();
            w.WritePropertyName("name"u8);
            fn.GetProperty("name"u8).WriteTo(w);
            if (fn.TryGetProperty("description"u8, out var description) && description.ValueKind == JsonValueKind.String)
            {
                w.WritePropertyName("description"u8);
                description.WriteTo(w);
            }
            w.WritePropertyName("input_schema"u8);
            if (fn.TryGetProperty("parameters"u8, out var parameters) && parameters.ValueKind == JsonValueKind.Object)
            {
                parameters.WriteTo(w);
            }
            else
            {
                // Anthropic requires a schema; OpenAI lets a function without parameters omit it.
                w.WriteStartObject();
                w.WriteString("type"u8, "object"u8);
                w.WriteStartObject("properties"u8);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            if (tool.TryGetProperty("cache_control"u8, out var cache) && cache.ValueKind == JsonValueKind.Object)
            {
                w.WritePropertyName("cache_control"u8);
                cache.WriteTo(w);
            }
            w.WriteEndObject();
        }
    }

    private static void WriteToolChoice(Utf8JsonWriter w, JsonElement toolChoice, JsonElement parallel)
    {
        var (mode, function) = RequestTranslation.ToolChoice(toolChoice);
        var disableParallel = parallel.ValueKind == JsonValueKind.False && mode != "none";
        if (mode == "auto" && !disableParallel) return; // Anthropic's default
        w.WriteStartObject("tool_choice"u8);
        switch (mode)
        {
            case "none":
                w.WriteString("type"u8, "none"u8);
                break;
            case "required":
                w.WriteString("type"u8, "any"u8);
                break;
            case "function":
                w.WriteString("type"u8, "tool"u8);
                w.WriteString("name"u8, function);
                break;
            default:
                w.WriteString("type"u8, "auto"u8);
                break;
        }
        if (disableParallel) w.WriteBoolean("disable_parallel_tool_use"u8, true);
        w.WriteEndObject();
    }
}
