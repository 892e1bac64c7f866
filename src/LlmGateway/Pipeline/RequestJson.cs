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

    /// <summary>A string with an escaped unpaired surrogate (\ud800) is valid JSON syntax but no text.</summary>
    public static ApiError NotUnicode() =>
        ApiError.InvalidRequest("The request body contains a string that is not valid Unicode text.", code: ErrorCodes.InvalidJson);
}
