using System.Buffers;
using System.Text.Json;

namespace LlmGateway.Providers;

/// <summary>
/// Thrown by a request translator for input it cannot express in its provider's format. It never
/// leaves the provider: <see cref="NativeProvider"/> turns it into a <see cref="ProviderFailure"/>.
/// </summary>
public sealed class RequestTranslationException(string message, string? param = null, FailureKind kind = FailureKind.FailRequest) : Exception(message)
{
    public string? Param { get; } = param;
    public FailureKind Kind { get; } = kind;
}

/// <summary>Helpers the OpenAI-to-native request translators share.</summary>
public static class RequestTranslation
{
    /// <summary>Writer options for translated bodies: client strings are copied as they came, escapes included.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Runs a translator and returns the body it wrote.</summary>
    public static byte[] Write<T>(int sizeHint, T state, Action<Utf8JsonWriter, T> write)
    {
        var buffer = new ArrayBufferWriter<byte>(sizeHint);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(w, state);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static bool IsString(JsonElement e) => e.ValueKind == JsonValueKind.String;

    public static bool IsNullOrMissing(JsonElement e) => e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;

    /// <summary>True when a string element is the empty string, without decoding it.</summary>
    public static bool IsEmptyString(JsonElement e) => e.ValueKind == JsonValueKind.String && e.ValueEquals(""u8);

    /// <summary>
    /// Whether a message has anything to send: tool calls, non-empty text or a non-text part. Anthropic
    /// refuses empty text blocks and empty turns and Gemini contents without parts, so a message with
    /// nothing to say is left out of both.
    /// </summary>
    public static bool HasSomethingToSend(JsonElement content, JsonElement calls)
    {
        if (calls.ValueKind == JsonValueKind.Array && calls.GetArrayLength() > 0) return true;
        if (content.ValueKind == JsonValueKind.String) return !IsEmptyString(content);
        if (content.ValueKind != JsonValueKind.Array) return false;
        foreach (var part in content.EnumerateArray())
        {
            var type = part.GetProperty("type"u8);
            if (type.ValueEquals("refusal"u8)) continue; // dropped in translation
            if (!type.ValueEquals("text"u8) || !IsEmptyString(part.GetProperty("text"u8))) return true;
        }
        return false;
    }

    /// <summary>True when <c>stop</c> (a string or an array of strings) names at least one sequence.</summary>
    public static bool HasStop(JsonElement stop) => stop.ValueKind switch
    {
        JsonValueKind.String => !IsEmptyString(stop),
        JsonValueKind.Array => stop.GetArrayLength() > 0,
        _ => false,
    };

    /// <summary>Writes <c>stop</c> as an array of strings under <paramref name="name"/>.</summary>
    public static void WriteStop(Utf8JsonWriter w, ReadOnlySpan<byte> name, JsonElement stop)
    {
        w.WriteStartArray(name);
        if (stop.ValueKind == JsonValueKind.String)
        {
            stop.WriteTo(w);
        }
        else
        {
            foreach (var s in stop.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.String) throw new RequestTranslationException("'stop' must be a string or an array of strings.", "stop");
                s.WriteTo(w);
            }
        }
        w.WriteEndArray();
    }

    /// <summary>The text of a content value (a string, or the text parts of an array joined by newlines); null when there is none.</summary>
    public static string? Text(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString();
        if (content.ValueKind != JsonValueKind.Array) return null;
        string? single = null;
        System.Text.StringBuilder? joined = null;
        foreach (var part in content.EnumerateArray())
        {
            if (!part.TryGetProperty("type"u8, out var type) || !type.ValueEquals("text"u8)) continue;
            var text = part.GetProperty("text"u8).GetString()!;
            if (single is null && joined is null)
            {
                single = text;
                continue;
            }
            joined ??= new System.Text.StringBuilder(single);
            joined.Append('\n').Append(text);
        }
        return joined?.ToString() ?? single;
    }

    /// <summary>A <c>data:</c> URL split into media type and base64 payload; false for any other URL.</summary>
    public static bool TryParseDataUrl(string url, out string mediaType, out string base64)
    {
        mediaType = base64 = "";
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase)) return false;
        var comma = url.IndexOf(',');
        if (comma < 0) return false;
        var header = url.AsSpan(5, comma - 5);
        const string b64 = ";base64";
        if (!header.EndsWith(b64, StringComparison.OrdinalIgnoreCase)) return false;
        mediaType = header[..^b64.Length].ToString();
        if (mediaType.Length == 0) mediaType = "application/octet-stream";
        base64 = url[(comma + 1)..];
        return true;
    }

    /// <summary>The URL of an <c>image_url</c> part (<c>{"image_url":{"url":…}}</c> or the older <c>{"image_url":"…"}</c>).</summary>
    public static string ImageUrl(JsonElement part, string param)
    {
        if (part.TryGetProperty("image_url"u8, out var image))
        {
            if (image.ValueKind == JsonValueKind.String) return image.GetString()!;
            if (image.ValueKind == JsonValueKind.Object && image.TryGetProperty("url"u8, out var url) && url.ValueKind == JsonValueKind.String) return url.GetString()!;
        }
        throw new RequestTranslationException($"An image_url part of '{param}' needs a string 'image_url.url'.", param);
    }

    /// <summary>
    /// The function name of every tool call id in the conversation: native formats answer a tool
    /// call by name (Gemini, Ollama) where OpenAI answers by id.
    /// </summary>
    public static Dictionary<string, string> ToolCallNames(JsonElement messages)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var m in messages.EnumerateArray())
        {
            if (!m.TryGetProperty("tool_calls"u8, out var calls) || calls.ValueKind != JsonValueKind.Array) continue;
            foreach (var call in calls.EnumerateArray())
            {
                if (call.ValueKind == JsonValueKind.Object &&
                    call.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String &&
                    call.TryGetProperty("function"u8, out var fn) && fn.ValueKind == JsonValueKind.Object &&
                    fn.TryGetProperty("name"u8, out var name) && name.ValueKind == JsonValueKind.String)
                {
                    names[id.GetString()!] = name.GetString()!;
                }
            }
        }
        return names;
    }

    /// <summary>
    /// A tool call's function, checked: its name and its arguments as a JSON object (OpenAI sends
    /// them as a string of JSON; native formats want the object itself).
    /// </summary>
    public static (JsonElement Name, JsonDocument Arguments) ToolCallFunction(JsonElement call, string param)
    {
        if (call.ValueKind != JsonValueKind.Object ||
            !call.TryGetProperty("function"u8, out var fn) || fn.ValueKind != JsonValueKind.Object ||
            !fn.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String)
        {
            throw new RequestTranslationException($"Each entry of '{param}' needs a 'function' with a string 'name'.", param);
        }
        var arguments = fn.TryGetProperty("arguments"u8, out var a) ? a : default;
        return (name, ParseArguments(arguments, param));
    }

    /// <summary>Tool call arguments as a JSON object: "" and null become {}; anything but an object is refused.</summary>
    public static JsonDocument ParseArguments(JsonElement arguments, string param)
    {
        JsonDocument doc;
        switch (arguments.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return JsonDocument.Parse("{}"u8.ToArray());
            case JsonValueKind.String:
                var text = arguments.GetString()!;
                if (string.IsNullOrWhiteSpace(text)) return JsonDocument.Parse("{}"u8.ToArray());
                try
                {
                    doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
                }
                catch (JsonException)
                {
                    throw new RequestTranslationException($"'{param}.function.arguments' is not valid JSON.", param);
                }
                break;
            case JsonValueKind.Object:
                // Not OpenAI's format, but unambiguous.
                doc = JsonDocument.Parse(arguments.GetRawText());
                break;
            default:
                throw new RequestTranslationException($"'{param}.function.arguments' must be a string of JSON.", param);
        }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new RequestTranslationException($"'{param}.function.arguments' must encode a JSON object.", param);
        }
        return doc;
    }

    /// <summary>Reads <c>tool_choice</c>: none, auto, required, or the one function named.</summary>
    public static (string Mode, string? Function) ToolChoice(JsonElement choice)
    {
        if (IsNullOrMissing(choice)) return ("auto", null);
        if (choice.ValueKind == JsonValueKind.String)
        {
            if (choice.ValueEquals("none"u8)) return ("none", null);
            if (choice.ValueEquals("auto"u8)) return ("auto", null);
            if (choice.ValueEquals("required"u8)) return ("required", null);
        }
        else if (choice.ValueKind == JsonValueKind.Object &&
                 choice.TryGetProperty("function"u8, out var fn) && fn.ValueKind == JsonValueKind.Object &&
                 fn.TryGetProperty("name"u8, out var name) && name.ValueKind == JsonValueKind.String)
        {
            return ("function", name.GetString());
        }
        throw new RequestTranslationException("'tool_choice' must be none, auto, required or {\"type\":\"function\",\"function\":{\"name\":…}}.", "tool_choice");
    }

    /// <summary>Checks one entry of <c>tools</c> and returns its function object.</summary>
    public static JsonElement ToolFunction(JsonElement tool, int index)
    {
        if (tool.TryGetProperty("type"u8, out var type) && !type.ValueEquals("function"u8))
        {
            throw new RequestTranslationException($"'tools[{index}]' has type {type.GetRawText()}; only function tools can be translated for this model.", $"tools[{index}]");
        }
        if (!tool.TryGetProperty("function"u8, out var fn) || fn.ValueKind != JsonValueKind.Object ||
            !fn.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String)
        {
            throw new RequestTranslationException($"'tools[{index}].function' needs a string 'name'.", $"tools[{index}].function");
        }
        return fn;
    }
}

/// <summary>Helpers the native error translators share.</summary>
public static class NativeErrors
{
    /// <summary>
    /// Overrides the status-based classification where the provider's body says more (a 400 that is
    /// really a bad key, say), keeping the message in the shape that kind gets.
    /// </summary>
    public static ProviderFailure WithKind(ProviderFailure failure, FailureKind kind)
    {
        if (failure.Kind == kind) return failure;
        var message = failure.Message;
        if (failure.Kind == FailureKind.FailRequest)
        {
            // A FailRequest message is the upstream's own words for the client; other kinds name the provider.
            message = $"Provider '{failure.Provider}' returned {failure.UpstreamStatus}: {message}";
        }
        return failure with { Kind = kind, Message = message };
    }

    /// <summary>A short plain-text excerpt of an error body that is not the JSON the provider documents.</summary>
    public static string? Excerpt(ReadOnlySpan<byte> body) =>
        body.IsEmpty ? null : System.Text.Encoding.UTF8.GetString(body[..Math.Min(body.Length, 300)]);
}

/// <summary>
/// The request fields the native translators read, found in one pass over the body's top level.
/// A field the client did not send is <c>default</c> (ValueKind Undefined).
/// </summary>
public readonly struct ChatFields
{
    public JsonElement Messages { get; private init; }
    public JsonElement Tools { get; private init; }
    public JsonElement ToolChoice { get; private init; }
    public JsonElement ParallelToolCalls { get; private init; }
    public JsonElement Stop { get; private init; }
    public JsonElement Temperature { get; private init; }
    public JsonElement TopP { get; private init; }
    public JsonElement N { get; private init; }
    public JsonElement Seed { get; private init; }
    public JsonElement PresencePenalty { get; private init; }
    public JsonElement FrequencyPenalty { get; private init; }
    public JsonElement ResponseFormat { get; private init; }
    public JsonElement User { get; private init; }

    public static ChatFields Read(JsonElement root)
    {
        JsonElement messages = default, tools = default, toolChoice = default, parallel = default, stop = default, temperature = default,
            topP = default, n = default, seed = default, presence = default, frequency = default, responseFormat = default, user = default;
        foreach (var p in root.EnumerateObject())
        {
            if (p.NameEquals("messages"u8)) messages = p.Value;
            else if (p.NameEquals("tools"u8)) tools = p.Value;
            else if (p.NameEquals("tool_choice"u8)) toolChoice = p.Value;
            else if (p.NameEquals("parallel_tool_calls"u8)) parallel = p.Value;
            else if (p.NameEquals("stop"u8)) stop = p.Value;
            else if (p.NameEquals("temperature"u8)) temperature = p.Value;
            else if (p.NameEquals("top_p"u8)) topP = p.Value;
            else if (p.NameEquals("n"u8)) n = p.Value;
            else if (p.NameEquals("seed"u8)) seed = p.Value;
            else if (p.NameEquals("presence_penalty"u8)) presence = p.Value;
            else if (p.NameEquals("frequency_penalty"u8)) frequency = p.Value;
            else if (p.NameEquals("response_format"u8)) responseFormat = p.Value;
            else if (p.NameEquals("user"u8)) user = p.Value;
        }
        return new ChatFields
        {
            Messages = messages, Tools = tools, ToolChoice = toolChoice, ParallelToolCalls = parallel, Stop = stop,
            Temperature = temperature, TopP = topP, N = n, Seed = seed, PresencePenalty = presence,
            FrequencyPenalty = frequency, ResponseFormat = responseFormat, User = user,
        };
    }
}
