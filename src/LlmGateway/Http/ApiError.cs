using System.Text.Json;

namespace LlmGateway.Http;

/// <summary>
/// An error as the client sees it, always in OpenAI's shape:
/// <c>{"error":{"message":"…","type":"…","param":null,"code":"…"}}</c>.
/// </summary>
public sealed record ApiError(int Status, string Type, string? Code, string Message, string? Param = null)
{
    /// <summary>Seconds for a Retry-After header, when the client should wait before trying again.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>
    /// The <c>x-should-retry</c> signal OpenAI's SDKs honour over their own status-based rule: false
    /// where the gateway already tried (and retried) upstream, so a client does not multiply those
    /// tries; null leaves the decision to the client (a 429 or 503 with Retry-After, say).
    /// </summary>
    public bool? ShouldRetry { get; init; }

    /// <summary>Whole seconds for a Retry-After header: rounded up, at least 1; null when unknown.</summary>
    public static int? Seconds(TimeSpan? wait) =>
        wait is { } w ? (int)Math.Clamp(Math.Ceiling(w.TotalSeconds), 1, int.MaxValue) : null;

    public static ApiError InvalidRequest(string message, string? param = null, string? code = null) =>
        new(StatusCodes.Status400BadRequest, ErrorTypes.InvalidRequest, code, message, param);

    public static ApiError ModelNotFound(string model) =>
        new(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, ErrorCodes.ModelNotFound,
            $"The model '{Truncate(model, 200)}' does not exist or you do not have access to it.", "model");

    public static ApiError RequestTooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, ErrorTypes.InvalidRequest, ErrorCodes.RequestTooLarge,
            $"The request body is larger than the gateway's limit of {limit} bytes.");

    public static ApiError UpstreamError(string message) =>
        new(StatusCodes.Status502BadGateway, ErrorTypes.Api, ErrorCodes.UpstreamError, message);

    public static ApiError UpstreamTimeout(string message) =>
        new(StatusCodes.Status504GatewayTimeout, ErrorTypes.Api, ErrorCodes.UpstreamTimeout, message);

    /// <summary>Every candidate is rate-limited upstream (or cooling down after a 429): OpenAI's own 429.</summary>
    public static ApiError RateLimitExceeded(string message, TimeSpan? retryAfter) =>
        new(StatusCodes.Status429TooManyRequests, ErrorTypes.RateLimit, ErrorCodes.RateLimitExceeded, message) { RetryAfterSeconds = Seconds(retryAfter) };

    public static ApiError NoHealthyProvider(string message) =>
        new(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, ErrorCodes.NoHealthyProvider, message);

    public static ApiError BudgetExceeded(string message) =>
        new(StatusCodes.Status429TooManyRequests, ErrorTypes.InsufficientQuota, ErrorCodes.BudgetExceeded, message);

    /// <summary>Budgets can't be checked (the store is down) and Budgets:FailMode is closed.</summary>
    public static ApiError BudgetUnavailable(string message) =>
        new(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, ErrorCodes.BudgetUnavailable, message);

    public static ApiError NotFound(string message) =>
        new(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, ErrorCodes.NotFound, message);

    public static ApiError Internal() =>
        new(StatusCodes.Status500InternalServerError, ErrorTypes.Api, ErrorCodes.InternalError,
            "The gateway failed to handle the request. The failure has been logged.");

    public byte[] ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            WriteTo(w);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Messages are for people: keep quotes and apostrophes readable instead of \u0027.</summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WritePropertyName("error"u8);
        WriteObject(w);
        w.WriteEndObject();
    }

    /// <summary>The inner object alone, <c>{"message","type","param","code"}</c>: a batch item's <c>error</c>.</summary>
    public void WriteObject(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("message"u8, Message);
        w.WriteString("type"u8, Type);
        if (Param is null) w.WriteNull("param"u8); else w.WriteString("param"u8, Param);
        if (Code is null) w.WriteNull("code"u8); else w.WriteString("code"u8, Code);
        w.WriteEndObject();
    }

    public Task WriteAsync(HttpResponse response)
    {
        // Routed to an endpoint of another dialect: its shape, whoever found the error.
        if (ErrorDialect.Of(response.HttpContext) is { } dialect) return dialect.WriteAsync(response, this);
        response.StatusCode = Status;
        response.ContentType = "application/json";
        WriteHeaders(response.Headers);
        var body = ToJson();
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body).AsTask();
    }

    /// <summary>Retry-After and x-should-retry, for any edge that answers with this error (whatever its body's dialect).</summary>
    public void WriteHeaders(IHeaderDictionary headers)
    {
        if (RetryAfterSeconds is { } s)
        {
            headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (ShouldRetry is { } retry)
        {
            headers[ShouldRetryHeader] = retry ? "true" : "false";
        }
    }

    public const string ShouldRetryHeader = "x-should-retry";

    public IResult ToResult() => new ApiErrorResult(this);

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private sealed class ApiErrorResult(ApiError error) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) => error.WriteAsync(httpContext.Response);
    }
}

public static class ErrorTypes
{
    public const string InvalidRequest = "invalid_request_error";
    public const string Authentication = "authentication_error";
    public const string Permission = "permission_error";
    public const string RateLimit = "rate_limit_error";
    public const string InsufficientQuota = "insufficient_quota";
    public const string Api = "api_error";
}

public static class ErrorCodes
{
    public const string InvalidJson = "invalid_json";
    public const string ModelNotFound = "model_not_found";
    public const string RequestTooLarge = "request_too_large";
    public const string InvalidApiKey = "invalid_api_key";
    public const string ModelNotAllowed = "model_not_allowed";
    public const string RateLimitExceeded = "rate_limit_exceeded";
    public const string BudgetExceeded = "budget_exceeded";
    public const string BudgetUnavailable = "budget_unavailable";
    public const string UpstreamError = "upstream_error";
    public const string NoHealthyProvider = "no_healthy_provider";
    public const string UpstreamTimeout = "upstream_timeout";
    public const string NotFound = "not_found";
    public const string InternalError = "internal_error";
}
