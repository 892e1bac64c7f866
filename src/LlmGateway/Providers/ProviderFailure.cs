using LlmGateway.Http;

namespace LlmGateway.Providers;

/// <summary>What a failed provider call means for the request: the one classification that retry,
/// fallback and the final error body all read.</summary>
public enum FailureKind
{
    /// <summary>Worth trying the same provider again (429, 5xx, 529, connection failure, timeout).</summary>
    Retryable,

    /// <summary>This provider can't serve it, another might (401/403 from the provider, unknown upstream model, no key).</summary>
    NextCandidate,

    /// <summary>The prompt is too long for this model; a candidate with a larger context window might take it.</summary>
    ContextLength,

    /// <summary>The request itself is bad (a 400 for a bad parameter): no other provider will do better.</summary>
    FailRequest,
}

/// <summary>Why it failed, for the final status when every candidate failed and for metrics.</summary>
public enum FailureCause
{
    UpstreamStatus,
    Timeout,
    Connection,
    /// <summary>The upstream answered something the gateway could not read, or a stream ended early.</summary>
    Protocol,
    NotConfigured,
    /// <summary>Not tried: the provider's or the deployment's circuit is open.</summary>
    CircuitOpen,
    /// <summary>The upstream answered 429 for this deployment, or it is still cooling down after one.</summary>
    RateLimited,
    /// <summary>The upstream said it is overloaded (Anthropic's 529), or the deployment is still cooling down after that.</summary>
    Overloaded,
    /// <summary>Not tried: the provider is at the gateway's own MaxConcurrency, Rpm or Tpm for it.</summary>
    OverLimit,
    /// <summary>Not tried: a budget (or the per-request cost limit) has no room for it. Never retried on the same candidate.</summary>
    Budget,
}

/// <summary>
/// A failed provider call, as a value. <see cref="Message"/> is already scrubbed of secrets and safe
/// to show to clients and logs.
/// </summary>
public sealed record ProviderFailure(
    FailureKind Kind,
    FailureCause Cause,
    string Provider,
    string Message,
    int UpstreamStatus = 0,
    string? ErrorType = null,
    string? ErrorCode = null,
    string? Param = null)
{
    /// <summary>How long the upstream asked us to wait (Retry-After / retry-after-ms), when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }

    public bool IsTimeout => Cause == FailureCause.Timeout;

    /// <summary>A 429 or 529 from the upstream: the deployment cools down instead of counting a failure.</summary>
    public bool CoolsDown => UpstreamStatus is 429 or 529 && Cause is FailureCause.RateLimited or FailureCause.Overloaded;

    /// <summary>
    /// Evidence about the whole provider rather than one of its models: it can't be reached (refused,
    /// DNS, TLS, a broken connection) or it refuses the gateway's key (401, 403).
    /// </summary>
    public bool IsProviderWide => Unreachable || (Cause == FailureCause.UpstreamStatus && UpstreamStatus is 401 or 403);

    /// <summary>
    /// No connection could be made at all (refused, DNS, TLS): the whole provider is out of reach. A
    /// connection that broke in the middle of an answer is that call's (its deployment's) failure.
    /// </summary>
    public bool Unreachable { get; init; }

    /// <summary>The error body when this failure is what the client gets.</summary>
    public ApiError ToApiError()
    {
        if (Kind == FailureKind.FailRequest)
        {
            // The request is bad: pass the upstream's verdict through in OpenAI's shape.
            var status = UpstreamStatus is >= 400 and < 500 ? UpstreamStatus : StatusCodes.Status400BadRequest;
            return new ApiError(status, ErrorType ?? ErrorTypes.InvalidRequest, ErrorCode, Message, Param);
        }
        return Cause switch
        {
            FailureCause.Timeout => ApiError.UpstreamTimeout(Message),
            FailureCause.CircuitOpen or FailureCause.NotConfigured or FailureCause.OverLimit => ApiError.NoHealthyProvider(Message) with { RetryAfterSeconds = ApiError.Seconds(RetryAfter) },
            // A 429 or 529 in the middle of a stream is the upstream's failure like any other; before the
            // first byte, the executor's final error turns them into 429 and 503 (CandidateExecutor.FinalError).
            FailureCause.Budget => ErrorCode == ErrorCodes.BudgetUnavailable ? ApiError.BudgetUnavailable(Message) : ApiError.BudgetExceeded(Message),
            _ => ApiError.UpstreamError(Message),
        };
    }

    public static ProviderFailure Timeout(string provider, string what) =>
        new(FailureKind.Retryable, FailureCause.Timeout, provider, $"Provider '{provider}' timed out: {what}.");

    public static ProviderFailure Connection(string provider, string detail) =>
        new(FailureKind.Retryable, FailureCause.Connection, provider, $"Provider '{provider}' is unreachable: {detail}");

    public static ProviderFailure Protocol(string provider, string detail) =>
        new(FailureKind.Retryable, FailureCause.Protocol, provider, $"Provider '{provider}' sent an unusable response: {detail}");

    public static ProviderFailure NotConfigured(string provider, string detail) =>
        new(FailureKind.NextCandidate, FailureCause.NotConfigured, provider, $"Provider '{provider}' is not usable: {detail}");

    /// <summary>
    /// Classifies an upstream HTTP error status the way every wire format agrees on; a translator
    /// refines it where its provider says more (a context-length error hidden in a 400, say).
    /// </summary>
    public static FailureKind KindForStatus(int status) => status switch
    {
        408 or 409 or 425 or 429 => FailureKind.Retryable,
        501 or 505 => FailureKind.NextCandidate,       // this server can't do it, however often asked
        >= 500 => FailureKind.Retryable,               // 500, 502, 503, 504, Anthropic's 529
        401 or 402 or 403 or 404 => FailureKind.NextCandidate, // our key, account or the upstream model is wrong: another provider may work
        413 => FailureKind.ContextLength,
        _ => FailureKind.FailRequest,
    };

    /// <summary>True when an upstream's message says the prompt is over the model's context window.</summary>
    public static bool LooksLikeContextLength(string? code, string? message) =>
        code is "context_length_exceeded" or "string_above_max_length" ||
        (message is not null && (message.Contains("context length", StringComparison.OrdinalIgnoreCase) ||
                                 message.Contains("context window", StringComparison.OrdinalIgnoreCase) ||
                                 message.Contains("prompt is too long", StringComparison.OrdinalIgnoreCase) ||
                                 message.Contains("maximum context", StringComparison.OrdinalIgnoreCase)));
}
