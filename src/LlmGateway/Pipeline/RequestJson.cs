using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>The first check of every JSON request body: valid UTF-8, valid JSON, not absurdly nested.</summary>
public static class RequestJson
{
    public static JsonDocument? Parse(ReadOnlyMemory<byte> body, out ApiError? error)
    {
        error = null;
        // JsonDocument checks structure, not the bytes inside strings: check UTF-8 up front (vectorized).
        if (!System.Text.Unicode.Utf8.IsValid(body.Span))
        {
            error = ApiError.InvalidRequest("The request body is not valid UTF-8.", code: ErrorCodes.InvalidJson);
            return null;
        }
        try
        {
            // The default depth limit (64) stops absurd nesting before it costs anything.
            return JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            error = ApiError.InvalidRequest($"The request body is not valid JSON: {e.Message}", code: ErrorCodes.InvalidJson);
            return null;
        }
        catch (ArgumentException)
        {
            // Invalid UTF-8 surfaces as ArgumentException from the reader on some inputs.
            error = ApiError.InvalidRequest("The request body is not valid UTF-8 JSON.", code: ErrorCodes.InvalidJson);
            return null;
        }
    }

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
                : ApiError.InvalidRequest("The request body must be a JSON object.", code: ErrorCodes.InvalidJson);
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
    /// The name of <paramref name="property"/> for a <c>switch</c> over the names a reader knows, decoded into
    /// <paramref name="buffer"/> instead of a string per property (<see cref="JsonProperty.Name"/> allocates
    /// one). A name longer than the buffer can be none of the known ones and reads as empty; an escaped name
    /// is unescaped as <see cref="JsonProperty.Name"/> does (rare, so that path may allocate).
    /// </summary>
    public static ReadOnlySpan<char> NameOf(JsonProperty property, Span<char> buffer)
    {
        var raw = JsonMarshal.GetRawUtf8PropertyName(property);
        if (raw.Contains((byte)'\\')) return property.Name;
        return Encoding.UTF8.TryGetChars(raw, buffer, out var written) ? buffer[..written] : [];
    }

    /// <summary>
    /// The length in UTF-16 characters of the string <paramref name="value"/>, what <c>GetString().Length</c>
    /// says, without making the string: the body is valid UTF-8 (<see cref="Parse"/> checked it), so an
    /// unescaped string's characters are counted from its bytes. An escaped one is decoded, which also
    /// throws <see cref="InvalidOperationException"/> for an escaped unpaired surrogate, as
    /// <see cref="ParseObject{T}"/> expects of every text it reads.
    /// </summary>
    public static int TextLength(JsonElement value)
    {
        var raw = JsonMarshal.GetRawUtf8Value(value)[1..^1]; // without the quotes
        return raw.Contains((byte)'\\') ? value.GetString()!.Length : Encoding.UTF8.GetCharCount(raw);
    }

    /// <summary>The length in UTF-16 characters of <paramref name="value"/>'s JSON text, what <c>GetRawText().Length</c> says, without making the string.</summary>
    public static int RawTextLength(JsonElement value) => Encoding.UTF8.GetCharCount(JsonMarshal.GetRawUtf8Value(value));

    /// <summary>A string with an escaped unpaired surrogate (\ud800) is valid JSON syntax but no text.</summary>
    public static ApiError NotUnicode() =>
        ApiError.InvalidRequest("The request body contains a string that is not valid Unicode text.", code: ErrorCodes.InvalidJson);
}
