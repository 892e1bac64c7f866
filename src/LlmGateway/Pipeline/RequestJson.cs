using System.Text;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>The first check of every JSON request body: valid UTF-8, valid JSON, not absurdly nested.</summary>
public static class RequestJson
{
    /// <summary>The options every request body is read with: the default depth limit (64) stops absurd nesting before it costs anything.</summary>
    public static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    private static readonly JsonDocumentOptions s_documentOptions = new() { MaxDepth = ReaderOptions.MaxDepth };

    public static JsonDocument? Parse(ReadOnlyMemory<byte> body, out ApiError? error)
    {
        error = CheckUtf8(body.Span);
        if (error is not null) return null;
        try
        {
            return JsonDocument.Parse(body, s_documentOptions);
        }
        catch (JsonException e)
        {
            error = NotJson(e);
            return null;
        }
        catch (ArgumentException)
        {
            error = NotUtf8Json();
            return null;
        }
    }

    /// <summary>
    /// The document of a body a reader has already checked as <see cref="Parse"/> does (with
    /// <see cref="ReaderOptions"/>), so it cannot fail: for a request that reads its fields without one and
    /// makes it only when something needs it.
    /// </summary>
    public static JsonDocument ParseChecked(ReadOnlyMemory<byte> body) => JsonDocument.Parse(body, s_documentOptions);

    /// <summary>JsonDocument checks structure, not the bytes inside strings: UTF-8 is checked up front (vectorized).</summary>
    public static ApiError? CheckUtf8(ReadOnlySpan<byte> body) =>
        System.Text.Unicode.Utf8.IsValid(body) ? null : ApiError.InvalidRequest("The request body is not valid UTF-8.", code: ErrorCodes.InvalidJson);

    /// <summary>The reader's own words for where the syntax breaks.</summary>
    public static ApiError NotJson(JsonException e) =>
        ApiError.InvalidRequest($"The request body is not valid JSON: {e.Message}", code: ErrorCodes.InvalidJson);

    /// <summary>Invalid UTF-8 surfaces as ArgumentException from the reader on some inputs.</summary>
    public static ApiError NotUtf8Json() => ApiError.InvalidRequest("The request body is not valid UTF-8 JSON.", code: ErrorCodes.InvalidJson);

    public static ApiError NotObject() => ApiError.InvalidRequest("The request body must be a JSON object.", code: ErrorCodes.InvalidJson);

    /// <summary>
    /// Parses <paramref name="body"/> into the request <paramref name="create"/> makes of the document, then lets
    /// <paramref name="read"/> check it as an object: the request, or null and the 400 that says what is wrong
    /// (the request disposed). One place for every dialect's body: JSON, an object, valid Unicode.
    /// </summary>
    public static T? ParseObject<T>(ReadOnlyMemory<byte> body, Func<JsonDocument, T> create, Func<T, ApiError?> read, out ApiError? error)
        where T : class, IDisposable =>
        ParseObject(body, create, static (document, _, create) => create(document), read, out error);

    /// <summary>
    /// <see cref="ParseObject{T}(ReadOnlyMemory{byte}, Func{JsonDocument, T}, Func{T, ApiError?}, out ApiError?)"/> for a
    /// request that keeps its body too: <paramref name="create"/> gets the body and <paramref name="state"/>, so a
    /// static lambda does (no closure per request).
    /// </summary>
    public static T? ParseObject<T, TState>(ReadOnlyMemory<byte> body, TState state, Func<JsonDocument, ReadOnlyMemory<byte>, TState, T> create, Func<T, ApiError?> read, out ApiError? error)
        where T : class, IDisposable
    {
        var document = Parse(body, out error);
        if (document is null) return null;
        var request = create(document, body, state);
        try
        {
            error = document.RootElement.ValueKind == JsonValueKind.Object
                ? read(request)
                : NotObject();
        }
        catch (InvalidOperationException)
        {
            error = NotUnicode();
        }
        if (error is null) return request;
        request.Dispose();
        return null;
    }

    /// <summary>
    /// The length in UTF-16 characters of the string <paramref name="reader"/> is on, what <c>GetString().Length</c>
    /// says, without making the string: the body is valid UTF-8 (<see cref="CheckUtf8"/> checked it), so an
    /// unescaped string's characters are counted from its bytes. An escaped one is decoded, which also throws
    /// <see cref="InvalidOperationException"/> for an escaped unpaired surrogate (\ud800), a string that is no text.
    /// </summary>
    public static int TextLength(ref Utf8JsonReader reader) =>
        reader.ValueIsEscaped ? reader.GetString()!.Length : Encoding.UTF8.GetCharCount(reader.ValueSpan);

    /// <summary>
    /// The length in UTF-16 characters of the JSON text of the array or object <paramref name="reader"/> is on the
    /// start of, in <paramref name="json"/> (the reader's input), what <c>GetRawText().Length</c> says, without
    /// making the string. The reader is left on its end.
    /// </summary>
    public static int RawTextLength(ReadOnlySpan<byte> json, ref Utf8JsonReader reader)
    {
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        return RawTextLength(json, start, ref reader);
    }

    /// <summary>
    /// The same for a value read through by the caller: from <paramref name="start"/> (its first token's index) to
    /// the token <paramref name="reader"/> is on, its last.
    /// </summary>
    public static int RawTextLength(ReadOnlySpan<byte> json, int start, ref Utf8JsonReader reader) =>
        Encoding.UTF8.GetCharCount(json[start..((int)reader.TokenStartIndex + 1)]);

    /// <summary>A string with an escaped unpaired surrogate (\ud800) is valid JSON syntax but no text.</summary>
    public static ApiError NotUnicode() =>
        ApiError.InvalidRequest("The request body contains a string that is not valid Unicode text.", code: ErrorCodes.InvalidJson);
}
