using LlmGateway.Routing;
using static LlmGateway.Tests.Routing.RoutingSetup;

namespace LlmGateway.Tests.Routing;

public class ModelRouterTests
{
    /// <summary>Three cloud models of rising price and quality, one local model, one provider without its key.</summary>
    private static RoutingSetup Setup() => new RoutingSetup()
        .Provider("cloud").Provider("other-cloud").Provider("box", local: true).Provider("keyless", usable: false)
        .Model("mini", "cloud", priority: 10, input: 0.00015m, output: 0.0006m, quality: 0.6, capabilities: ["tools", "json", "vision"], fallbacks: ["local", "big"])
        .Model("big", "other-cloud", priority: 20, input: 0.0025m, output: 0.01m, quality: 0.9, maxOutput: 16384, capabilities: ["tools", "json", "vision"])
        .Model("local", "box", priority: 30, input: 0m, output: 0m, contextWindow: 8192, maxOutput: 2048, quality: 0.3, capabilities: ["json"])
        .Model("nokey", "keyless", priority: 1)
        .TaskType("general", ["mini", "big", "local"])
        .TaskType("cheap", ["big", "mini", "local"], strategy: "cost")
        .TaskType("sql", ["big", "mini"], patterns: [@"\bselect\b"]);

    [Fact]
    public void Auto_uses_the_task_types_models_ordered_by_the_global_strategy()
    {
        var d = Setup().Build().Route(Ask("auto"), Headers());
        Assert.Equal("general", d.TaskType);
        Assert.Equal(RoutingStrategies.Priority, d.Strategy);
        Assert.Equal(["mini", "big", "local"], Order(d));
        Assert.Null(d.Error);
    }

    [Fact]
    public void A_task_types_own_strategy_overrides_the_global_one()
    {
        var d = Setup().Build().Route(Ask("auto"), Headers(("X-Task-Type", "cheap")));
        Assert.Equal(RoutingStrategies.Cost, d.Strategy);
        Assert.Equal(["local", "mini", "big"], Order(d));
    }

    [Fact]
    public void The_global_strategy_applies_to_task_types_without_one()
    {
        var d = Setup().Configure(o => o.Routing.Strategy = "cost").Build().Route(Ask("auto", "select 1"), Headers());
        Assert.Equal("sql", d.TaskType);
        Assert.Equal(["mini", "big"], Order(d));
    }

    [Fact]
    public void A_named_model_comes_first_then_its_fallbacks_in_the_order_written_whatever_the_strategy()
    {
        var d = Setup().Configure(o => o.Routing.Strategy = "cost").Build().Route(Ask("mini"), Headers());
        Assert.Equal(["mini", "local", "big"], Order(d));
        Assert.Equal(RoutingStrategies.Fallbacks, d.Strategy);
        Assert.All(d.Evaluated, c => Assert.Null(c.Score));
    }

    [Fact]
    public void An_unknown_model_is_a_404_and_an_unknown_task_type_uses_the_default()
    {
        var router = Setup().Build();
        Assert.Equal(404, router.Route(Ask("gpt-9"), Headers()).Error!.Status);
        var d = router.Route(Ask("auto"), Headers(("X-Task-Type", "astrology")));
        Assert.Equal("general", d.TaskType);
        Assert.Contains("astrology", d.TaskTypeDetail);
    }

    [Fact]
    public void A_provider_without_its_key_is_removed_and_says_which_variable_is_missing()
    {
        var d = Setup().TaskType("all", []).Build().Route(Ask("auto"), Headers(("X-Task-Type", "all")));
        var removed = Assert.Single(d.Removed);
        Assert.Equal(("nokey", CandidateFilters.Unusable), (removed.ModelName, removed.Filter));
        Assert.Contains(MissingKeyVariable, removed.Reason);
        Assert.Equal(["mini", "big", "local"], Order(d));   // a task type with no Models list takes every model
    }

    [Fact]
    public void No_fallback_on_a_named_model_keeps_only_that_model()
    {
        var d = Setup().Build().Route(Ask("mini"), Headers(("X-No-Fallback", "true")));
        Assert.Equal(["mini"], Order(d));
        Assert.All(d.Removed, r => Assert.Equal(CandidateFilters.NoFallback, r.Filter));
    }

    [Fact]
    public void No_fallback_on_a_named_model_that_is_filtered_out_is_an_error_not_a_fallback()
    {
        var d = Setup().Build(health: new FixedHealth("cloud")).Route(Ask("mini"), Headers(("X-No-Fallback", "TRUE")));
        Assert.Empty(d.Candidates);
        Assert.Equal(503, d.Error!.Status);
    }

    [Fact]
    public void No_fallback_on_auto_keeps_only_the_strategys_first_choice()
    {
        var d = Setup().Build().Route(Ask("auto"), Headers(("X-Task-Type", "cheap"), ("X-No-Fallback", "true")));
        Assert.Equal(["local"], Order(d));
        Assert.Equal(2, d.Removed.Count(r => r.Filter == CandidateFilters.NoFallback));
    }

    [Fact]
    public void Local_only_comes_from_the_header_the_callers_key_or_the_configuration()
    {
        var router = Setup().Build();
        var byHeader = router.Route(Ask("auto"), Headers(("X-Local-Only", "true")));
        Assert.Equal(["local"], Order(byHeader));
        Assert.Contains("X-Local-Only", byHeader.Removed[0].Reason);

        var byKey = router.Route(Ask("auto"), Headers() with { CallerLocalOnly = true });
        Assert.Equal(["local"], Order(byKey));
        Assert.Contains("key", byKey.Removed[0].Reason);

        var byConfig = Setup().Configure(o => o.Routing.LocalOnly = true).Build().Route(Ask("mini"), Headers());
        Assert.Equal(["local"], Order(byConfig));
        Assert.Contains("Gateway:Routing:LocalOnly", byConfig.Removed[0].Reason);
    }

    [Fact]
    public void Local_only_with_no_local_candidate_is_a_403()
    {
        var d = Setup().Build().Route(Ask("big"), Headers(("X-Local-Only", "true")));
        Assert.Equal(403, d.Error!.Status);
        Assert.Equal("model_not_allowed", d.Error.Code);
    }

    [Theory]
    [InlineData("X-Local-Only", "yes")]
    [InlineData("X-No-Fallback", "1")]
    [InlineData("X-Max-Cost-Usd", "two cents")]
    [InlineData("X-Max-Cost-Usd", "-1")]
    public void A_malformed_routing_header_is_a_400_naming_it(string header, string value)
    {
        var d = Setup().Build().Route(Ask("auto"), Headers((header, value)));
        Assert.Equal(400, d.Error!.Status);
        Assert.Contains(header, d.Error.Message);
        Assert.Empty(d.Candidates);
        Assert.StartsWith("no route:", d.Summary);
    }

    [Fact]
    public void Tools_images_and_json_mode_need_models_that_declare_them()
    {
        var router = Setup().Build();
        var tools = router.Route(Ask("mini", extra: ""","tools":[{"type":"function","function":{"name":"f"}}]"""), Headers());
        Assert.Equal(["mini", "big"], Order(tools));   // the fallback "local" lacks tools
        Assert.Equal(("local", CandidateFilters.Capabilities), (tools.Removed.Single().ModelName, tools.Removed.Single().Filter));
        var images = router.Route(Request("""{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}"""), Headers(("X-Task-Type", "cheap")));
        Assert.Equal(["mini", "big"], Order(images));
        Assert.Equal(CandidateFilters.Capabilities, images.Removed.Single().Filter);
    }

    [Fact]
    public void A_request_no_candidate_can_take_is_a_400_naming_the_capability()
    {
        var d = Setup().Build().Route(Ask("local", extra: ""","response_format":{"type":"json_object"},"tools":[{"type":"function","function":{"name":"f"}}]"""), Headers());
        Assert.Equal(400, d.Error!.Status);
        Assert.Equal("tools", d.Error.Param);
        Assert.Contains("needs tools", d.Error.Message);
    }

    [Fact]
    public void A_prompt_too_long_for_a_models_window_skips_it()
    {
        var longText = new string('w', 7000 * 4);   // ~7000 tokens: over local's 8192 window with its 2048 output allowance
        var d = Setup().Build().Route(Ask("auto", longText), Headers(("X-Task-Type", "cheap")));
        Assert.Equal(["mini", "big"], Order(d));
        Assert.Equal(CandidateFilters.ContextWindow, d.Removed.Single().Filter);

        var withSmallMaxTokens = Setup().Build().Route(Ask("auto", longText, ""","max_tokens":500"""), Headers(("X-Task-Type", "cheap")));
        Assert.Equal(["local", "mini", "big"], Order(withSmallMaxTokens));
    }

    [Fact]
    public void Max_cost_skips_candidates_whose_worst_case_is_over_the_limit()
    {
        // Worst case of "big": ~10 prompt tokens and 16384 output tokens at $0.01/1k, about $0.16.
        var d = Setup().Build().Route(Ask("auto"), Headers(("X-Max-Cost-Usd", "0.02")));
        Assert.Equal(["mini", "local"], Order(d));
        var removed = d.Removed.Single();
        Assert.Equal(("big", CandidateFilters.MaxCost), (removed.ModelName, removed.Filter));
        Assert.Contains("X-Max-Cost-Usd", removed.Reason);

        // Asking for fewer output tokens brings it under the limit.
        var shorter = Setup().Build().Route(Ask("auto", extra: ""","max_tokens":1000"""), Headers(("X-Max-Cost-Usd", "0.02")));
        Assert.Equal(["mini", "big", "local"], Order(shorter));
    }

    [Fact]
    public void The_configured_per_request_limit_applies_and_a_client_can_only_tighten_it()
    {
        var setup = Setup().Configure(o => o.Budgets.MaxCostPerRequestUsd = 0.02m);
        var configured = setup.Build().Route(Ask("auto"), Headers());
        Assert.Equal(["mini", "local"], Order(configured));
        Assert.Contains("Gateway:Budgets:MaxCostPerRequestUsd", configured.Removed.Single().Reason);

        var loosened = setup.Build().Route(Ask("auto"), Headers(("X-Max-Cost-Usd", "5")));
        Assert.Equal(["mini", "local"], Order(loosened));

        var tightened = setup.Build().Route(Ask("auto"), Headers(("X-Max-Cost-Usd", "0.001")));
        Assert.Equal(["local"], Order(tightened));
    }

    [Fact]
    public void Nothing_under_the_cost_limit_is_a_400_that_says_how_to_fix_it()
    {
        var d = Setup().Build().Route(Ask("big"), Headers(("X-Max-Cost-Usd", "0.0001"), ("X-No-Fallback", "true")));
        Assert.Equal(400, d.Error!.Status);
        Assert.Equal(RoutingErrorCodes.MaxCostExceeded, d.Error.Code);
        Assert.Contains("max_tokens", d.Error.Message);
    }

    [Fact]
    public void An_open_circuit_skips_that_providers_models_and_all_open_is_a_503()
    {
        var d = Setup().Build(health: new FixedHealth("cloud")).Route(Ask("auto"), Headers());
        Assert.Equal(["big", "local"], Order(d));
        Assert.Equal(CandidateFilters.CircuitOpen, d.Removed.Single().Filter);

        var none = Setup().Build(health: new FixedHealth("cloud", "other-cloud", "box")).Route(Ask("auto"), Headers());
        Assert.Equal(503, none.Error!.Status);
        Assert.Equal("no_healthy_provider", none.Error.Code);
    }

    [Fact]
    public void A_spent_provider_budget_skips_its_models_and_all_spent_is_a_429()
    {
        var d = Setup().Build(budgets: new FixedBudgets("cloud")).Route(Ask("auto"), Headers());
        Assert.Equal(["big", "local"], Order(d));

        var none = Setup().Build(budgets: new FixedBudgets("cloud", "other-cloud", "box")).Route(Ask("auto"), Headers());
        Assert.Equal(429, none.Error!.Status);
        Assert.Equal("budget_exceeded", none.Error.Code);
        Assert.Equal("insufficient_quota", none.Error.Type);
    }

    [Fact]
    public void Latency_learned_from_traffic_reorders_a_latency_task_type()
    {
        var setup = Setup().TaskType("fast", ["mini", "big", "local"], strategy: "latency");
        var latency = new LatencyTracker(Microsoft.Extensions.Options.Options.Create(setup.Options));
        var router = setup.Build(latency: latency);

        Assert.Equal(["mini", "big", "local"], Order(router.Route(Ask("auto"), Headers(("X-Task-Type", "fast")))));
        latency.Observe("local", null, TimeSpan.FromMilliseconds(300));
        latency.Observe("big", null, TimeSpan.FromMilliseconds(900));
        Assert.Equal(["local", "big", "mini"], Order(router.Route(Ask("auto"), Headers(("X-Task-Type", "fast")))));
    }

    [Fact]
    public void The_decision_keeps_every_candidate_with_its_estimates_for_the_explanation()
    {
        var d = Setup().Build().Route(Ask("auto"), Headers(("X-Task-Type", "cheap"), ("X-Max-Cost-Usd", "0.02")));
        Assert.Equal(["local", "mini", "big"], d.Evaluated.Select(c => c.ModelName));
        var big = d.Evaluated[2];
        Assert.Equal(CandidateFilters.MaxCost, big.Removed!.Filter);
        Assert.True(big.MaxCostUsd > 0.16m && big.MaxCostUsd < 0.17m);
        Assert.True(d.Evaluated[0].EstimatedCostUsd < d.Evaluated[1].EstimatedCostUsd);
        Assert.Equal("cost: local>mini | removed big (max-cost) | task type by header", d.Summary);
    }

    [Fact]
    public void A_named_models_unchanged_chain_shares_its_summary_line_and_a_new_task_type_source_gets_its_own()
    {
        var router = Setup().Build();

        var first = router.Route(Ask("mini"), Headers());
        var second = router.Route(Ask("mini"), Headers());
        Assert.Equal("fallbacks: mini>local>big | task type by default", first.Summary);
        Assert.Same(first.Summary, second.Summary);

        var byHeader = router.Route(Ask("mini"), Headers(("X-Task-Type", "sql")));
        Assert.Equal("fallbacks: mini>local>big | task type by header", byHeader.Summary);
        var removed = router.Route(Ask("mini"), Headers(("X-Local-Only", "true")));
        Assert.Equal("fallbacks: local | removed mini (local-only), big (local-only) | task type by default", removed.Summary);
        Assert.Equal("fallbacks: mini>local>big | task type by default", router.Route(Ask("mini"), Headers()).Summary);
    }
}
