using System.Text.Json;

namespace LlmGateway.Providers.Ollama;

/// <summary>
/// An OpenAI chat request as an Ollama <c>/api/chat</c> request. Messages keep their roles (developer
/// becomes system); content becomes one string plus base64 <c>images</c>; assistant tool calls carry
/// their arguments as an object and tool results the function's name; sampling settings go to
/// <c>options</c> (max_tokens is num_predict) and response_format to <c>format</c>.
/// </summary>
public static class OllamaRequestWriter
{
    public static byte[] Write(ProviderRequest request) =>
        RequestTranslation.Write(request.Chat.Body.Length + 128, request, static (w, r) => Write(w, r));

    public static void Write(Utf8JsonWriter w, ProviderRequest request)
    {
        var f = ChatFields.Read(request.Chat.Root);
        JsonElement messages = f.Messages, tools = f.Tools, toolChoice = f.ToolChoice, stop = f.Stop, temperature = f.Temperature, topP = f.TopP,
            seed = f.Seed, presence = f.PresencePenalty, frequency = f.FrequencyPenalty, responseFormat = f.ResponseFormat;

        w.WriteStartObject();
        w.WriteString("model"u8, request.UpstreamModel);
        WriteMessages(w, messages);
        // Ollama streams unless told otherwise.
        w.WriteBoolean("stream"u8, request.Stream);

        // Ollama has no tool_choice: "none" is honoured by not offering the tools; "required" and a
        // named function can't be enforced and are left to the model.
        var (mode, _) = RequestTranslation.ToolChoice(toolChoice);
        if (tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0 && mode != "none")
        {
            w.WriteStartArray("tools"u8);
            var i = 0;
            foreach (var tool in tools.EnumerateArray())
            {
                RequestTranslation.ToolFunction(tool, i++);
                tool.WriteTo(w); // Ollama takes OpenAI's tool format as it is
            }
            w.WriteEndArray();
        }

        WriteFormat(w, responseFormat);

        var hasOptions = temperature.ValueKind == JsonValueKind.Number || topP.ValueKind == JsonValueKind.Number || request.Chat.MaxTokens is not null ||
            RequestTranslation.HasStop(stop) || seed.ValueKind == JsonValueKind.Number || presence.ValueKind == JsonValueKind.Number ||
            frequency.ValueKind == JsonValueKind.Number;
        if (hasOptions)
        {
            w.WriteStartObject("options"u8);
            WriteNumber(w, "temperature"u8, temperature);
            WriteNumber(w, "top_p"u8, topP);
            if (request.Chat.MaxTokens is { } max) w.WriteNumber("num_predict"u8, max);
            if (RequestTranslation.HasStop(stop)) RequestTranslation.WriteStop(w, "stop"u8, stop);
            WriteNumber(w, "seed"u8, seed);
            WriteNumber(w, "presence_penalty"u8, presence);
            WriteNumber(w, "frequency_penalty"u8, frequency);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteNumber(Utf8JsonWriter w, ReadOnlySpan<byte> name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number) return;
        w.WritePropertyName(name);
        value.WriteTo(w);
    }

    private static void WriteFormat(Utf8JsonWriter w, JsonElement format)
    {
        if (format.ValueKind != JsonValueKind.Object || !format.TryGetProperty("type"u8, out var type)) return;
        if (type.ValueEquals("json_object"u8))
        {
            w.WriteString("format"u8, "json"u8);
        }
        else if (type.ValueEquals("json_schema"u8) &&
                 format.TryGetProperty("json_schema"u8, out var js) && js.ValueKind == JsonValueKind.Object &&
                 js.TryGetProperty("schema"u8, out var schema) && schema.ValueKind == JsonValueKind.Object)
        {
            w.WritePropertyName("format"u8);
            schema.WriteTo(w);
        }
    }

    private static void WriteMessages(Utf8JsonWriter w, JsonElement messages)
    {
        Dictionary<string, string>? callNames = null;
        w.WriteStartArray("messages"u8);
        var i = -1;
        foreach (var m in messages.EnumerateArray())
        {
            i++;
            var role = m.GetProperty("role"u8);
            if (role.ValueEquals("function"u8))
            {
                throw new RequestTranslationException($"'messages[{i}]': role 'function' is deprecated and can't be translated; use 'tool' messages with tool_call_id.", $"messages[{i}].role");
            }
            w.WriteStartObject();
            if (role.ValueEquals("developer"u8)) w.WriteString("role"u8, "system"u8);
            else
            {
                w.WritePropertyName("role"u8);
                role.WriteTo(w);
            }

            m.TryGetProperty("content"u8, out var content);
            if (content.ValueKind == JsonValueKind.String)
            {
                w.WritePropertyName("content"u8);
                content.WriteTo(w);
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                WriteParts(w, content, i);
            }
            else
            {
                w.WriteString("content"u8, ""u8);
            }

            if (role.ValueEquals("assistant"u8) && m.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array && calls.GetArrayLength() > 0)
            {
                WriteToolCalls(w, calls, i);
            }
            else if (role.ValueEquals("tool"u8) && m.TryGetProperty("tool_call_id"u8, out var id) && id.ValueKind == JsonValueKind.String)
            {
                callNames ??= RequestTranslation.ToolCallNames(messages);
                if (callNames.TryGetValue(id.GetString()!, out var name)) w.WriteString("tool_name"u8, name);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Text parts joined into the one content string; images (base64 only: Ollama fetches no URLs) into <c>images</c>.</summary>
    private static void WriteParts(Utf8JsonWriter w, JsonElement content, int i)
    {
        w.WriteString("content"u8, RequestTranslation.Text(content) ?? "");
        var images = false;
        foreach (var part in content.EnumerateArray())
        {
            var type = part.GetProperty("type"u8);
            if (type.ValueEquals("text"u8) || type.ValueEquals("refusal"u8)) continue;
            var param = $"messages[{i}].content";
            if (!type.ValueEquals("image_url"u8))
            {
                throw new RequestTranslationException($"'{param}' has a part of type {type.GetRawText()}, which can't be translated for Ollama.", param);
            }
            if (!RequestTranslation.TryParseDataUrl(RequestTranslation.ImageUrl(part, param), out _, out var data))
            {
                throw new RequestTranslationException($"Ollama takes images only as base64 data URLs (data:image/png;base64,…), not links, in '{param}'.", param);
            }
            if (!images)
            {
                w.WriteStartArray("images"u8);
                images = true;
            }
            w.WriteStringValue(data);
        }
        if (images) w.WriteEndArray();
    }

    private static void WriteToolCalls(Utf8JsonWriter w, JsonElement calls, int i)
    {
        var param = $"messages[{i}].tool_calls";
        w.WriteStartArray("tool_calls"u8);
        foreach (var call in calls.EnumerateArray())
        {
            var (name, arguments) = RequestTranslation.ToolCallFunction(call, param);
            using (arguments)
            {
                w.WriteStartObject();
                w.WriteStartObject("function"u8);
                w.WritePropertyName("name"u8);
                name.WriteTo(w);
                w.WritePropertyName("arguments"u8);
                arguments.RootElement.WriteTo(w);
                w.WriteEndObject();
                w.WriteEndObject();
            }
        }
        w.WriteEndArray();
    }
}
