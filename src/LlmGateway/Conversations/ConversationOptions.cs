namespace LlmGateway.Conversations;

/// <summary>
/// <c>Gateway:Conversations</c>: how long a conversation lives and how much of it is replayed. The
/// defaults live here and nowhere else.
/// </summary>
public sealed class ConversationOptions
{
    public const int DefaultTtlSeconds = 86_400;
    public const int DefaultMaxHistoryTokens = 32_000;

    /// <summary>A conversation is forgotten this long after its last turn (every turn refreshes it).</summary>
    public int TtlSeconds { get; set; } = DefaultTtlSeconds;

    /// <summary>
    /// The stored history (system prompt included, estimated with the chat path's TokenEstimator) is kept
    /// under this many tokens by dropping the oldest turns; the system prompt is never dropped.
    /// </summary>
    public int MaxHistoryTokens { get; set; } = DefaultMaxHistoryTokens;

    /// <summary>At most this many turns are kept (oldest dropped first); 0 = only the token budget limits them.</summary>
    public int MaxTurns { get; set; }

    /// <summary>Adds every problem with these options to <paramref name="errors"/> (see GatewayOptionsValidator).</summary>
    public void Validate(List<string> errors)
    {
        if (TtlSeconds is < 1 or > 31_536_000) errors.Add("Gateway:Conversations:TtlSeconds must be between 1 and 31536000 (a year).");
        if (MaxHistoryTokens < 1) errors.Add("Gateway:Conversations:MaxHistoryTokens must be positive.");
        if (MaxTurns < 0) errors.Add("Gateway:Conversations:MaxTurns must be 0 (no limit) or positive.");
    }
}
