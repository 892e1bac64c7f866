using System.Text.Json;

namespace LlmGateway.Providers.Gemini;

/// <summary>
/// An OpenAI chat request as a Gemini generateContent request: system and developer messages become
/// <c>systemInstruction</c>; user and tool messages become <c>user</c> contents, assistant messages
/// <c>model</c> contents (consecutive ones merged, so parallel function responses share one turn);
/// tool calls become functionCall parts and tool results functionResponse parts, matched by name;
/// sampling settings go to <c>generationConfig</c>.
/// </summary>
public static class GeminiRequestWriter
{
    public static byte[] Write(ProviderRequest request) =>
        RequestTranslation.Write(request.Chat.Body.Length + 256, request, static (w, r) => Write(w, r));

    public static void Write(Utf8JsonWriter w, ProviderRequest request)
    {
        var f = ChatFields.Read(request.Chat.Root);
        JsonElement messages = f.Messages, tools = f.Tools, toolChoice = f.ToolChoice, stop = f.Stop, temperature = f.Temperature, topP = f.TopP,
            seed = f.Seed, presence = f.PresencePenalty, frequency = f.FrequencyPenalty, responseFormat = f.ResponseFormat;

        w.WriteStartObject();
        WriteSystemInstruction(w, messages);
        WriteContents(w, messages);
        if (tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0)
        {
            WriteTools(w, tools);
            WriteToolConfig(w, toolChoice);
        }

        var hasConfig = temperature.ValueKind == JsonValueKind.Number || topP.ValueKind == JsonValueKind.Number || request.Chat.MaxTokens is not null ||
            RequestTranslation.HasStop(stop) || seed.ValueKind == JsonValueKind.Number || presence.ValueKind == JsonValueKind.Number ||
            frequency.ValueKind == JsonValueKind.Number || responseFormat.ValueKind == JsonValueKind.Object || request.Choices > 1;
        if (hasConfig)
        {
            WriteGenerationConfig(w, request, temperature, topP, stop, seed, presence, frequency, responseFormat);
        }
        w.WriteEndObject();
    }

    private static void WriteGenerationConfig(Utf8JsonWriter w, ProviderRequest request, JsonElement temperature, JsonElement topP, JsonElement stop,
        JsonElement seed, JsonElement presence, JsonElement frequency, JsonElement responseFormat)
    {
        w.WriteStartObject("generationConfig"u8);
        WriteNumber(w, "temperature"u8, temperature);
        WriteNumber(w, "topP"u8, topP);
        if (request.Chat.MaxTokens is { } max) w.WriteNumber("maxOutputTokens"u8, max);
        if (RequestTranslation.HasStop(stop)) RequestTranslation.WriteStop(w, "stopSequences"u8, stop);
        WriteNumber(w, "seed"u8, seed);
        WriteNumber(w, "presencePenalty"u8, presence);
        WriteNumber(w, "frequencyPenalty"u8, frequency);
        // n: Gemini's own candidateCount (GeminiProvider asks for it on non-streamed requests only).
        if (request.Choices > 1) w.WriteNumber("candidateCount"u8, request.Choices);
        WriteResponseFormat(w, responseFormat);
        w.WriteEndObject();
    }

    private static void WriteNumber(Utf8JsonWriter w, ReadOnlySpan<byte> name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number) return;
        w.WritePropertyName(name);
        value.WriteTo(w);
    }

    private static void WriteResponseFormat(Utf8JsonWriter w, JsonElement format)
    {
        if (format.ValueKind != JsonValueKind.Object || !format.TryGetProperty("type"u8, out var type)) return;
        if (type.ValueEquals("json_object"u8))
        {
            w.WriteString("responseMimeType"u8, "application/json"u8);
        }
        else if (type.ValueEquals("json_schema"u8))
        {
            w.WriteString("responseMimeType"u8, "application/json"u8);
            if (format.TryGetProperty("json_schema"u8, out var js) && js.ValueKind == JsonValueKind.Object &&
                js.TryGetProperty("schema"u8, out var schema) && schema.ValueKind == JsonValueKind.Object)
            {
                // responseJsonSchema takes JSON Schema as OpenAI clients write it (responseSchema takes only an OpenAPI subset).
                w.WritePropertyName("responseJsonSchema"u8);
                schema.WriteTo(w);
            }
        }
    }

    private static bool IsSystem(JsonElement role) => role.ValueEquals("system"u8) || role.ValueEquals("developer"u8);

    private static void WriteSystemInstruction(Utf8JsonWriter w, JsonElement messages)
    {
        var open = false;
        foreach (var m in messages.EnumerateArray())
        {
            if (!IsSystem(m.GetProperty("role"u8)) || !m.TryGetProperty("content"u8, out var content)) continue;
            if (content.ValueKind == JsonValueKind.String)
            {
                if (RequestTranslation.IsEmptyString(content)) continue;
                Open(w, ref open);
                WriteTextPart(w, content);
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in content.EnumerateArray())
                {
                    if (!part.GetProperty("type"u8).ValueEquals("text"u8)) continue;
                    var text = part.GetProperty("text"u8);
                    if (RequestTranslation.IsEmptyString(text)) continue;
                    Open(w, ref open);
                    WriteTextPart(w, text);
                }
            }
        }
        if (open)
        {
            w.WriteEndArray();
            w.WriteEndObject();
        }

        static void Open(Utf8JsonWriter w, ref bool open)
        {
            if (open) return;
            w.WriteStartObject("systemInstruction"u8);
            w.WriteStartArray("parts"u8);
            open = true;
        }
    }

    private static void WriteContents(Utf8JsonWriter w, JsonElement messages)
    {
        Dictionary<string, string>? callNames = null;
        w.WriteStartArray("contents"u8);
        var openRole = 0; // 0 none, 1 user, 2 model
        var i = -1;
        foreach (var m in messages.EnumerateArray())
        {
            i++;
            var role = m.GetProperty("role"u8);
            if (IsSystem(role)) continue;
            if (role.ValueEquals("function"u8))
            {
                throw new RequestTranslationException($"'messages[{i}]': role 'function' is deprecated and can't be translated; use 'tool' messages with tool_call_id.", $"messages[{i}].role");
            }
            var isAssistant = role.ValueEquals("assistant"u8);
            var isTool = role.ValueEquals("tool"u8);
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
                w.WriteString("role"u8, isAssistant ? "model"u8 : "user"u8);
                w.WriteStartArray("parts"u8);
                openRole = target;
            }

            if (isTool)
            {
                callNames ??= RequestTranslation.ToolCallNames(messages);
                WriteFunctionResponse(w, m, content, callNames, i);
            }
            else
            {
                WriteParts(w, content, i, allowImages: !isAssistant);
                if (isAssistant) WriteFunctionCalls(w, calls, i);
            }
        }
        if (openRole != 0)
        {
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WriteTextPart(Utf8JsonWriter w, JsonElement text)
    {
        w.WriteStartObject();
        w.WritePropertyName("text"u8);
        text.WriteTo(w);
        w.WriteEndObject();
    }

    private static void WriteParts(Utf8JsonWriter w, JsonElement content, int i, bool allowImages)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            if (!RequestTranslation.IsEmptyString(content)) WriteTextPart(w, content);
            return;
        }
        if (content.ValueKind != JsonValueKind.Array) return;
        foreach (var part in content.EnumerateArray())
        {
            var type = part.GetProperty("type"u8);
            if (type.ValueEquals("text"u8))
            {
                var text = part.GetProperty("text"u8);
                if (!RequestTranslation.IsEmptyString(text)) WriteTextPart(w, text);
            }
            else if (type.ValueEquals("image_url"u8) && allowImages)
            {
                WriteImagePart(w, part, $"messages[{i}].content");
            }
            else if (!type.ValueEquals("refusal"u8))
            {
                throw new RequestTranslationException($"'messages[{i}].content' has a part of type {type.GetRawText()}, which can't be translated for Gemini.", $"messages[{i}].content");
            }
        }
    }

    private static void WriteImagePart(Utf8JsonWriter w, JsonElement part, string param)
    {
        var url = RequestTranslation.ImageUrl(part, param);
        w.WriteStartObject();
        if (RequestTranslation.TryParseDataUrl(url, out var mediaType, out var data))
        {
            w.WriteStartObject("inlineData"u8);
            w.WriteString("mimeType"u8, mediaType);
            w.WriteString("data"u8, data);
            w.WriteEndObject();
        }
        else if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            w.WriteStartObject("fileData"u8);
            w.WriteString("mimeType"u8, GuessImageType(url));
            w.WriteString("fileUri"u8, url);
            w.WriteEndObject();
        }
        else
        {
            throw new RequestTranslationException($"An image in '{param}' must be an http(s) URL or a base64 data URL.", param);
        }
        w.WriteEndObject();
    }

    /// <summary>fileData needs a MIME type; OpenAI's image_url has none, so the URL's extension says (JPEG when it doesn't).</summary>
    private static string GuessImageType(string url)
    {
        var path = url.AsSpan();
        var end = path.IndexOfAny('?', '#');
        if (end >= 0) path = path[..end];
        if (path.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) return "image/png";
        if (path.EndsWith(".webp", StringComparison.OrdinalIgnoreCase)) return "image/webp";
        if (path.EndsWith(".gif", StringComparison.OrdinalIgnoreCase)) return "image/gif";
        if (path.EndsWith(".heic", StringComparison.OrdinalIgnoreCase)) return "image/heic";
        return "image/jpeg";
    }

    private static void WriteFunctionCalls(Utf8JsonWriter w, JsonElement calls, int i)
    {
        if (calls.ValueKind != JsonValueKind.Array) return;
        var param = $"messages[{i}].tool_calls";
        foreach (var call in calls.EnumerateArray())
        {
            var (name, arguments) = RequestTranslation.ToolCallFunction(call, param);
            using (arguments)
            {
                w.WriteStartObject();
                w.WriteStartObject("functionCall"u8);
                w.WritePropertyName("name"u8);
                name.WriteTo(w);
                w.WritePropertyName("args"u8);
                arguments.RootElement.WriteTo(w);
                w.WriteEndObject();
                if (call.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String &&
                    GeminiToolCallIds.Signature(id.GetString()!) is { } signature)
                {
                    w.WriteString("thoughtSignature"u8, signature);
                }
                w.WriteEndObject();
            }
        }
    }

    private static void WriteFunctionResponse(Utf8JsonWriter w, JsonElement message, JsonElement content, Dictionary<string, string> callNames, int i)
    {
        if (!message.TryGetProperty("tool_call_id"u8, out var id) || id.ValueKind != JsonValueKind.String)
        {
            throw new RequestTranslationException($"'messages[{i}]' is a tool message without a string 'tool_call_id'.", $"messages[{i}].tool_call_id");
        }
        if (!callNames.TryGetValue(id.GetString()!, out var name))
        {
            throw new RequestTranslationException($"'messages[{i}].tool_call_id' matches no tool call of an earlier assistant message; Gemini needs the function's name.", $"messages[{i}].tool_call_id");
        }
        w.WriteStartObject();
        w.WriteStartObject("functionResponse"u8);
        w.WriteString("name"u8, name);
        w.WritePropertyName("response"u8);
        var text = RequestTranslation.Text(content) ?? "";
        if (!TryWriteJsonObject(w, text))
        {
            // response must be an object: a plain-text result is wrapped.
            w.WriteStartObject();
            w.WriteString("content"u8, text);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A tool result that is itself a JSON object is passed as that object.</summary>
    private static bool TryWriteJsonObject(Utf8JsonWriter w, string text)
    {
        var trimmed = text.AsSpan().TrimStart();
        if (trimmed.IsEmpty || trimmed[0] != '{') return false;
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
            doc.RootElement.WriteTo(w);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void WriteTools(Utf8JsonWriter w, JsonElement tools)
    {
        w.WriteStartArray("tools"u8);
        w.WriteStartObject();
        w.WriteStartArray("functionDeclarations"u8);
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
            if (fn.TryGetProperty("parameters"u8, out var parameters) && parameters.ValueKind == JsonValueKind.Object)
            {
                // parametersJsonSchema takes the JSON Schema OpenAI clients send (additionalProperties,
                // $defs, ...); the older 'parameters' accepts only an OpenAPI subset and rejects those.
                w.WritePropertyName("parametersJsonSchema"u8);
                parameters.WriteTo(w);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    private static void WriteToolConfig(Utf8JsonWriter w, JsonElement toolChoice)
    {
        var (mode, function) = RequestTranslation.ToolChoice(toolChoice);
        if (mode == "auto") return; // Gemini's default
        w.WriteStartObject("toolConfig"u8);
        w.WriteStartObject("functionCallingConfig"u8);
        w.WriteString("mode"u8, mode == "none" ? "NONE"u8 : "ANY"u8);
        if (function is not null)
        {
            w.WriteStartArray("allowedFunctionNames"u8);
            w.WriteStringValue(function);
            w.WriteEndArray();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
