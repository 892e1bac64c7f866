using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Messages;

/// <summary>
/// The gateway's errors in Anthropic's shape: <c>{"type":"error","error":{"type":…,"message":…},"request_id":…}</c>.
/// The gateway decides every error once, as an <see cref="ApiError"/>; this is only how
/// /v1/messages writes it. The HTTP status stays the one the chat path would answer, so metrics,
/// logs and the usage ledger read the same whichever dialect came in; the <c>type</c> is Anthropic's:
///
/// | gateway status (code)              | Anthropic status | error.type              |
/// | ---------------------------------- | ---------------- | ----------------------- |
/// | 400                                | 400              | invalid_request_error   |
/// | 401                                | 401              | authentication_error    |
/// | 403                                | 403              | permission_error        |
/// | 404                                | 404              | not_found_error         |
/// | 413                                | 413              | request_too_large       |
/// | 429 (key limits, upstream 429s, budgets) | 429        | rate_limit_error        |
/// | 500                                | 500              | api_error               |
/// | 502 upstream_error                 | 502              | api_error               |
/// | 503 no_healthy_provider            | 503              | overloaded_error        |
/// | 503 (key or budget store down)     | 503              | api_error               |
/// | 504 upstream_timeout               | 504              | timeout_error           |
/// | other 4xx (an upstream's own)      | as is            | invalid_request_error   |
///
/// 503 is not turned into Anthropic's 529: every candidate in cooldown or behind an open circuit is
/// what overloaded_error means, and its type says so, but the status stays the gateway's so a
/// dashboard does not count the same outage twice under two codes. The Anthropic SDKs (and Claude
/// Code) retry every 5xx, 429 and Retry-After alike, so nothing a client does depends on 529 itself.
/// </summary>
public static class MessagesErrors
{
    public const string InvalidRequest = "invalid_request_error";
    public const string Authentication = "authentication_error";
    public const string Billing = "billing_error";
    public const string Permission = "permission_error";
    public const string NotFound = "not_found_error";
    public const string RequestTooLarge = "request_too_large";
    public const string RateLimit = "rate_limit_error";
    public const string Api = "api_error";
    public const string Overloaded = "overloaded_error";
    public const string Timeout = "timeout_error";

    public const string RequestIdHeader = "x-request-id";

    /// <summary>Anthropic's name for it; the Anthropic SDKs read it into their errors' requestID.</summary>
    public const string AnthropicRequestIdHeader = "request-id";

    /// <summary>Anthropic's error type for a gateway error.</summary>
    public static string TypeOf(ApiError error) => error.Status switch
    {
        400 => InvalidRequest,
        401 => Authentication,
        402 => Billing,
        403 => Permission,
        404 => NotFound,
        413 => RequestTooLarge,
        429 => RateLimit,
        503 when error.Code == ErrorCodes.NoHealthyProvider => Overloaded,
        504 => Timeout,
        529 => Overloaded,
        // Anthropic: "We may also use this error type for other 4XX status codes".
        >= 400 and < 500 => InvalidRequest,
        _ => Api,
    };

    /// <summary>The error body, also the data of a mid-stream <c>event: error</c>.</summary>
    public static byte[] ToJson(ApiError error, string? requestId)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, ApiError.JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "error"u8);
            w.WriteStartObject("error"u8);
            w.WriteString("type"u8, TypeOf(error));
            w.WriteString("message"u8, error.Message);
            w.WriteEndObject();
            if (requestId is null) w.WriteNull("request_id"u8); else w.WriteString("request_id"u8, requestId);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the error as the whole response: status, Retry-After and x-should-retry when the error has them, the body.</summary>
    public static Task WriteAsync(HttpResponse response, ApiError error)
    {
        response.StatusCode = error.Status;
        response.ContentType = "application/json";
        // Retry-After and x-should-retry: the Anthropic SDKs (Stainless-built, like OpenAI's) honour both.
        error.WriteHeaders(response.Headers);
        // An error found before the endpoint ran (the key check) has no request id yet: every answer gets one.
        var requestId = response.Headers.TryGetValue(RequestIdHeader, out var id) && id.Count == 1 ? id[0] : null;
        if (requestId is null)
        {
            requestId = Http.RandomIds.New("req_");
            response.Headers[RequestIdHeader] = requestId;
            response.Headers[AnthropicRequestIdHeader] = requestId;
        }
        var body = ToJson(error, requestId);
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body).AsTask();
    }

    /// <summary>Anthropic's wording for a missing or wrong field: the dotted path, then what is wrong.</summary>
    public static ApiError Invalid(string path, string message) =>
        ApiError.InvalidRequest(path.Length == 0 ? message : $"{path}: {message}", path.Length == 0 ? null : path);
}

/// <summary>The metadata that makes every error on a /v1/messages endpoint Anthropic-shaped, the key check's included.</summary>
public sealed class AnthropicErrorDialect : ErrorDialect
{
    public static readonly AnthropicErrorDialect Instance = new();

    public override Task WriteAsync(HttpResponse response, ApiError error) => MessagesErrors.WriteAsync(response, error);
}
