namespace LlmGateway.Routing;

/// <summary>
/// Fastest first, by latency observed on real traffic (<see cref="LatencyTracker"/>): time to the first
/// token for a stream, time to the whole answer otherwise. Models with nothing observed yet go after
/// every measured one, in Priority then list order: a stream of requests is not gambled on an
/// unknown model while a measured one is available, and an unmeasured model still gets traffic as a
/// fallback, and from requests that name it, which measures it.
/// </summary>
public sealed class LatencyStrategy : IRoutingStrategy
{
    public string Name => RoutingStrategies.Latency;
    public string ScoreMeaning => "observed latency in ms (time to first token for streams, whole answer otherwise); fastest first, unmeasured last";

    public void Order(List<RouteCandidate> candidates, in StrategyContext context)
    {
        foreach (var c in candidates) c.Score = c.Latency.For(context.Stream);
        RoutingStrategies.Sort(candidates, static (a, b) => (a.Score, b.Score) switch
        {
            (null, null) => 0,
            (null, _) => 1,
            (_, null) => -1,
            var (x, y) => x.Value.CompareTo(y.Value),
        });
    }
}
