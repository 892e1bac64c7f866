namespace LlmGateway.Routing;

/// <summary>
/// Orders the candidates of an <c>auto</c> request that survived the filters. One small class per
/// strategy, picked by <see cref="Name"/> from <c>Gateway:Routing:Strategy</c> or a task type's
/// <c>Strategy</c> (the shape of YARP's load-balancing policies).
/// </summary>
public interface IRoutingStrategy
{
    string Name { get; }

    /// <summary>What <see cref="RouteCandidate.Score"/> means under this strategy, for the explain output.</summary>
    string ScoreMeaning { get; }

    /// <summary>Sets each candidate's <see cref="RouteCandidate.Score"/> and sorts the list, first choice first.</summary>
    void Order(List<RouteCandidate> candidates, in StrategyContext context);
}

/// <summary>What a strategy may know of the request beyond the candidates.</summary>
public readonly record struct StrategyContext(bool Stream);

/// <summary>The strategy names used in configuration.</summary>
public static class RoutingStrategies
{
    public const string Priority = "priority";
    public const string Cost = "cost";
    public const string Latency = "latency";
    public const string Balanced = "balanced";

    /// <summary>An extension of the contract's four: the task type's Models list as written.</summary>
    public const string Ordered = "ordered";

    /// <summary>Not configurable: a named model is tried first, then its Fallbacks in the order written.</summary>
    public const string Fallbacks = "fallbacks";

    public static readonly string[] All = [Priority, Cost, Latency, Balanced, Ordered];

    /// <summary>
    /// A stable sort for the few candidates of a request (insertion sort: no allocation, and equal keys
    /// keep their order). Ties under <paramref name="compare"/> fall back to Priority, then list order,
    /// so every strategy is deterministic.
    /// </summary>
    public static void Sort(List<RouteCandidate> candidates, Comparison<RouteCandidate> compare)
    {
        for (var i = 1; i < candidates.Count; i++)
        {
            var item = candidates[i];
            var j = i - 1;
            while (j >= 0 && Compare(candidates[j], item, compare) > 0)
            {
                candidates[j + 1] = candidates[j];
                j--;
            }
            candidates[j + 1] = item;
        }
    }

    private static int Compare(RouteCandidate a, RouteCandidate b, Comparison<RouteCandidate> compare)
    {
        var c = compare(a, b);
        if (c != 0) return c;
        c = a.Model.Priority.CompareTo(b.Model.Priority);
        return c != 0 ? c : a.ListIndex.CompareTo(b.ListIndex);
    }
}

/// <summary>Routing constants, documented in one place.</summary>
public static class RoutingDefaults
{
    /// <summary>
    /// The answer length assumed when ranking by cost and the client set no max_tokens. Ranking only
    /// needs the same assumption for every candidate; limits use the full output allowance instead.
    /// </summary>
    public const int TypicalOutputTokens = 500;

    /// <summary>
    /// How long one task-type pattern may run on one message; a timeout counts as no match. It stops a
    /// runaway pattern, so it is generous: an ordinary pattern takes microseconds on the scanned text
    /// (<see cref="PatternScanChars"/>), and a tight timeout would turn a busy machine's scheduling
    /// pause into a misclassification.
    /// </summary>
    public static readonly TimeSpan PatternMatchTimeout = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Patterns see at most this many characters of the last user message: its first and last halves.
    /// What a request is for is nearly always said at its start or its end, and this bounds the cost of
    /// classifying a long prompt.
    /// </summary>
    public const int PatternScanChars = 8192;

    /// <summary>
    /// When a request sets no max_tokens, the context-window check reserves the model's MaxOutputTokens
    /// for the answer, but at most this share of the window.
    /// </summary>
    public const double UnsetOutputShareOfWindow = 0.25;

    /// <summary>Weight of the newest latency sample in the exponentially weighted average.</summary>
    public const double LatencySmoothing = 0.3;

    /// <summary>The balanced strategy's performance score for a model with no latency observed yet: neither good nor bad.</summary>
    public const double UnknownPerformanceScore = 0.5;
}
