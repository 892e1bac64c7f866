using LlmGateway.Configuration;

namespace LlmGateway.Tests.Routing;

public class RoutingConfigurationTests
{
    private static RoutingSetup Valid() => new RoutingSetup().Provider("p").Model("m", "p").TaskType("general", ["m"]);

    [Fact]
    public void Every_strategy_name_is_accepted_globally_and_per_task_type()
    {
        foreach (var name in LlmGateway.Routing.RoutingStrategies.All)
        {
            var setup = Valid().Configure(o => o.Routing.Strategy = name).TaskType("other", ["m"], strategy: name);
            Assert.Empty(GatewayOptionsValidator.Validate(setup.Options));
        }
    }

    [Fact]
    public void Balanced_with_every_weight_at_zero_is_refused_at_start_up()
    {
        var setup = Valid().TaskType("mixed", ["m"], strategy: "balanced")
            .Configure(o => o.Routing.Weights = new RoutingWeights { Cost = 0, Performance = 0, Quality = 0, Capabilities = 0 });
        Assert.Contains(GatewayOptionsValidator.Validate(setup.Options), e => e.StartsWith("Gateway:Routing:Weights", StringComparison.Ordinal));

        // Without balanced anywhere the weights are unused, and zero is fine.
        var unused = Valid().Configure(o => o.Routing.Weights = new RoutingWeights { Cost = 0, Performance = 0, Quality = 0, Capabilities = 0 });
        Assert.Empty(GatewayOptionsValidator.Validate(unused.Options));
    }

    [Fact]
    public void Unknown_strategies_and_models_in_task_types_are_named()
    {
        var setup = Valid().TaskType("x", ["ghost"], strategy: "fastest");
        var errors = GatewayOptionsValidator.Validate(setup.Options);
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routing:TaskTypes:x:Strategy", StringComparison.Ordinal) && e.Contains("ordered", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:Routing:TaskTypes:x:Models", StringComparison.Ordinal));
    }
}
