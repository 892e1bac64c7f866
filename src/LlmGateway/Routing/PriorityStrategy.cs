namespace LlmGateway.Routing;

/// <summary>The operator's order: lowest <c>Priority</c> first, then the order of the task type's Models list.</summary>
public sealed class PriorityStrategy : IRoutingStrategy
{
    public string Name => RoutingStrategies.Priority;
    public string ScoreMeaning => "the model's Priority; lowest first, ties in list order";

    public void Order(List<RouteCandidate> candidates, in StrategyContext context)
    {
        foreach (var c in candidates) c.Score = c.Model.Priority;
        // The sort's own tie-breaks are Priority, then list order: exactly this strategy.
        RoutingStrategies.Sort(candidates, static (_, _) => 0);
    }
}
