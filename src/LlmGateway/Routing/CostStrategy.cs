namespace LlmGateway.Routing;

/// <summary>
/// Cheapest first, by the estimated cost of this request on each model: its estimated prompt tokens
/// and the same answer length for all (max_tokens, else <see cref="RoutingDefaults.TypicalOutputTokens"/>),
/// at each model's prices. Equal costs go by Priority, then list order.
/// </summary>
public sealed class CostStrategy : IRoutingStrategy
{
    public string Name => RoutingStrategies.Cost;
    public string ScoreMeaning => "estimated cost in USD of this request; cheapest first";

    public void Order(List<RouteCandidate> candidates, in StrategyContext context)
    {
        foreach (var c in candidates) c.Score = (double)c.EstimatedCostUsd;
        RoutingStrategies.Sort(candidates, static (a, b) => a.EstimatedCostUsd.CompareTo(b.EstimatedCostUsd));
    }
}
