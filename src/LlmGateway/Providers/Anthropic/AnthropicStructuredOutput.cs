using System.Text.Json;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// <c>response_format</c> (json_schema, json_object) for Anthropic, which has no such parameter on
/// every model: a tool whose <c>input_schema</c> is the schema, forced with <c>tool_choice</c>, so
/// the model must answer by "calling" it; its input comes back as the message content (the JSON
/// text OpenAI's SDKs parse), streamed or not, with finish_reason <c>stop</c>. json_object is the
/// same with any object as the schema. With the client's own tools in the request the answer tool
/// is offered beside them, not forced, and the client's tool_choice stands.
/// </summary>
public static class AnthropicStructuredOutput
{
    /// <summary>The answer tool's name: reserved, so a call to it is never mistaken for the client's tool.</summary>
    public const string ToolName = "json_answer";

    /// <summary>The schema to answer with (an object schema for json_object); null when no JSON answer was asked for.</summary>
    public static bool TryRead(JsonElement responseFormat, out JsonElement schema, out string? description)
    {
        schema = default;
        description = null;
        if (responseFormat.ValueKind != JsonValueKind.Object || !responseFormat.TryGetProperty("type"u8, out var type)) return false;
        if (type.ValueEquals("json_object"u8)) return true;
        if (!type.ValueEquals("json_schema"u8)) return false; // "text": nothing to do
        if (!responseFormat.TryGetProperty("json_schema"u8, out var js) || js.ValueKind != JsonValueKind.Object)
        {
            throw new RequestTranslationException("'response_format' of type json_schema needs a 'json_schema' object.", "response_format.json_schema");
        }
        if (js.TryGetProperty("schema"u8, out var s) && s.ValueKind == JsonValueKind.Object) schema = s;
        if (js.TryGetProperty("description"u8, out var d) && d.ValueKind == JsonValueKind.String) description = d.GetString();
        return true;
    }

    /// <summary>True when this request's answer comes back through the answer tool.</summary>
    public static bool IsRequested(ProviderRequest request) =>
        request.Chat.Root.TryGetProperty("response_format"u8, out var format) && TryReadQuietly(format);

    private static bool TryReadQuietly(JsonElement format)
    {
        try
        {
            return TryRead(format, out _, out _);
        }
        catch (RequestTranslationException)
        {
            return false;
        }
    }

    /// <summary>The answer tool, as one entry of Anthropic's <c>tools</c>.</summary>
    public static void WriteTool(Utf8JsonWriter w, JsonElement schema, string? description)
    {
        w.WriteStartObject();
        w.WriteString("name"u8, ToolName);
        w.WriteString("description"u8, description ?? "Give the answer as JSON: call this tool with the answer as its input.");
        w.WritePropertyName("input_schema"u8);
        if (schema.ValueKind == JsonValueKind.Object)
        {
            schema.WriteTo(w);
        }
        else
        {
            // json_object: any JSON object.
            w.WriteStartObject();
            w.WriteString("type"u8, "object"u8);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }
}
