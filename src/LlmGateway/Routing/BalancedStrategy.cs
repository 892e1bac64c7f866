using LlmGateway.Configuration;

namespace LlmGateway.Routing;

/// <summary>
/// A weighted score over four criteria, each normalized across the candidates of this request to 0..1
/// (1 = the best among them; every candidate gets 1 when they are all equal):
/// cost (cheapest estimated cost), performance (lowest observed latency; a model not measured yet
/// scores <see cref="RoutingDefaults.UnknownPerformanceScore"/>), quality (the configured Quality) and
/// capabilities (how many capabilities the model declares). The score is the weighted mean with
/// <c>Gateway:Routing:Weights</c>; highest first.
/// </summary>
public sealed class BalancedStrategy(RoutingWeights weights) : IRoutingStrategy
{
    public string Name => RoutingStrategies.Balanced;
    public string ScoreMeaning => "weighted score 0..1 over cost, performance, quality and capabilities; highest first";

    public void Order(List<RouteCandidate> candidates, in StrategyContext context)
    {
        if (candidates.Count == 0) return;

        double minCost = double.MaxValue, maxCost = double.MinValue;
        double minLatency = double.MaxValue, maxLatency = double.MinValue;
        double minQuality = double.MaxValue, maxQuality = double.MinValue;
        double minCaps = double.MaxValue, maxCaps = double.MinValue;
        foreach (var c in candidates)
        {
            Track((double)c.EstimatedCostUsd, ref minCost, ref maxCost);
            if (c.Latency.For(context.Stream) is { } latency) Track(latency, ref minLatency, ref maxLatency);
            Track(c.Model.Quality, ref minQuality, ref maxQuality);
            Track(c.Model.Capabilities.Count, ref minCaps, ref maxCaps);
        }

        var total = weights.Cost + weights.Performance + weights.Quality + weights.Capabilities;
        foreach (var c in candidates)
        {
            var cost = LowerIsBetter((double)c.EstimatedCostUsd, minCost, maxCost);
            var performance = c.Latency.For(context.Stream) is { } latency
                ? LowerIsBetter(latency, minLatency, maxLatency)
                : RoutingDefaults.UnknownPerformanceScore;
            var quality = HigherIsBetter(c.Model.Quality, minQuality, maxQuality);
            var caps = HigherIsBetter(c.Model.Capabilities.Count, minCaps, maxCaps);
            var weighted = weights.Cost * cost + weights.Performance * performance + weights.Quality * quality + weights.Capabilities * caps;
            c.Score = total > 0 ? weighted / total : 0;
        }
        RoutingStrategies.Sort(candidates, static (a, b) => b.Score!.Value.CompareTo(a.Score!.Value));
    }

    private static void Track(double value, ref double min, ref double max)
    {
        if (value < min) min = value;
        if (value > max) max = value;
    }

    private static double LowerIsBetter(double value, double min, double max) => max > min ? (max - value) / (max - min) : 1;

    private static double HigherIsBetter(double value, double min, double max) => max > min ? (value - min) / (max - min) : 1;
}
