using LlmGateway.Resilience;
using LlmGateway.Routing;
using static LlmGateway.Tests.Routing.Candidates;

namespace LlmGateway.Tests.Routing;

public class FilterTests
{
    private static RoutingInput Input(string model = "auto", bool noFallback = false, string? localOnly = null, ModelCapabilities required = ModelCapabilities.None,
        int prompt = 100, int? maxTokens = null, decimal? maxCost = null) => new()
    {
        RequestedModel = model,
        IsAuto = model == "auto",
        NoFallback = noFallback,
        LocalOnlySource = localOnly,
        Required = required,
        PromptTokens = prompt,
        MaxTokens = maxTokens,
        MaxCostUsd = maxCost,
        MaxCostSource = maxCost is null ? null : "X-Max-Cost-Usd",
    };

    [Fact]
    public void No_fallback_keeps_only_the_model_asked_for()
    {
        var input = Input(model: "asked", noFallback: true);
        Assert.Null(CandidateFilters.CheckNoFallback(Make("ASKED", 0), input));
        Assert.Contains("exactly 'asked'", CandidateFilters.CheckNoFallback(Make("fallback", 1), input));
        Assert.Null(CandidateFilters.CheckNoFallback(Make("fallback", 1), Input(model: "asked")));
    }

    [Fact]
    public void Local_only_removes_providers_not_marked_local_and_names_the_source()
    {
        var input = Input(localOnly: "the X-Local-Only header");
        Assert.Null(CandidateFilters.CheckLocalOnly(Make("on-box", 0, local: true), input));
        var reason = CandidateFilters.CheckLocalOnly(Make("cloud", 1), input);
        Assert.Contains("not local", reason);
        Assert.Contains("X-Local-Only", reason);
        Assert.Null(CandidateFilters.CheckLocalOnly(Make("cloud", 1), Input()));
    }

    [Theory]
    [InlineData(ModelCapabilities.Tools, new[] { "json" }, "tools")]
    [InlineData(ModelCapabilities.Vision, new[] { "tools", "json" }, "vision")]
    [InlineData(ModelCapabilities.Json, new[] { "tools", "vision" }, "json")]
    [InlineData(ModelCapabilities.Tools | ModelCapabilities.Vision, new[] { "tools" }, "vision")]
    public void Capabilities_removes_a_model_missing_what_the_request_needs(ModelCapabilities required, string[] has, string missing)
    {
        var reason = CandidateFilters.CheckCapabilities(Make("m", 0, capabilities: has), Input(required: required));
        Assert.NotNull(reason);
        Assert.Contains(missing, reason);
    }

    [Fact]
    public void Capabilities_keeps_a_model_that_has_them_and_does_not_judge_one_that_declares_none()
    {
        var input = Input(required: ModelCapabilities.Tools | ModelCapabilities.Json);
        Assert.Null(CandidateFilters.CheckCapabilities(Make("able", 0, capabilities: ["TOOLS", "json"]), input));
        Assert.Null(CandidateFilters.CheckCapabilities(Make("undeclared", 1), input));
        Assert.Null(CandidateFilters.CheckCapabilities(Make("plain", 2, capabilities: ["json"]), Input()));
    }

    [Fact]
    public void Context_window_counts_the_prompt_and_the_max_tokens_asked_for()
    {
        var model = Make("small", 0, contextWindow: 8000, maxOutput: 1000);
        Assert.Null(CandidateFilters.CheckContextWindow(model, Input(prompt: 7000, maxTokens: 1000)));   // fits exactly
        var reason = CandidateFilters.CheckContextWindow(model, Input(prompt: 7000, maxTokens: 1001));
        Assert.Contains("8000", reason);
        Assert.Contains("1001 output tokens", reason);
    }

    [Fact]
    public void Context_window_reserves_the_models_output_allowance_when_max_tokens_is_unset()
    {
        var model = Make("small", 0, contextWindow: 8000, maxOutput: 1000);
        Assert.Null(CandidateFilters.CheckContextWindow(model, Input(prompt: 7000)));
        Assert.NotNull(CandidateFilters.CheckContextWindow(model, Input(prompt: 7001)));
    }

    [Fact]
    public void Context_window_caps_that_allowance_at_a_quarter_of_the_window()
    {
        // Configured with an output limit as large as its window: ordinary prompts still fit.
        var model = Make("local", 0, contextWindow: 8000, maxOutput: 8000);
        Assert.Null(CandidateFilters.CheckContextWindow(model, Input(prompt: 6000)));
        Assert.Contains("2000 output tokens", CandidateFilters.CheckContextWindow(model, Input(prompt: 6001)));
    }

    [Fact]
    public void Max_cost_removes_a_candidate_whose_worst_case_cost_is_over_the_limit()
    {
        Assert.Null(CandidateFilters.CheckMaxCost(Make("fits", 0, maxCost: 0.02m), Input(maxCost: 0.02m)));
        var reason = CandidateFilters.CheckMaxCost(Make("over", 1, maxCost: 0.0201m), Input(maxCost: 0.02m));
        Assert.Contains("0.0201", reason);
        Assert.Contains("X-Max-Cost-Usd", reason);
        Assert.Null(CandidateFilters.CheckMaxCost(Make("over", 1, maxCost: 5m), Input()));
    }

    [Fact]
    public void Budget_and_circuit_remove_only_the_providers_they_name()
    {
        var cloud = Make("c", 0);
        Assert.NotNull(CandidateFilters.CheckBudget(cloud, new FixedBudgets("cloud")));
        Assert.Null(CandidateFilters.CheckBudget(cloud, new FixedBudgets("other")));
        Assert.Null(CandidateFilters.CheckBudget(cloud, null));

        cloud.Circuit = CircuitState.Open;
        Assert.Contains("open", CandidateFilters.CheckCircuit(cloud));
        cloud.Circuit = CircuitState.HalfOpen;   // a half-open circuit lets a probe through
        Assert.Null(CandidateFilters.CheckCircuit(cloud));
        cloud.Circuit = null;
        Assert.Null(CandidateFilters.CheckCircuit(cloud));
    }

    private static RouteCandidate Removed(string name, string filter, string[]? capabilities = null)
    {
        var c = Make(name, 0, capabilities: capabilities);
        c.Removed = new RemovedCandidate(name, filter, "because " + filter);
        return c;
    }

    [Theory]
    [InlineData(CandidateFilters.Budget, 429, "insufficient_quota", "budget_exceeded")]
    [InlineData(CandidateFilters.CircuitOpen, 503, "api_error", "no_healthy_provider")]
    [InlineData(CandidateFilters.Unusable, 503, "api_error", "no_healthy_provider")]
    [InlineData(CandidateFilters.MaxCost, 400, "invalid_request_error", "max_cost_exceeded")]
    [InlineData(CandidateFilters.LocalOnly, 403, "permission_error", "model_not_allowed")]
    [InlineData(CandidateFilters.ContextWindow, 400, "invalid_request_error", "context_length_exceeded")]
    [InlineData(CandidateFilters.Capabilities, 400, "invalid_request_error", "unsupported_capability")]
    public void When_nothing_is_left_the_error_follows_the_reason(string filter, int status, string type, string code)
    {
        var error = CandidateFilters.NoCandidateError([Removed("only", filter)], Input(required: ModelCapabilities.Tools));
        Assert.Equal(status, error.Status);
        Assert.Equal(type, error.Type);
        Assert.Equal(code, error.Code);
        Assert.Contains("only (" + filter + "): because " + filter, error.Message);
    }

    [Fact]
    public void A_reason_the_system_could_resolve_wins_over_one_the_request_could()
    {
        // One model can't take images, the other is down: the request is fine, the provider isn't.
        var error = CandidateFilters.NoCandidateError([Removed("blind", CandidateFilters.Capabilities), Removed("down", CandidateFilters.CircuitOpen)], Input(required: ModelCapabilities.Vision));
        Assert.Equal(503, error.Status);
        Assert.Contains("blind", error.Message);
        Assert.Contains("down", error.Message);

        var budget = CandidateFilters.NoCandidateError([Removed("down", CandidateFilters.CircuitOpen), Removed("spent", CandidateFilters.Budget)], Input());
        Assert.Equal(429, budget.Status);
    }

    [Fact]
    public void A_missing_capability_names_the_parameter_that_asked_for_it()
    {
        var images = CandidateFilters.NoCandidateError([Removed("m", CandidateFilters.Capabilities, ["tools"])], Input(required: ModelCapabilities.Tools | ModelCapabilities.Vision));
        Assert.Equal("messages", images.Param);
        var json = CandidateFilters.NoCandidateError([Removed("m", CandidateFilters.Capabilities, ["tools"])], Input(required: ModelCapabilities.Json));
        Assert.Equal("response_format", json.Param);
    }
}
