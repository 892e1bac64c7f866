using System.Text;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>
/// A parsed Chat Completions request. The body is read once with a <see cref="Utf8JsonReader"/> that checks it
/// as <see cref="RequestJson.Parse"/> would (UTF-8, JSON, an object) and reads out the few fields the gateway
/// acts on, checked for type so bad input is a 400 and never a 500 later. The body's
/// <see cref="JsonDocument"/> (pooled, read-only, so unknown fields reach the upstream unchanged) is made
/// only when a step reads <see cref="GatewayRequest.Root"/>: the OpenAI writer renames the model from where
/// the reader saw it, and a miss on an OpenAI-compatible upstream never needs the document.
/// </summary>
public sealed class ChatRequest : GatewayRequest
{
    private ChatRequest(ReadOnlyMemory<byte> body) : base(body)
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

    /// <summary>The body has a <c>stream_options</c> property, whatever its value.</summary>
    public bool HasStreamOptions { get; private set; }

    /// <summary>Temperature 0 or a seed: what Cache:OnlyDeterministic lets the cache take.</summary>
    public override bool IsReproducible => Temperature == 0 || Seed is not null;

    /// <summary>Text of the last user message, for task-type patterns. Read lazily: most requests never need it.</summary>
    public override string LastUserText => _lastUserText ??= ReadLastUserText();
    private string? _lastUserText;

    // Where the top-level properties lie in the body, for TryGetModelSplice: offsets of the first name's quote
    // and of the end of the last value, of the end of the value before "model" and of the name after it.
    private int _firstStart = -1, _lastEnd = -1, _beforeModelEnd = -1, _afterModelStart = -1, _modelCount;

    /// <summary>Parses and checks a request body; returns the request or the 400 that explains what is wrong.</summary>
    public static ChatRequest? TryParse(ReadOnlyMemory<byte> body, out ApiError? error)
    {
        var request = new ChatRequest(body);
        error = request.Read();
        if (error is null) return request;
        request.Dispose();
        return null;
    }

    /// <summary>
    /// Where the body's one <c>model</c> property lies: the properties before it and those after it, each a run
    /// of the client's raw bytes (empty when there are none), so a writer that renames the model copies the rest
    /// as it came without a document. False when the body names the model more than once.
    /// </summary>
    public bool TryGetModelSplice(out Range before, out Range after)
    {
        before = _beforeModelEnd < 0 ? default : _firstStart.._beforeModelEnd;
        after = _afterModelStart < 0 ? default : _afterModelStart.._lastEnd;
        return _modelCount == 1;
    }

    protected override ApiError? Read()
    {
        var body = Body.Span;
        if (RequestJson.CheckUtf8(body) is { } notUtf8) return notUtf8;
        var reader = new Utf8JsonReader(body, RequestJson.ReaderOptions);
        var fields = new Fields();
        ApiError? error;
        try
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                error = RequestJson.NotObject();
            }
            else
            {
                try
                {
                    error = ReadObject(ref reader, ref fields);
                }
                catch (InvalidOperationException)
                {
                    error = RequestJson.NotUnicode();
                }
            }
            // A body that is not JSON is refused as such whatever else is wrong with it, as when a document
            // was parsed before any field was read: the rest is read to its end.
            while (reader.Read())
            {
            }
        }
        catch (JsonException e)
        {
            return RequestJson.NotJson(e);
        }
        catch (ArgumentException)
        {
            return RequestJson.NotUtf8Json();
        }
        if (error is not null) return error;

        if (Model.Length == 0) return ApiError.InvalidRequest("'model' is required.", "model");
        if (!fields.HasMessages) return ApiError.InvalidRequest("'messages' is required.", "messages");
        try
        {
            EstimatedPromptTokens = TokenEstimator.ForChat(this, fields.TextChars, HasImages ? fields.Images : 0);
        }
        catch (InvalidOperationException)
        {
            return RequestJson.NotUnicode(); // a text the tokenizer reads (a part of another type can have one)
        }
        return null;
    }

    /// <summary>What the top-level fields add up to, as they are read.</summary>
    private struct Fields
    {
        public long TextChars;
        public bool HasMessages;
        /// <summary>Image parts in the last <c>messages</c> (a name sent twice: the last one is the one upstreams read).</summary>
        public int Images;
    }

    /// <summary>The fields of the body's object, the reader on its start; the first error in the order the body has them.</summary>
    private ApiError? ReadObject(ref Utf8JsonReader reader, ref Fields fields)
    {
        var previousEnd = -1;
        var afterModel = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var nameStart = (int)reader.TokenStartIndex;
            var field = FieldOf(ref reader);
            if (_firstStart < 0) _firstStart = nameStart;
            if (afterModel) _afterModelStart = nameStart;
            afterModel = field == Field.Model;
            if (afterModel)
            {
                _modelCount++;
                _beforeModelEnd = previousEnd;
                _afterModelStart = -1;
            }

            reader.Read();
            var error = ReadField(ref reader, field, ref fields);
            if (error is not null) return error;
            _lastEnd = previousEnd = (int)reader.BytesConsumed;
        }
        return null;
    }

    private enum Field
    {
        Other,
        Model,
        Messages,
        Stream,
        StreamOptions,
        MaxTokens,
        MaxCompletionTokens,
        Temperature,
        TopP,
        N,
        Seed,
        Tools,
        ResponseFormat,
        Metadata,
    }

    /// <summary>The field a top-level property name is, the reader on it; an escaped name is unescaped first (rare, so that may allocate).</summary>
    private static Field FieldOf(ref Utf8JsonReader reader) =>
        FieldOf(reader.ValueIsEscaped ? Encoding.UTF8.GetBytes(reader.GetString()!) : reader.ValueSpan);

    private static Field FieldOf(ReadOnlySpan<byte> name) =>
        name.SequenceEqual("model"u8) ? Field.Model
        : name.SequenceEqual("messages"u8) ? Field.Messages
        : name.SequenceEqual("temperature"u8) ? Field.Temperature
        : name.SequenceEqual("max_tokens"u8) ? Field.MaxTokens
        : name.SequenceEqual("max_completion_tokens"u8) ? Field.MaxCompletionTokens
        : name.SequenceEqual("stream"u8) ? Field.Stream
        : name.SequenceEqual("stream_options"u8) ? Field.StreamOptions
        : name.SequenceEqual("top_p"u8) ? Field.TopP
        : name.SequenceEqual("n"u8) ? Field.N
        : name.SequenceEqual("seed"u8) ? Field.Seed
        : name.SequenceEqual("tools"u8) ? Field.Tools
        : name.SequenceEqual("response_format"u8) ? Field.ResponseFormat
        : name.SequenceEqual("metadata"u8) ? Field.Metadata
        : Field.Other;

    // The model names seen last: a gateway sees a few names over and over, and a string made once serves them all.
    private static readonly string?[] s_recentModels = new string?[8];
    private static uint s_nextModel;

    /// <summary>The model string the reader is on: one of the recent names when it is one (compared as ASCII, no hash), else a new string.</summary>
    private static string ModelName(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped) return reader.GetString()!;
        var name = reader.ValueSpan;
        foreach (var recent in s_recentModels)
        {
            if (recent is not null && System.Text.Ascii.Equals(name, recent)) return recent;
        }
        var made = Encoding.UTF8.GetString(name);
        // Requests racing here may overwrite each other's slot: a name is only made again next time.
        s_recentModels[Interlocked.Increment(ref s_nextModel) % (uint)s_recentModels.Length] = made;
        return made;
    }

    /// <summary>One top-level value, the reader on its first token and left on its last.</summary>
    private ApiError? ReadField(ref Utf8JsonReader reader, Field field, ref Fields fields)
    {
        var token = reader.TokenType;
        switch (field)
        {
            case Field.Model:
                if (token != JsonTokenType.String || ModelName(ref reader) is not { Length: > 0 } model)
                    return ApiError.InvalidRequest("'model' must be a non-empty string.", "model");
                Model = model;
                return null;
            case Field.Stream:
                if (token is JsonTokenType.True or JsonTokenType.False) Stream = reader.GetBoolean();
                else if (token != JsonTokenType.Null) return ApiError.InvalidRequest("'stream' must be a boolean.", "stream");
                return null;
            case Field.StreamOptions:
                HasStreamOptions = true;
                if (token == JsonTokenType.StartObject) return ReadStreamOptions(ref reader);
                if (token != JsonTokenType.Null) return ApiError.InvalidRequest("'stream_options' must be an object.", "stream_options");
                return null;
            case Field.MaxTokens:
            case Field.MaxCompletionTokens:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.Number || !reader.TryGetInt32(out var mt) || mt < 1)
                {
                    var name = field == Field.MaxTokens ? "max_tokens" : "max_completion_tokens";
                    return ApiError.InvalidRequest($"'{name}' must be a positive integer.", name);
                }
                if (field == Field.MaxCompletionTokens || MaxTokens is null) MaxTokens = mt;
                return null;
            case Field.Temperature:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.Number || !reader.TryGetDouble(out var t) || t < 0 || t > 2)
                    return ApiError.InvalidRequest("'temperature' must be a number between 0 and 2.", "temperature");
                Temperature = t;
                return null;
            case Field.TopP:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.Number || !reader.TryGetDouble(out var tp) || tp < 0 || tp > 1)
                    return ApiError.InvalidRequest("'top_p' must be a number between 0 and 1.", "top_p");
                return null;
            case Field.N:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.Number || !reader.TryGetInt32(out var n) || n < 1)
                    return ApiError.InvalidRequest("'n' must be a positive integer.", "n");
                N = n;
                return null;
            case Field.Seed:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.Number || !reader.TryGetInt64(out var seed))
                    return ApiError.InvalidRequest("'seed' must be an integer.", "seed");
                Seed = seed;
                return null;
            case Field.Tools:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.StartArray) return ApiError.InvalidRequest("'tools' must be an array.", "tools");
                return ReadTools(ref reader, ref fields);
            case Field.ResponseFormat:
                if (token == JsonTokenType.Null) return null;
                return ReadResponseFormat(ref reader);
            case Field.Metadata:
                if (token == JsonTokenType.Null) return null;
                if (token != JsonTokenType.StartObject) return ApiError.InvalidRequest("'metadata' must be an object.", "metadata");
                return ReadMetadata(ref reader);
            case Field.Messages:
                if (token != JsonTokenType.StartArray) return ApiError.InvalidRequest("'messages' must be an array.", "messages");
                return ReadMessages(ref reader, ref fields);
            default:
                reader.Skip();
                return null;
        }
    }

    // In the objects read below a name counts as a document's lookup of it (JsonElement.TryGetProperty) would
    // find it: sent twice, the last one; an escaped name that fails to decode after the last is the error.

    private enum NameMatch
    {
        No,
        Yes,
        NotUnicode,
    }

    /// <summary>
    /// Whether the property name the reader is on is <paramref name="name"/>, compared as a document's lookup
    /// compares names: an escaped one is decoded only when it could be the name looked for, and one with an
    /// escaped unpaired surrogate (\ud800) then fails the lookup.
    /// </summary>
    private static NameMatch MatchName(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        var raw = reader.ValueSpan;
        if (!reader.ValueIsEscaped) return raw.SequenceEqual(name) ? NameMatch.Yes : NameMatch.No;
        var escape = raw.IndexOf((byte)'\\');
        if (raw.Length <= name.Length || name.Length <= escape || !raw[..escape].SequenceEqual(name[..escape])) return NameMatch.No;
        Span<byte> decoded = raw.Length <= 256 ? stackalloc byte[raw.Length] : new byte[raw.Length];
        try
        {
            return decoded[..reader.CopyString(decoded)].SequenceEqual(name) ? NameMatch.Yes : NameMatch.No;
        }
        catch (InvalidOperationException)
        {
            return NameMatch.NotUnicode;
        }
    }

    /// <summary>
    /// Reads the object the reader is on the start of to its end, finding the value of its property
    /// <paramref name="name"/>: a copy of the reader on that value (<see cref="JsonTokenType.None"/> when it has none),
    /// read by the caller once it is known to be the last. False when the lookup fails (<see cref="MatchName"/>).
    /// </summary>
    private static bool TryFindLast(ref Utf8JsonReader reader, ReadOnlySpan<byte> name, out Utf8JsonReader value)
    {
        value = default;
        var found = true;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var match = MatchName(ref reader, name);
            reader.Read();
            if (match != NameMatch.No)
            {
                value = reader;
                found = match == NameMatch.Yes;
            }
            reader.Skip();
        }
        return found;
    }

    private ApiError? ReadStreamOptions(ref Utf8JsonReader reader)
    {
        if (!TryFindLast(ref reader, "include_usage"u8, out var includeUsage)) return RequestJson.NotUnicode();
        if (includeUsage.TokenType is JsonTokenType.True or JsonTokenType.False) ClientWantsUsage = includeUsage.TokenType == JsonTokenType.True;
        else if (includeUsage.TokenType is not (JsonTokenType.None or JsonTokenType.Null))
            return ApiError.InvalidRequest("'stream_options.include_usage' must be a boolean.", "stream_options.include_usage");
        return null;
    }

    private ApiError? ReadTools(ref Utf8JsonReader reader, ref Fields fields)
    {
        var start = (int)reader.TokenStartIndex;
        var count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) return ApiError.InvalidRequest("Each entry of 'tools' must be an object.", "tools");
            reader.Skip();
            count++;
        }
        ToolCount = count;
        HasTools = count > 0;
        // Tool schemas are sent as prompt tokens too.
        fields.TextChars += RequestJson.RawTextLength(Body.Span, start, ref reader);
        return null;
    }

    private ApiError? ReadResponseFormat(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject) return NoFormatType();
        if (!TryFindLast(ref reader, "type"u8, out var type)) return RequestJson.NotUnicode();
        if (type.TokenType != JsonTokenType.String) return NoFormatType();
        ResponseFormatType = type.GetString();
        return null;
    }

    private static ApiError NoFormatType() => ApiError.InvalidRequest("'response_format' must be an object with a string 'type'.", "response_format");

    private ApiError? ReadMetadata(ref Utf8JsonReader reader)
    {
        if (!TryFindLast(ref reader, "task_type"u8, out var taskType)) return RequestJson.NotUnicode();
        if (taskType.TokenType == JsonTokenType.None) return null;
        if (taskType.TokenType != JsonTokenType.String) return ApiError.InvalidRequest("'metadata.task_type' must be a string.", "metadata.task_type");
        MetadataTaskType = taskType.GetString();
        // It is echoed in the x-gateway-task-type header, where Kestrel refuses anything
        // but printable ASCII (a 500 if it got that far); task type names are short words.
        if (!HeaderValues.IsSafe(MetadataTaskType!, HeaderValues.MaxTaskTypeLength))
            return ApiError.InvalidRequest($"'metadata.task_type' must be 1 to {HeaderValues.MaxTaskTypeLength} printable ASCII characters.", "metadata.task_type");
        return null;
    }

    private ApiError? ReadMessages(ref Utf8JsonReader reader, ref Fields fields)
    {
        var i = 0;
        var images = 0;
        // The message's path, for the error that names it (not made for every message that has none).
        string At() => $"messages[{i}]";
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject) return ApiError.InvalidRequest($"'{At()}' must be an object.", At());
            var role = Role.Absent;
            var content = new Content(ContentError.None, 0, 0);
            var toolCallChars = 0; // -1: the lookup fails
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // A name that is one of these is none of the others; one that fails to decode may fail them all.
                var isRole = MatchName(ref reader, "role"u8);
                var isContent = isRole == NameMatch.Yes ? NameMatch.No : MatchName(ref reader, "content"u8);
                var isToolCalls = isRole == NameMatch.Yes || isContent == NameMatch.Yes ? NameMatch.No : MatchName(ref reader, "tool_calls"u8);
                reader.Read();
                if (isRole == NameMatch.NotUnicode) role = Role.NotUnicode;
                if (isContent == NameMatch.NotUnicode) content = new Content(ContentError.NotUnicode, 0, 0);
                if (isToolCalls == NameMatch.NotUnicode) toolCallChars = -1;

                if (isRole == NameMatch.Yes) role = ReadRole(ref reader);
                else if (isContent == NameMatch.Yes) content = ReadContent(ref reader);
                else if (isToolCalls == NameMatch.Yes) toolCallChars = reader.TokenType == JsonTokenType.StartArray ? RequestJson.RawTextLength(Body.Span, ref reader) : SkipAndCount(ref reader);
                else reader.Skip();
            }

            switch (role)
            {
                case Role.Absent or Role.NotString:
                    return ApiError.InvalidRequest($"'{At()}.role' is required and must be a string.", $"{At()}.role");
                case Role.NotUnicode:
                    return RequestJson.NotUnicode();
                case Role.Unknown:
                    return ApiError.InvalidRequest($"'{At()}.role' must be one of system, developer, user, assistant, tool.", $"{At()}.role");
            }
            switch (content.Error)
            {
                case ContentError.NotUnicode:
                    return RequestJson.NotUnicode();
                case ContentError.Kind:
                    return ApiError.InvalidRequest($"'{At()}.content' must be a string, an array of parts or null.", $"{At()}.content");
                case ContentError.Part:
                    return ApiError.InvalidRequest($"Each part of '{At()}.content' must be an object with a string 'type'.", $"{At()}.content");
                case ContentError.TextPart:
                    return ApiError.InvalidRequest($"A text part of '{At()}.content' needs a string 'text'.", $"{At()}.content");
            }
            if (toolCallChars < 0) return RequestJson.NotUnicode();
            fields.TextChars += content.TextChars + toolCallChars;
            images += content.Images;
            i++;
        }
        if (i == 0) return ApiError.InvalidRequest("'messages' must contain at least one message.", "messages");
        MessageCount = i;
        fields.HasMessages = true;
        fields.Images = images;
        if (images > 0) HasImages = true;
        return null;
    }

    /// <summary>Tool calls that are not an array count for nothing.</summary>
    private static int SkipAndCount(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return 0;
    }

    private enum Role
    {
        Absent,
        NotString,
        Unknown,
        Known,
        NotUnicode,
    }

    private static Role ReadRole(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return Role.NotString;
        }
        try
        {
            return IsKnownRole(ref reader) ? Role.Known : Role.Unknown;
        }
        catch (InvalidOperationException)
        {
            return Role.NotUnicode; // an error only if this role is the message's last
        }
    }

    private enum ContentError
    {
        None,
        Kind,
        Part,
        TextPart,
        NotUnicode,
    }

    /// <summary>What one <c>content</c> value is: its text length and image parts, or what is wrong with it.</summary>
    private readonly record struct Content(ContentError Error, long TextChars, int Images);

    /// <summary>
    /// A message's content, the reader on its first token and left on its last. What is wrong is a value, not
    /// an exception, and the whole value is read either way: only the message's last content counts.
    /// </summary>
    private static Content ReadContent(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String:
                return TextLength(ref reader) is var length and >= 0 ? new(ContentError.None, length, 0) : new(ContentError.NotUnicode, 0, 0);
            case JsonTokenType.Null:
                return new(ContentError.None, 0, 0);
            case JsonTokenType.StartArray:
                break;
            default:
                reader.Skip();
                return new(ContentError.Kind, 0, 0);
        }

        var error = ContentError.None;
        long chars = 0;
        var images = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (error != ContentError.None || reader.TokenType != JsonTokenType.StartObject)
            {
                if (error == ContentError.None) error = ContentError.Part;
                reader.Skip();
                continue;
            }
            var part = ReadPart(ref reader);
            if (part.Error != ContentError.None) error = part.Error;
            chars += part.TextChars;
            images += part.Images;
        }
        return new(error, chars, images);
    }

    private enum PartType
    {
        Absent,
        NotString,
        Text,
        Image,
        Other,
        NotUnicode,
    }

    /// <summary>One part of a content array, the reader on its start and left on its end.</summary>
    private static Content ReadPart(ref Utf8JsonReader reader)
    {
        var type = PartType.Absent;
        var textFound = false;
        var text = -2L; // its length; -1 when it or its name is not valid Unicode; -2 when not a string
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isType = MatchName(ref reader, "type"u8);
            var isText = isType == NameMatch.Yes ? NameMatch.No : MatchName(ref reader, "text"u8);
            reader.Read();
            if (isType == NameMatch.NotUnicode) type = PartType.NotUnicode;
            if (isText == NameMatch.NotUnicode) (textFound, text) = (true, -1);

            if (isType == NameMatch.Yes)
            {
                type = ReadPartType(ref reader);
            }
            else if (isText == NameMatch.Yes)
            {
                textFound = true;
                text = reader.TokenType == JsonTokenType.String ? TextLength(ref reader) : -2;
                reader.Skip();
            }
            else
            {
                reader.Skip();
            }
        }
        return type switch
        {
            PartType.Absent or PartType.NotString => new(ContentError.Part, 0, 0),
            PartType.NotUnicode => new(ContentError.NotUnicode, 0, 0),
            PartType.Text when !textFound || text == -2 => new(ContentError.TextPart, 0, 0),
            PartType.Text when text == -1 => new(ContentError.NotUnicode, 0, 0),
            PartType.Text => new(ContentError.None, text, 0),
            PartType.Image => new(ContentError.None, 0, 1),
            _ => new(ContentError.None, 0, 0),
        };
    }

    private static PartType ReadPartType(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return PartType.NotString;
        }
        try
        {
            return reader.ValueTextEquals("text"u8) ? PartType.Text : reader.ValueTextEquals("image_url"u8) ? PartType.Image : PartType.Other;
        }
        catch (InvalidOperationException)
        {
            return PartType.NotUnicode;
        }
    }

    /// <summary>The string's length in characters (<see cref="RequestJson.TextLength"/>); -1 when it is not valid Unicode.</summary>
    private static long TextLength(ref Utf8JsonReader reader)
    {
        try
        {
            return RequestJson.TextLength(ref reader);
        }
        catch (InvalidOperationException)
        {
            return -1;
        }
    }

    public override ApiError? CheckLimits(Configuration.LimitsOptions limits)
    {
        if (MessageCount > limits.MaxMessages) return OverLimit("messages", MessageCount, limits.MaxMessages, nameof(limits.MaxMessages), " entries");
        if (ToolCount > limits.MaxTools) return OverLimit("tools", ToolCount, limits.MaxTools, nameof(limits.MaxTools), " entries");
        if (N > limits.MaxN) return OverLimit("n", N, limits.MaxN, nameof(limits.MaxN));
        return null;
    }

    private static bool IsKnownRole(ref Utf8JsonReader role) =>
        role.ValueTextEquals("user"u8) || role.ValueTextEquals("assistant"u8) || role.ValueTextEquals("system"u8) ||
        role.ValueTextEquals("tool"u8) || role.ValueTextEquals("developer"u8) || role.ValueTextEquals("function"u8);

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
