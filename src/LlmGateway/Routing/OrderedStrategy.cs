namespace LlmGateway.Routing;

/// <summary>
/// The task type's Models list exactly as written: the first is the primary, the rest its fallbacks in
/// order. What an operator means by "best reasoning model for analysis" when the models' global
/// Priority says otherwise (the priority strategy goes by Priority first).
/// </summary>
public sealed class OrderedStrategy : IRoutingStrategy
{
    public string Name => RoutingStrategies.Ordered;
    public string ScoreMeaning => "position in the task type's Models list; first first";

    public void Order(List<RouteCandidate> candidates, in StrategyContext context)
    {
        foreach (var c in candidates) c.Score = c.ListIndex;
        RoutingStrategies.Sort(candidates, static (a, b) => a.ListIndex.CompareTo(b.ListIndex));
    }
}
