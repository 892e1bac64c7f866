using Microsoft.Extensions.DependencyInjection;
using System.Text;
using LlmGateway.Budgets;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Providers.Mock;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Routing;

/// <summary>
/// Hand-built configurations for router tests: real options, the real provider registry and the
/// real strategies. OpenAI-type providers point at a closed loopback port and are never called
/// (routing makes no provider call); one named by a key variable that is not set is unusable.
/// </summary>
internal sealed class RoutingSetup
{
    public const string MissingKeyVariable = "LLMGATEWAY_ROUTING_TESTS_UNSET_KEY";

    public GatewayOptions Options { get; } = new();

    public RoutingSetup Provider(string name, bool local = false, bool usable = true)
    {
        Options.Providers[name] = new ProviderOptions
        {
            Type = ProviderTypes.OpenAi,
            BaseUrl = "http://127.0.0.1:9/v1",
            Local = local,
            ApiKeyEnv = usable ? null : MissingKeyVariable,
        };
        return this;
    }

    public RoutingSetup Model(string name, string provider, int priority = 100, decimal input = 0.001m, decimal output = 0.002m,
        int contextWindow = 128_000, int maxOutput = 4096, double quality = 0.5, string[]? capabilities = null, string[]? fallbacks = null)
    {
        Options.Models[name] = new ModelOptions
        {
            Provider = provider,
            Priority = priority,
            CostPer1kInput = input,
            CostPer1kOutput = output,
            ContextWindow = contextWindow,
            MaxOutputTokens = maxOutput,
            Quality = quality,
            Capabilities = [.. capabilities ?? []],
            Fallbacks = [.. fallbacks ?? []],
        };
        return this;
    }

    public RoutingSetup TaskType(string name, string[] models, string? strategy = null, string[]? patterns = null, int priority = 100)
    {
        Options.Routing.TaskTypes[name] = new TaskTypeOptions { Models = [.. models], Strategy = strategy, Patterns = [.. patterns ?? []], Priority = priority };
        return this;
    }

    public RoutingSetup Configure(Action<GatewayOptions> configure)
    {
        configure(Options);
        return this;
    }

    public ModelRouter Build(IProviderHealth? health = null, IBudgetGate? budgets = null, LatencyTracker? latency = null)
    {
        // A test configuration the gateway itself would refuse proves nothing.
        Assert.Empty(GatewayOptionsValidator.Validate(Options));
        var options = Microsoft.Extensions.Options.Options.Create(Options);
        // Every provider type the gateway registers, so shipped settings with any type build here too.
        var registry = new Microsoft.Extensions.DependencyInjection.ServiceCollection()
            .AddSingleton(TimeProvider.System)
            .AddSingleton(options)
            .AddProviders()
            .BuildServiceProvider()
            .GetRequiredService<ProviderRegistry>();
        IRoutingStrategy[] strategies = [new PriorityStrategy(), new CostStrategy(), new LatencyStrategy(), new BalancedStrategy(Options.Routing.Weights), new OrderedStrategy()];
        return new ModelRouter(options, registry, strategies, latency ?? new LatencyTracker(options), NullLogger<ModelRouter>.Instance, health, budgets);
    }

    public static ChatRequest Request(string json)
    {
        var request = ChatRequest.TryParse(Encoding.UTF8.GetBytes(json), out var error);
        Assert.Null(error);
        return request!;
    }

    public static ChatRequest Ask(string model, string text = "hello", string extra = "") =>
        Request($$"""{"model":"{{model}}","messages":[{"role":"user","content":{{System.Text.Json.JsonSerializer.Serialize(text)}}}]{{extra}}}""");

    public static RoutingContext Headers(params (string Name, string Value)[] headers)
    {
        var dictionary = new HeaderDictionary();
        foreach (var (name, value) in headers) dictionary[name] = value;
        return new RoutingContext(LlmGateway.Http.GatewayHeaders.ReadHints(dictionary, out _));
    }

    public static string[] Order(RouteDecision d) => [.. d.Candidates.Select(c => c.ModelName)];
}

/// <summary>Provider health as the resilience capability would report it: a boundary fake.</summary>
internal sealed class FixedHealth(params string[] open) : IProviderHealth
{
    public CircuitState GetCircuitState(string provider, string upstreamModel) => open.Contains(provider, StringComparer.OrdinalIgnoreCase) ? CircuitState.Open : CircuitState.Closed;
}

/// <summary>Budgets as the store capability would report them: a boundary fake.</summary>
internal sealed class FixedBudgets(params string[] exhausted) : IBudgetGate
{
    public bool IsProviderExhausted(string provider) => exhausted.Contains(provider, StringComparer.OrdinalIgnoreCase);
}

/// <summary>Hand-built candidates for strategy and filter tests.</summary>
internal static class Candidates
{
    private static readonly IChatProvider s_cloud = new MockProvider("cloud", new ProviderOptions { Type = ProviderTypes.Mock, Local = false }, TimeProvider.System);
    private static readonly IChatProvider s_local = new MockProvider("local", new ProviderOptions { Type = ProviderTypes.Mock, Local = true }, TimeProvider.System);

    public static RouteCandidate Make(string name, int index, int priority = 100, decimal cost = 0m, double? ttftMs = null, double? durationMs = null,
        double quality = 0.5, string[]? capabilities = null, bool local = false, int contextWindow = 128_000, int maxOutput = 4096, decimal maxCost = 0m)
    {
        var model = new ModelOptions
        {
            Provider = local ? "local" : "cloud",
            Priority = priority,
            Quality = quality,
            Capabilities = [.. capabilities ?? []],
            ContextWindow = contextWindow,
            MaxOutputTokens = maxOutput,
        };
        return new RouteCandidate(new Candidate(name, model, local ? s_local : s_cloud), index)
        {
            EstimatedCostUsd = cost,
            MaxCostUsd = maxCost,
            Latency = new LatencyEstimate(ttftMs, durationMs, ttftMs is null && durationMs is null ? 0 : 1),
        };
    }

    public static string[] Names(List<RouteCandidate> list) => [.. list.Select(c => c.ModelName)];
}
