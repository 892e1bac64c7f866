using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>
/// What the caller asks of the pipeline beyond the body, as values: each ingress reads them from its
/// own transport (the OpenAI endpoints from <c>X-Local-Only</c>, <c>X-No-Fallback</c>,
/// <c>X-Max-Cost-Usd</c>, <c>X-Task-Type</c>, <c>Cache-Control</c> and <c>X-Conversation-Id</c>), a
/// batch passes its own cost cap in <see cref="MaxCostUsd"/>. Nothing downstream reads a header.
/// </summary>
public sealed record RequestHints
{
    public static readonly RequestHints None = new();

    /// <summary>Local providers only (X-Local-Only: true).</summary>
    public bool LocalOnly { get; init; }

    /// <summary>Exactly the model asked for, no fallbacks (X-No-Fallback: true).</summary>
    public bool NoFallback { get; init; }

    /// <summary>Skip candidates whose worst-case cost is higher (X-Max-Cost-Usd, or a batch's reservation); null for none.</summary>
    public decimal? MaxCostUsd { get; init; }

    /// <summary>The task type the caller names (X-Task-Type), trimmed; null when it names none.</summary>
    public string? TaskType { get; init; }

    /// <summary>Don't answer from the cache (Cache-Control: no-cache).</summary>
    public bool NoCache { get; init; }

    /// <summary>Don't keep the answer in the cache (Cache-Control: no-store).</summary>
    public bool NoStore { get; init; }

    /// <summary>
    /// The conversation whose history goes in front of a chat request's messages (X-Conversation-Id), as
    /// the caller sent it; the pipeline checks it (a bad id is a 400 of its own). Null for none.
    /// </summary>
    public string? ConversationId { get; init; }

    /// <summary>
    /// A routing hint the caller sent that can't be read (a typo in X-Local-Only must not send data to a
    /// cloud provider): the routing step refuses the request with this 400, as the router always has.
    /// </summary>
    public ApiError? RoutingError { get; init; }
}
