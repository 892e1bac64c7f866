using LlmGateway.Http;

namespace LlmGateway.Auth;

/// <summary>The errors of this folder, in OpenAI's shape. None of them ever repeats a presented key.</summary>
public static class AuthErrors
{
    public const string KeyExists = "key_exists";
    public const string KeyNotFound = "key_not_found";
    public const string StoreUnavailable = "store_unavailable";

    public static readonly ApiError MissingKey = new(StatusCodes.Status401Unauthorized, ErrorTypes.Authentication, ErrorCodes.InvalidApiKey,
        "No gateway key was sent. Send it as 'Authorization: Bearer <key>', 'api-key: <key>' or 'x-api-key: <key>'.");

    // Like OpenAI, but without repeating any part of what was sent: a log of error bodies must not
    // become a list of near-miss keys.
    public static readonly ApiError InvalidKey = new(StatusCodes.Status401Unauthorized, ErrorTypes.Authentication, ErrorCodes.InvalidApiKey,
        "The gateway key is not valid (unknown, revoked or malformed).");

    public static readonly ApiError KeyLookupUnavailable = new(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, StoreUnavailable,
        "The gateway could not check the key because its key store is unreachable; try again shortly.");

    public static ApiError ModelNotAllowed(string keyId, string model) =>
        new(StatusCodes.Status403Forbidden, ErrorTypes.Permission, ErrorCodes.ModelNotAllowed,
            $"The key '{keyId}' may not use the model '{Truncate(model, 200)}'.", "model");

    public static ApiError NoAllowedCandidate(string keyId) =>
        new(StatusCodes.Status403Forbidden, ErrorTypes.Permission, ErrorCodes.ModelNotAllowed,
            $"The key '{keyId}' may not use any of the models this request would be routed to.", "model");

    public static ApiError RateLimited(string keyId, string what, int limit, TimeSpan retryAfter) =>
        new(StatusCodes.Status429TooManyRequests, ErrorTypes.RateLimit, ErrorCodes.RateLimitExceeded,
            $"Rate limit reached for key '{keyId}': {limit} {what} per minute. Try again in {RateLimitHeaders.FormatDuration(retryAfter)}.")
        {
            RetryAfterSeconds = RetryAfterSeconds(retryAfter),
        };

    /// <summary>Whole seconds for Retry-After, rounded up so a client that obeys it is admitted.</summary>
    public static int RetryAfterSeconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";
}
