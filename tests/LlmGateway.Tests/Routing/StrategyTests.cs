using LlmGateway.Configuration;
using LlmGateway.Routing;
using static LlmGateway.Tests.Routing.Candidates;

namespace LlmGateway.Tests.Routing;

public class StrategyTests
{
    private static readonly StrategyContext NonStreaming = new(Stream: false);
    private static readonly StrategyContext Streaming = new(Stream: true);

    [Fact]
    public void Priority_puts_the_lowest_priority_first_and_keeps_list_order_between_equals()
    {
        List<RouteCandidate> list = [Make("c", 0, priority: 50), Make("a", 1, priority: 10), Make("b2", 2, priority: 20), Make("b1", 3, priority: 20)];
        new PriorityStrategy().Order(list, NonStreaming);
        Assert.Equal(["a", "b2", "b1", "c"], Names(list));
        Assert.Equal([10.0, 20.0, 20.0, 50.0], list.Select(c => c.Score!.Value));
    }

    [Fact]
    public void Cost_puts_the_cheapest_estimate_first_whatever_the_priority()
    {
        List<RouteCandidate> list = [Make("pricey", 0, priority: 1, cost: 0.05m), Make("cheap", 1, priority: 90, cost: 0.0001m), Make("middle", 2, priority: 5, cost: 0.002m)];
        new CostStrategy().Order(list, NonStreaming);
        Assert.Equal(["cheap", "middle", "pricey"], Names(list));
        Assert.Equal(0.0001, list[0].Score!.Value, 10);
    }

    [Fact]
    public void Cost_breaks_ties_by_priority_then_list_order()
    {
        List<RouteCandidate> list = [Make("free-b", 0, priority: 50), Make("free-a", 1, priority: 10), Make("free-c", 2, priority: 50)];
        new CostStrategy().Order(list, NonStreaming);
        Assert.Equal(["free-a", "free-b", "free-c"], Names(list));
    }

    [Fact]
    public void Latency_uses_time_to_first_token_for_streams_and_duration_otherwise()
    {
        // "quick-start" starts streaming sooner but takes longer to finish.
        List<RouteCandidate> Build() => [Make("quick-start", 0, ttftMs: 100, durationMs: 3000), Make("quick-finish", 1, ttftMs: 400, durationMs: 1500)];

        var stream = Build();
        new LatencyStrategy().Order(stream, Streaming);
        Assert.Equal(["quick-start", "quick-finish"], Names(stream));
        Assert.Equal(100, stream[0].Score);

        var whole = Build();
        new LatencyStrategy().Order(whole, NonStreaming);
        Assert.Equal(["quick-finish", "quick-start"], Names(whole));
        Assert.Equal(1500, whole[0].Score);
    }

    [Fact]
    public void Latency_puts_unmeasured_models_after_measured_ones_in_priority_order()
    {
        List<RouteCandidate> list = [Make("new-b", 0, priority: 30), Make("slow", 1, durationMs: 9000), Make("new-a", 2, priority: 20), Make("fast", 3, durationMs: 200)];
        new LatencyStrategy().Order(list, NonStreaming);
        Assert.Equal(["fast", "slow", "new-a", "new-b"], Names(list));
        Assert.Null(list[2].Score);
    }

    [Fact]
    public void Latency_falls_back_to_duration_for_a_stream_when_no_first_token_was_timed()
    {
        List<RouteCandidate> list = [Make("streamed-before", 0, ttftMs: 900, durationMs: 2000), Make("only-whole-answers", 1, durationMs: 600)];
        new LatencyStrategy().Order(list, Streaming);
        Assert.Equal(["only-whole-answers", "streamed-before"], Names(list));
    }

    [Fact]
    public void Balanced_computes_the_weighted_mean_of_criteria_normalized_across_the_candidates()
    {
        var weights = new RoutingWeights { Cost = 0.3, Performance = 0.4, Quality = 0.2, Capabilities = 0.1 };
        List<RouteCandidate> list =
        [
            // cost 1 (cheapest), performance 0 (slowest), quality 0, capabilities 0
            Make("cheap-slow", 0, cost: 0.001m, durationMs: 3000, quality: 0.2, capabilities: ["json"]),
            // cost 0, performance 1, quality 1, capabilities 1
            Make("pricey-fast", 1, cost: 0.011m, durationMs: 1000, quality: 0.9, capabilities: ["json", "tools", "vision"]),
            // cost 0.5, performance 0.5 (unknown), quality 0.5, capabilities 0.5
            Make("middle-new", 2, cost: 0.006m, quality: 0.55, capabilities: ["json", "tools"]),
        ];
        new BalancedStrategy(weights).Order(list, NonStreaming);

        Assert.Equal(["pricey-fast", "middle-new", "cheap-slow"], Names(list));
        Assert.Equal(0.4 + 0.2 + 0.1, list[0].Score!.Value, 9);
        Assert.Equal(0.5, list[1].Score!.Value, 9);
        Assert.Equal(0.3, list[2].Score!.Value, 9);
    }

    [Fact]
    public void Balanced_follows_the_weights_that_are_set()
    {
        List<RouteCandidate> Build() =>
        [
            Make("cheap", 0, cost: 0.001m, quality: 0.3),
            Make("smart", 1, cost: 0.02m, quality: 0.95),
        ];

        var byCost = Build();
        new BalancedStrategy(new RoutingWeights { Cost = 1, Performance = 0, Quality = 0, Capabilities = 0 }).Order(byCost, NonStreaming);
        Assert.Equal(["cheap", "smart"], Names(byCost));

        var byQuality = Build();
        new BalancedStrategy(new RoutingWeights { Cost = 0, Performance = 0, Quality = 1, Capabilities = 0 }).Order(byQuality, NonStreaming);
        Assert.Equal(["smart", "cheap"], Names(byQuality));
    }

    [Fact]
    public void Balanced_scores_equal_candidates_equally_and_keeps_priority_order()
    {
        List<RouteCandidate> list = [Make("b", 0, priority: 20, cost: 0.01m, quality: 0.5), Make("a", 1, priority: 10, cost: 0.01m, quality: 0.5)];
        new BalancedStrategy(new RoutingWeights()).Order(list, NonStreaming);
        Assert.Equal(["a", "b"], Names(list));
        Assert.Equal(list[0].Score, list[1].Score);
    }

    [Fact]
    public void Ordered_keeps_the_task_types_list_as_written_whatever_the_priority()
    {
        List<RouteCandidate> list = [Make("best", 0, priority: 90, cost: 0.05m), Make("good", 1, priority: 10), Make("ok", 2, priority: 1)];
        new OrderedStrategy().Order(list, NonStreaming);
        Assert.Equal(["best", "good", "ok"], Names(list));

        // Filters may have removed some: the survivors keep their relative order.
        List<RouteCandidate> survivors = [Make("ok", 2, priority: 1), Make("best", 0, priority: 90)];
        new OrderedStrategy().Order(survivors, NonStreaming);
        Assert.Equal(["best", "ok"], Names(survivors));
    }

    [Fact]
    public void Every_configurable_strategy_name_has_a_strategy()
    {
        IRoutingStrategy[] strategies = [new PriorityStrategy(), new CostStrategy(), new LatencyStrategy(), new BalancedStrategy(new RoutingWeights()), new OrderedStrategy()];
        Assert.Equal(RoutingStrategies.All.Order(), strategies.Select(s => s.Name).Order());
    }
}
