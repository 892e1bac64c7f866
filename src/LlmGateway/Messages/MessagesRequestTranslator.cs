using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmGateway.Http;

namespace LlmGateway.Messages;

/// <summary>An Anthropic Messages request as the gateway's Chat Completions request, or the 400 that says why not.</summary>
/// <param name="Untranslatable">
/// With <c>native</c> translation: the first part of the request the chat format can't carry (it is left
/// out of <paramref name="ChatBody"/>), so that only a provider taking the Messages body as it is may serve it.
/// </param>
public sealed record MessagesTranslation(byte[]? ChatBody, string Model, bool Stream, ApiError? Error, ApiError? Untranslatable = null)
{
    public static MessagesTranslation Failed(ApiError error) => new(null, "", false, error);
}

/// <summary>
/// Anthropic Messages in, OpenAI Chat Completions out: the gateway's own format, which every provider
/// translates from. What maps:
/// <list type="bullet">
/// <item><c>system</c> (a string or text blocks) → one system message, blocks joined by blank lines.</item>
/// <item>text and image blocks (base64 → a data URL, url → the URL) → content parts.</item>
/// <item>assistant <c>tool_use</c> blocks → <c>tool_calls</c>; <c>input</c> becomes the JSON arguments string.</item>
/// <item>user <c>tool_result</c> blocks → <c>tool</c> messages, before the rest of that user turn (chat
/// requires them right after the calls). Their text is joined; <c>is_error</c> prefixes "Error: ";
/// images a tool returned follow in the user message, introduced by which call returned them
/// (a chat tool message can only hold text).</item>
/// <item><c>tools</c> → function tools (<c>input_schema</c> → <c>parameters</c>, <c>strict</c> kept);
/// <c>tool_choice</c> auto/any/tool/none → auto/required/function/none;
/// <c>disable_parallel_tool_use</c> → <c>parallel_tool_calls: false</c>.</item>
/// <item><c>max_tokens</c> (required) → <c>max_completion_tokens</c>; <c>stop_sequences</c> → <c>stop</c>;
/// <c>temperature</c>, <c>top_p</c> as they are; <c>metadata.user_id</c> → <c>user</c>, the gateway's
/// <c>metadata.task_type</c> kept; <c>output_config.format</c> (json_schema) → <c>response_format</c>;
/// <c>stream</c> → <c>stream</c> with usage.</item>
/// </list>
/// What a chat target can't honour is refused with a 400 that names it, never dropped (unless an
/// <c>anthropic</c>-type provider takes the request natively, see <see cref="Translate"/>): <c>top_k</c>,
/// <c>thinking</c> other than disabled, <c>output_config.effort</c>, document / search_result /
/// container_upload / server-tool blocks, file image sources, built-in tool types (bash, text editor,
/// web search, computer use…), <c>mcp_servers</c>, <c>container</c>, <c>context_management</c>,
/// <c>inference_geo</c>, and any top-level field this translation doesn't know (Anthropic refuses those too).
/// Dropped on purpose, because they change cost or latency but never the answer: <c>cache_control</c>
/// (prompt-cache breakpoints), <c>service_tier</c>, <c>citations</c> on text blocks, and the
/// <c>thinking</c> blocks of earlier assistant turns (Anthropic itself strips those from the context).
/// </summary>
public static class MessagesRequestTranslator
{
    /// <summary>The name of the schema a chat target's <c>response_format</c> requires; Anthropic's format has none.</summary>
    public const string OutputSchemaName = "output";

    /// <param name="Removable">
    /// Set when the request is valid Messages but the chat format can't carry this part: the path (dot-separated,
    /// array indexes as numbers) of what to leave out of the translation so that the rest can still be read.
    /// </param>
    private sealed class Refusal(ApiError error, string? removable = null) : Exception(error.Message)
    {
        public ApiError Error { get; } = error;
        public string? Removable { get; } = removable;
    }

    /// <summary>How many untranslatable parts a native translation leaves out before it gives up (with the first one's 400).</summary>
    public const int MaxUntranslatable = 64;

    /// <summary>
    /// Translates a <c>/v1/messages</c> body (<paramref name="countTokens"/> false) or a
    /// <c>/v1/messages/count_tokens</c> body (true: <c>max_tokens</c> is not required, nothing streams).
    /// With <paramref name="native"/>, a part the chat format can't carry (a field only Anthropic knows,
    /// <c>top_k</c>, <c>thinking</c>, a server-tool block…) is left out of the chat body and reported in
    /// <see cref="MessagesTranslation.Untranslatable"/> instead of refusing the request: the chat body then
    /// serves routing and estimates, and only an <c>anthropic</c>-type provider, which gets the client's
    /// own body, may answer.
    /// </summary>
    public static MessagesTranslation Translate(ReadOnlyMemory<byte> body, bool countTokens, bool native = false)
    {
        using var document = RequestJson.Parse(body, out var parseError);
        if (document is null) return MessagesTranslation.Failed(parseError!);
        try
        {
            return Translate(document.RootElement, countTokens, body.Length);
        }
        catch (Refusal r) when (native && r.Removable is not null)
        {
            return TranslateWithout(document.RootElement, r, countTokens, body.Length);
        }
        catch (Refusal r)
        {
            return MessagesTranslation.Failed(r.Error);
        }
        catch (InvalidOperationException)
        {
            // A string with an escaped unpaired surrogate is valid JSON syntax but no text.
            return MessagesTranslation.Failed(RequestJson.NotUnicode());
        }
    }

    /// <summary>
    /// The translation of the request without the parts the chat format can't carry: each refusal names
    /// what to leave out, and the rest is translated again (a copy of the request, only on this path).
    /// </summary>
    private static MessagesTranslation TranslateWithout(JsonElement root, Refusal first, bool countTokens, int sizeHint)
    {
        var node = JsonNode.Parse(root.GetRawText(), documentOptions: new JsonDocumentOptions { MaxDepth = 64 })!;
        var refusal = first;
        for (var i = 0; i < MaxUntranslatable; i++)
        {
            if (!Remove(node, refusal.Removable!)) break;
            var stripped = new ArrayBufferWriter<byte>(sizeHint);
            using (var w = new Utf8JsonWriter(stripped, s_writerOptions)) node.WriteTo(w);
            using var document = JsonDocument.Parse(stripped.WrittenMemory, new JsonDocumentOptions { MaxDepth = 64 });
            try
            {
                return Translate(document.RootElement, countTokens, sizeHint) with { Untranslatable = first.Error };
            }
            catch (Refusal next) when (next.Removable is not null)
            {
                refusal = next;
            }
            catch (Refusal next)
            {
                return MessagesTranslation.Failed(next.Error);
            }
            catch (InvalidOperationException)
            {
                return MessagesTranslation.Failed(RequestJson.NotUnicode());
            }
        }
        return MessagesTranslation.Failed(first.Error);
    }

    /// <summary>Removes the property or array item at <paramref name="path"/>; false when there is none.</summary>
    private static bool Remove(JsonNode root, string path)
    {
        // A top-level field is named whole: its name may hold a dot.
        if (root is JsonObject top && top.ContainsKey(path)) return top.Remove(path);
        var segments = path.Split('.');
        JsonNode? parent = root;
        for (var i = 0; i < segments.Length - 1 && parent is not null; i++)
        {
            parent = parent switch
            {
                JsonObject o => o[segments[i]],
                JsonArray a when int.TryParse(segments[i], out var index) && index >= 0 && index < a.Count => a[index],
                _ => null,
            };
        }
        var last = segments[^1];
        switch (parent)
        {
            case JsonObject o:
                return o.Remove(last);
            case JsonArray a when int.TryParse(last, out var index) && index >= 0 && index < a.Count:
                a.RemoveAt(index);
                return true;
            default:
                return false;
        }
    }

    private static MessagesTranslation Translate(JsonElement root, bool countTokens, int sizeHint)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Fail("", "The request body must be a JSON object.");

        JsonElement model = default, maxTokens = default, messages = default, system = default, stop = default, temperature = default,
            topP = default, metadata = default, stream = default, tools = default, toolChoice = default, outputConfig = default;
        foreach (var p in root.EnumerateObject())
        {
            switch (p.Name)
            {
                case "model": model = p.Value; break;
                case "max_tokens": maxTokens = p.Value; break;
                case "messages": messages = p.Value; break;
                case "system": system = p.Value; break;
                case "stop_sequences": stop = p.Value; break;
                case "temperature": temperature = p.Value; break;
                case "top_p": topP = p.Value; break;
                case "metadata": metadata = p.Value; break;
                case "stream": stream = p.Value; break;
                case "tools": tools = p.Value; break;
                case "tool_choice": toolChoice = p.Value; break;
                case "output_config": outputConfig = p.Value; break;
                case "top_k":
                    // Chat Completions has no top_k, so no target behind the translation can honour it.
                    if (!IsNull(p.Value) && !countTokens) throw Untranslatable("top_k", "top_k", "can't be honoured: the gateway translates to the OpenAI Chat Completions format, which has no top_k. Leave it out, or use top_p.");
                    break;
                case "thinking":
                    // Counting generates nothing, so what only generation can't honour doesn't stop a count.
                    if (!countTokens) CheckThinking(p.Value);
                    break;
                case "service_tier":
                case "cache_control":
                    // Hints about capacity and prompt caching: they change cost or latency, never the answer.
                    break;
                case "container":
                case "mcp_servers":
                case "context_management":
                case "inference_geo":
                    if (!IsNull(p.Value) && !countTokens) throw Untranslatable(p.Name, p.Name, "can't be honoured: it needs Anthropic's own servers, and the gateway translates this request for any provider.");
                    break;
                default:
                    throw Untranslatable(p.Name, p.Name, "Extra inputs are not permitted.");
            }
        }

        if (model.ValueKind != JsonValueKind.String || model.ValueEquals(""u8)) throw Fail("model", "Field required: a non-empty string.");
        var maxOutput = 0;
        if (!countTokens || !IsNull(maxTokens))
        {
            if (IsNull(maxTokens)) throw Fail("max_tokens", "Field required.");
            if (maxTokens.ValueKind != JsonValueKind.Number || !maxTokens.TryGetInt32(out maxOutput) || maxOutput < 1)
                throw Fail("max_tokens", "must be a positive integer.");
        }
        if (messages.ValueKind != JsonValueKind.Array) throw Fail("messages", "Field required: an array of messages.");
        if (messages.GetArrayLength() == 0) throw Fail("messages", "at least one message is required.");
        var isStream = false;
        if (!IsNull(stream))
        {
            if (stream.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Fail("stream", "must be a boolean.");
            isStream = stream.GetBoolean() && !countTokens;
        }

        var buffer = new ArrayBufferWriter<byte>(sizeHint + 256);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
        {
            w.WriteStartObject();
            w.WritePropertyName("model"u8);
            model.WriteTo(w);
            if (maxOutput > 0) w.WriteNumber("max_completion_tokens"u8, maxOutput);

            w.WriteStartArray("messages"u8);
            WriteSystem(w, system);
            var i = 0;
            foreach (var message in messages.EnumerateArray())
            {
                WriteMessage(w, message, $"messages.{i}");
                i++;
            }
            w.WriteEndArray();

            WriteNumberInRange(w, temperature, "temperature", 0, 1);
            WriteNumberInRange(w, topP, "top_p", 0, 1);
            WriteStop(w, stop);
            WriteMetadata(w, metadata);
            var hasTools = WriteTools(w, tools);
            WriteToolChoice(w, toolChoice, hasTools);
            if (!countTokens) WriteOutputConfig(w, outputConfig);
            if (isStream)
            {
                w.WriteBoolean("stream"u8, true);
                w.WriteStartObject("stream_options"u8);
                w.WriteBoolean("include_usage"u8, true);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return new MessagesTranslation(buffer.WrittenSpan.ToArray(), model.GetString()!, isStream, null);
    }

    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        // The client's text goes upstream as written (no \u0027 for an apostrophe); it's an HTTP body, not HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        MaxDepth = 128,
    };

    private static void CheckThinking(JsonElement thinking)
    {
        if (IsNull(thinking)) return;
        if (thinking.ValueKind != JsonValueKind.Object || !thinking.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            throw Fail("thinking", "must be an object with a string 'type'.");
        if (type.ValueEquals("disabled"u8)) return;
        throw Untranslatable("thinking", "thinking", "extended thinking can't be honoured: the gateway translates to the OpenAI Chat Completions format, which has no thinking blocks. Leave 'thinking' out or set {\"type\":\"disabled\"}.");
    }

    private static void WriteSystem(Utf8JsonWriter w, JsonElement system)
    {
        if (IsNull(system)) return;
        if (system.ValueKind == JsonValueKind.String)
        {
            if (system.ValueEquals(""u8)) return;
            w.WriteStartObject();
            w.WriteString("role"u8, "system"u8);
            w.WritePropertyName("content"u8);
            system.WriteTo(w);
            w.WriteEndObject();
            return;
        }
        if (system.ValueKind != JsonValueKind.Array) throw Fail("system", "must be a string or an array of text blocks.");
        var texts = new List<string>();
        var i = 0;
        foreach (var block in system.EnumerateArray())
        {
            var path = $"system.{i++}";
            if (BlockType(block, path) != "text") throw Fail(path, "only text blocks are accepted in 'system'.");
            var text = Text(block, path);
            if (text.Length > 0) texts.Add(text);
        }
        if (texts.Count == 0) return;
        w.WriteStartObject();
        w.WriteString("role"u8, "system"u8);
        w.WriteString("content"u8, string.Join("\n\n", texts));
        w.WriteEndObject();
    }

    private static void WriteMessage(Utf8JsonWriter w, JsonElement message, string path)
    {
        if (message.ValueKind != JsonValueKind.Object) throw Fail(path, "must be an object with 'role' and 'content'.");
        if (!message.TryGetProperty("role"u8, out var role) || role.ValueKind != JsonValueKind.String)
            throw Fail($"{path}.role", "Field required: 'user' or 'assistant'.");
        if (!message.TryGetProperty("content"u8, out var content)) throw Fail($"{path}.content", "Field required.");
        var roleName = role.ValueEquals("user"u8) ? "user" : role.ValueEquals("assistant"u8) ? "assistant" : role.ValueEquals("system"u8) ? "system" : null;
        if (roleName is null) throw Fail($"{path}.role", "must be 'user' or 'assistant'.");

        if (content.ValueKind == JsonValueKind.String)
        {
            w.WriteStartObject();
            w.WriteString("role"u8, roleName);
            w.WritePropertyName("content"u8);
            content.WriteTo(w);
            w.WriteEndObject();
            return;
        }
        if (content.ValueKind != JsonValueKind.Array) throw Fail($"{path}.content", "must be a string or an array of content blocks.");
        switch (roleName)
        {
            case "assistant": WriteAssistant(w, content, path); break;
            case "user": WriteUser(w, content, path); break;
            default: WriteSystemMessage(w, content, path); break;
        }
    }

    /// <summary>A message with role system (newer SDKs allow it among the messages): its text blocks.</summary>
    private static void WriteSystemMessage(Utf8JsonWriter w, JsonElement content, string path)
    {
        var texts = new List<string>();
        var i = 0;
        foreach (var block in content.EnumerateArray())
        {
            var at = $"{path}.content.{i++}";
            if (BlockType(block, at) != "text") throw Fail(at, "only text blocks are accepted in a system message.");
            texts.Add(Text(block, at));
        }
        w.WriteStartObject();
        w.WriteString("role"u8, "system"u8);
        w.WriteString("content"u8, string.Join("\n\n", texts));
        w.WriteEndObject();
    }

    private static void WriteAssistant(Utf8JsonWriter w, JsonElement content, string path)
    {
        var texts = new List<string>();
        var calls = new List<JsonElement>();
        var i = 0;
        foreach (var block in content.EnumerateArray())
        {
            var at = $"{path}.content.{i++}";
            switch (BlockType(block, at))
            {
                case "text":
                    var text = Text(block, at);
                    if (text.Length > 0) texts.Add(text);
                    break;
                case "tool_use":
                    CheckToolUse(block, at);
                    calls.Add(block);
                    break;
                case "thinking":
                case "redacted_thinking":
                    // The reasoning of an earlier turn: Anthropic strips it from the context itself.
                    break;
                case var other:
                    throw Unhonourable(at, other);
            }
        }

        w.WriteStartObject();
        w.WriteString("role"u8, "assistant"u8);
        // Separate text blocks are separate paragraphs; a turn that only calls tools has null content, as in chat.
        if (texts.Count > 0) w.WriteString("content"u8, string.Join("\n\n", texts));
        else if (calls.Count > 0) w.WriteNull("content"u8);
        else w.WriteString("content"u8, ""u8);
        if (calls.Count > 0)
        {
            w.WriteStartArray("tool_calls"u8);
            foreach (var call in calls)
            {
                w.WriteStartObject();
                w.WritePropertyName("id"u8);
                call.GetProperty("id"u8).WriteTo(w);
                w.WriteString("type"u8, "function"u8);
                w.WriteStartObject("function"u8);
                w.WritePropertyName("name"u8);
                call.GetProperty("name"u8).WriteTo(w);
                w.WriteString("arguments"u8, call.TryGetProperty("input"u8, out var input) && !IsNull(input) ? input.GetRawText() : "{}");
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void CheckToolUse(JsonElement block, string path)
    {
        if (!block.TryGetProperty("id"u8, out var id) || id.ValueKind != JsonValueKind.String || id.ValueEquals(""u8))
            throw Fail($"{path}.id", "Field required: a non-empty string.");
        if (!block.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String || name.ValueEquals(""u8))
            throw Fail($"{path}.name", "Field required: a non-empty string.");
        if (block.TryGetProperty("input"u8, out var input) && !IsNull(input) && input.ValueKind != JsonValueKind.Object)
            throw Fail($"{path}.input", "must be an object.");
    }

    /// <summary>
    /// A user turn: its tool results first, as tool messages (chat wants them right after the
    /// assistant's calls), then one user message with the images the tools returned and the turn's own blocks.
    /// </summary>
    private static void WriteUser(Utf8JsonWriter w, JsonElement content, string path)
    {
        var hasOwnBlocks = false;
        var hasToolImages = false;
        var i = 0;
        foreach (var block in content.EnumerateArray())
        {
            var at = $"{path}.content.{i++}";
            var type = BlockType(block, at);
            if (type == "tool_result") hasToolImages |= WriteToolResult(w, block, at);
            else if (type is "text" or "image") hasOwnBlocks = true;
            else if (type is "tool_use" or "thinking" or "redacted_thinking") throw Fail(at, $"a '{type}' block belongs in an assistant message.");
            else throw Unhonourable(at, type);
        }
        if (!hasOwnBlocks && !hasToolImages)
        {
            // Only tool results (the usual case), or nothing: an empty user turn is still a turn.
            if (i == 0)
            {
                w.WriteStartObject();
                w.WriteString("role"u8, "user"u8);
                w.WriteString("content"u8, ""u8);
                w.WriteEndObject();
            }
            return;
        }

        w.WriteStartObject();
        w.WriteString("role"u8, "user"u8);
        w.WriteStartArray("content"u8);
        if (hasToolImages)
        {
            foreach (var block in content.EnumerateArray())
            {
                if (block.GetProperty("type"u8).ValueEquals("tool_result"u8)) WriteToolResultImages(w, block, path);
            }
        }
        i = 0;
        foreach (var block in content.EnumerateArray())
        {
            var at = $"{path}.content.{i++}";
            var type = block.GetProperty("type"u8);
            if (type.ValueEquals("text"u8)) WriteTextPart(w, Text(block, at));
            else if (type.ValueEquals("image"u8)) WriteImagePart(w, block, at);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Writes one tool message; true when the result also holds images (they follow in the user message).</summary>
    private static bool WriteToolResult(Utf8JsonWriter w, JsonElement block, string path)
    {
        if (!block.TryGetProperty("tool_use_id"u8, out var id) || id.ValueKind != JsonValueKind.String || id.ValueEquals(""u8))
            throw Fail($"{path}.tool_use_id", "Field required: a non-empty string.");
        var isError = false;
        if (block.TryGetProperty("is_error"u8, out var e) && !IsNull(e))
        {
            if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Fail($"{path}.is_error", "must be a boolean.");
            isError = e.GetBoolean();
        }

        string text;
        var hasImages = false;
        block.TryGetProperty("content"u8, out var content);
        if (IsNull(content)) text = "";
        else if (content.ValueKind == JsonValueKind.String) text = content.GetString()!;
        else if (content.ValueKind == JsonValueKind.Array)
        {
            var texts = new List<string>();
            var i = 0;
            foreach (var part in content.EnumerateArray())
            {
                var at = $"{path}.content.{i++}";
                switch (BlockType(part, at))
                {
                    case "text":
                        texts.Add(Text(part, at));
                        break;
                    case "image":
                        CheckImage(part, at);
                        hasImages = true;
                        break;
                    case var other:
                        throw Unhonourable(at, other);
                }
            }
            text = string.Join("\n", texts);
        }
        else throw Fail($"{path}.content", "must be a string or an array of text and image blocks.");

        w.WriteStartObject();
        w.WriteString("role"u8, "tool"u8);
        w.WritePropertyName("tool_call_id"u8);
        id.WriteTo(w);
        // A chat tool message has no error flag: the model is told in the text instead.
        w.WriteString("content"u8, isError ? "Error: " + text : text);
        w.WriteEndObject();
        return hasImages;
    }

    private static void WriteToolResultImages(Utf8JsonWriter w, JsonElement block, string path)
    {
        if (!block.TryGetProperty("content"u8, out var content) || content.ValueKind != JsonValueKind.Array) return;
        var intro = false;
        foreach (var part in content.EnumerateArray())
        {
            if (!part.GetProperty("type"u8).ValueEquals("image"u8)) continue;
            if (!intro)
            {
                WriteTextPart(w, $"Images returned by tool call {block.GetProperty("tool_use_id"u8).GetString()}:");
                intro = true;
            }
            WriteImagePart(w, part, path);
        }
    }

    private static void WriteTextPart(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type"u8, "text"u8);
        w.WriteString("text"u8, text);
        w.WriteEndObject();
    }

    private static void CheckImage(JsonElement block, string path) => ImageUrl(block, path);

    private static void WriteImagePart(Utf8JsonWriter w, JsonElement block, string path)
    {
        var url = ImageUrl(block, path);
        w.WriteStartObject();
        w.WriteString("type"u8, "image_url"u8);
        w.WriteStartObject("image_url"u8);
        w.WriteString("url"u8, url);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>An image source as the URL a chat image part takes: a data URL for base64, the URL as is.</summary>
    private static string ImageUrl(JsonElement block, string path)
    {
        if (!block.TryGetProperty("source"u8, out var source) || source.ValueKind != JsonValueKind.Object ||
            !source.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            throw Fail($"{path}.source", "Field required: an object with a string 'type'.");
        if (type.ValueEquals("base64"u8))
        {
            if (!source.TryGetProperty("media_type"u8, out var mediaType) || mediaType.ValueKind != JsonValueKind.String || !IsImageMediaType(mediaType.GetString()!))
                throw Fail($"{path}.source.media_type", "must be one of image/jpeg, image/png, image/gif, image/webp.");
            if (!source.TryGetProperty("data"u8, out var data) || data.ValueKind != JsonValueKind.String || data.ValueEquals(""u8))
                throw Fail($"{path}.source.data", "Field required: the base64 image data.");
            return $"data:{mediaType.GetString()};base64,{data.GetString()}";
        }
        if (type.ValueEquals("url"u8))
        {
            if (!source.TryGetProperty("url"u8, out var url) || url.ValueKind != JsonValueKind.String ||
                !Uri.TryCreate(url.GetString(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
                throw Fail($"{path}.source.url", "must be an http(s) URL.");
            return url.GetString()!;
        }
        if (type.ValueEquals("file"u8)) throw Untranslatable($"{path}.source", path, "file sources (Anthropic's Files API) can't be honoured by the gateway; send the image as base64 or a URL.");
        throw Fail($"{path}.source.type", "must be 'base64' or 'url'.");
    }

    private static bool IsImageMediaType(string mediaType) => mediaType is "image/jpeg" or "image/png" or "image/gif" or "image/webp";

    private static void WriteNumberInRange(Utf8JsonWriter w, JsonElement value, string name, double min, double max)
    {
        if (IsNull(value)) return;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var d) || d < min || d > max)
            throw Fail(name, $"must be a number between {min} and {max}.");
        w.WritePropertyName(name);
        value.WriteTo(w);
    }

    private static void WriteStop(Utf8JsonWriter w, JsonElement stop)
    {
        if (IsNull(stop)) return;
        if (stop.ValueKind != JsonValueKind.Array) throw Fail("stop_sequences", "must be an array of strings.");
        if (stop.GetArrayLength() == 0) return;
        var i = 0;
        foreach (var s in stop.EnumerateArray())
        {
            if (s.ValueKind != JsonValueKind.String || s.ValueEquals(""u8)) throw Fail($"stop_sequences.{i}", "must be a non-empty string.");
            i++;
        }
        w.WritePropertyName("stop"u8);
        stop.WriteTo(w);
    }

    private static void WriteMetadata(Utf8JsonWriter w, JsonElement metadata)
    {
        if (IsNull(metadata)) return;
        if (metadata.ValueKind != JsonValueKind.Object) throw Fail("metadata", "must be an object.");
        JsonElement taskType = default;
        foreach (var p in metadata.EnumerateObject())
        {
            switch (p.Name)
            {
                case "user_id":
                    if (IsNull(p.Value)) break;
                    if (p.Value.ValueKind != JsonValueKind.String) throw Fail("metadata.user_id", "must be a string.");
                    w.WritePropertyName("user"u8);
                    p.Value.WriteTo(w);
                    break;
                case "task_type":
                    // The gateway's own routing hint (see ChatRequest): it stays in metadata, where routing reads it.
                    taskType = p.Value;
                    break;
                default:
                    throw Untranslatable($"metadata.{p.Name}", $"metadata.{p.Name}", "Extra inputs are not permitted (metadata takes user_id, and the gateway's task_type).");
            }
        }
        if (taskType.ValueKind == JsonValueKind.Undefined) return;
        w.WriteStartObject("metadata"u8);
        w.WritePropertyName("task_type"u8);
        taskType.WriteTo(w);
        w.WriteEndObject();
    }

    /// <summary>Custom tools as function tools; true when there was at least one.</summary>
    private static bool WriteTools(Utf8JsonWriter w, JsonElement tools)
    {
        if (IsNull(tools)) return false;
        if (tools.ValueKind != JsonValueKind.Array) throw Fail("tools", "must be an array.");
        if (tools.GetArrayLength() == 0) return false;
        w.WriteStartArray("tools"u8);
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var path = $"tools.{i++}";
            if (tool.ValueKind != JsonValueKind.Object) throw Fail(path, "must be an object.");
            if (tool.TryGetProperty("type"u8, out var type) && !IsNull(type) && !type.ValueEquals("custom"u8))
            {
                throw Untranslatable($"{path}.type", path, $"the built-in tool {type.GetRawText()} can't be honoured: only Anthropic defines and runs it. Declare a custom tool with a name and an input_schema instead.");
            }
            foreach (var field in (ReadOnlySpan<string>)["defer_loading", "allowed_callers", "input_examples"])
            {
                if (tool.TryGetProperty(field, out var v) && !IsNull(v) && v.ValueKind != JsonValueKind.False)
                    throw Untranslatable($"{path}.{field}", $"{path}.{field}", "can't be honoured: it needs Anthropic's tool-search and code-execution servers.");
            }
            if (!tool.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String || name.ValueEquals(""u8))
                throw Fail($"{path}.name", "Field required: a non-empty string.");
            if (!tool.TryGetProperty("input_schema"u8, out var schema) || schema.ValueKind != JsonValueKind.Object)
                throw Fail($"{path}.input_schema", "Field required: a JSON schema object.");

            w.WriteStartObject();
            w.WriteString("type"u8, "function"u8);
            w.WriteStartObject("function"u8);
            w.WritePropertyName("name"u8);
            name.WriteTo(w);
            if (tool.TryGetProperty("description"u8, out var description) && !IsNull(description))
            {
                if (description.ValueKind != JsonValueKind.String) throw Fail($"{path}.description", "must be a string.");
                w.WritePropertyName("description"u8);
                description.WriteTo(w);
            }
            w.WritePropertyName("parameters"u8);
            schema.WriteTo(w);
            if (tool.TryGetProperty("strict"u8, out var strict) && strict.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                w.WriteBoolean("strict"u8, strict.GetBoolean());
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        return true;
    }

    private static void WriteToolChoice(Utf8JsonWriter w, JsonElement choice, bool hasTools)
    {
        if (IsNull(choice)) return;
        if (choice.ValueKind != JsonValueKind.Object || !choice.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            throw Fail("tool_choice", "must be an object with a string 'type'.");
        var disableParallel = false;
        if (choice.TryGetProperty("disable_parallel_tool_use"u8, out var dp) && !IsNull(dp))
        {
            if (dp.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Fail("tool_choice.disable_parallel_tool_use", "must be a boolean.");
            disableParallel = dp.GetBoolean();
        }

        if (type.ValueEquals("auto"u8) || type.ValueEquals("none"u8))
        {
            // Without tools there's nothing to choose; chat targets refuse a tool_choice without tools.
            if (!hasTools) return;
            w.WriteString("tool_choice"u8, type.ValueEquals("auto"u8) ? "auto"u8 : "none"u8);
        }
        else if (type.ValueEquals("any"u8))
        {
            if (!hasTools) throw Fail("tool_choice", "'any' needs at least one tool in 'tools'.");
            w.WriteString("tool_choice"u8, "required"u8);
        }
        else if (type.ValueEquals("tool"u8))
        {
            if (!choice.TryGetProperty("name"u8, out var name) || name.ValueKind != JsonValueKind.String || name.ValueEquals(""u8))
                throw Fail("tool_choice.name", "Field required: the name of a tool.");
            if (!hasTools) throw Fail("tool_choice", "'tool' needs that tool in 'tools'.");
            w.WriteStartObject("tool_choice"u8);
            w.WriteString("type"u8, "function"u8);
            w.WriteStartObject("function"u8);
            w.WritePropertyName("name"u8);
            name.WriteTo(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        else throw Fail("tool_choice.type", "must be one of auto, any, tool, none.");

        if (disableParallel && hasTools && !type.ValueEquals("none"u8)) w.WriteBoolean("parallel_tool_calls"u8, false);
    }

    private static void WriteOutputConfig(Utf8JsonWriter w, JsonElement config)
    {
        if (IsNull(config)) return;
        if (config.ValueKind != JsonValueKind.Object) throw Fail("output_config", "must be an object.");
        foreach (var p in config.EnumerateObject())
        {
            if (IsNull(p.Value)) continue;
            switch (p.Name)
            {
                case "format":
                    if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("type"u8, out var type) || !type.ValueEquals("json_schema"u8))
                        throw Fail("output_config.format", "must be {\"type\":\"json_schema\",\"schema\":{…}}.");
                    if (!p.Value.TryGetProperty("schema"u8, out var schema) || schema.ValueKind != JsonValueKind.Object)
                        throw Fail("output_config.format.schema", "Field required: a JSON schema object.");
                    w.WriteStartObject("response_format"u8);
                    w.WriteString("type"u8, "json_schema"u8);
                    w.WriteStartObject("json_schema"u8);
                    w.WriteString("name"u8, OutputSchemaName);
                    w.WritePropertyName("schema"u8);
                    schema.WriteTo(w);
                    w.WriteBoolean("strict"u8, true);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    break;
                case "effort":
                    throw Untranslatable("output_config.effort", "output_config.effort", "can't be honoured: effort steers Claude's thinking, which the Chat Completions translation has no place for. Leave it out.");
                default:
                    throw Untranslatable($"output_config.{p.Name}", $"output_config.{p.Name}", "Extra inputs are not permitted.");
            }
        }
    }

    /// <summary>The block's type; a block must be an object with a string type.</summary>
    private static string BlockType(JsonElement block, string path)
    {
        if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type"u8, out var type) || type.ValueKind != JsonValueKind.String)
            throw Fail(path, "must be a content block: an object with a string 'type'.");
        return type.GetString()!;
    }

    private static string Text(JsonElement block, string path)
    {
        if (!block.TryGetProperty("text"u8, out var text) || text.ValueKind != JsonValueKind.String)
            throw Fail($"{path}.text", "Field required: a string.");
        return text.GetString()!;
    }

    private static Refusal Unhonourable(string path, string type) => type switch
    {
        "document" or "search_result" or "container_upload" =>
            Untranslatable(path, path, $"'{type}' blocks can't be honoured: the gateway translates to the OpenAI Chat Completions format, which carries text and images only. Send the content as text."),
        "server_tool_use" or "web_search_tool_result" or "web_fetch_tool_result" or "code_execution_tool_result" or "bash_code_execution_tool_result"
            or "text_editor_code_execution_tool_result" or "tool_search_tool_result" or "mcp_tool_use" or "mcp_tool_result" or "tool_reference" =>
            Untranslatable(path, path, $"'{type}' blocks can't be honoured: they belong to tools only Anthropic's servers run."),
        _ => Untranslatable($"{path}.type", path, $"'{Truncate(type, 64)}' is not a content block type the gateway can translate (text, image, tool_use, tool_result)."),
    };

    /// <summary>Valid Messages the chat format can't carry: <paramref name="remove"/> is what a native translation leaves out.</summary>
    private static Refusal Untranslatable(string path, string remove, string message) => new(MessagesErrors.Invalid(path, message), remove);

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static bool IsNull(JsonElement e) => e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;

    private static Refusal Fail(string path, string message) => new(MessagesErrors.Invalid(path, message));
}
