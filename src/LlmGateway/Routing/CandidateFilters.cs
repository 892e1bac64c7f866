using System.Globalization;
using System.Text;
using LlmGateway.Budgets;
using LlmGateway.Http;
using LlmGateway.Resilience;

namespace LlmGateway.Routing;

/// <summary>
/// The filters a candidate must pass, in the order the router applies them. Each returns null to keep
/// the candidate, or the reason it cannot take this request; the first reason is the one recorded.
/// </summary>
public static class CandidateFilters
{
    public const string NoFallback = "no-fallback";
    public const string LocalOnly = "local-only";
    public const string Unusable = "unusable";
    public const string Capabilities = "capabilities";
    public const string Native = "native-only";
    public const string ContextWindow = "context-window";
    public const string MaxCost = "max-cost";
    public const string Budget = "budget";
    public const string CircuitOpen = "circuit-open";

    /// <summary>X-No-Fallback on a named model: only that model.</summary>
    public static string? CheckNoFallback(RouteCandidate c, RoutingInput input) =>
        input.NoFallback && !input.IsAuto && !string.Equals(c.ModelName, input.RequestedModel, StringComparison.OrdinalIgnoreCase)
            ? $"{RoutingHeaders.NoFallback} asks for exactly '{input.RequestedModel}'"
            : null;

    public static string? CheckLocalOnly(RouteCandidate c, RoutingInput input) =>
        input.LocalOnlySource is { } source && !c.Candidate.Provider.Options.IsLocal
            ? $"provider '{c.Candidate.Provider.Name}' is not local, and {source} allows local providers only"
            : null;

    public static string? CheckUsable(RouteCandidate c) =>
        c.Candidate.Provider.IsUsable ? null : $"provider '{c.Candidate.Provider.Name}' is not usable: {c.Candidate.Provider.UnusableReason}";

    /// <summary>
    /// A model that declares no Capabilities is not checked: the gateway doesn't know, so the upstream
    /// decides. Declare them to have the router steer tools, images and JSON mode to models that take them.
    /// </summary>
    public static string? CheckCapabilities(RouteCandidate c, RoutingInput input)
    {
        // Checked even for models that declare nothing: a vector is no answer to a chat, and a chat
        // model has no embeddings endpoint.
        var isEmbeddingsModel = (c.Capabilities & ModelCapabilities.Embeddings) != 0;
        if (input.Embeddings != isEmbeddingsModel)
        {
            return input.Embeddings
                ? "it is not an embeddings model (its Capabilities do not list embeddings)"
                : "it is an embeddings model: send its requests to /v1/embeddings";
        }
        if (input.Required == ModelCapabilities.None || c.Model.Capabilities.Count == 0) return null;
        var missing = input.Required & ~c.Capabilities;
        return missing == ModelCapabilities.None ? null : $"the request needs {CapabilityNames.Describe(missing)}, which it does not list in its Capabilities";
    }

    /// <summary>
    /// A request with a field the translation to the chat format can't carry (Anthropic's <c>thinking</c>,
    /// <c>top_k</c>, a beta field) goes only to providers that take its dialect as it is; the others would
    /// have to drop the field, and the gateway never drops silently what changes the answer.
    /// </summary>
    public static string? CheckNative(RouteCandidate c, RoutingInput input) =>
        input.NativeOnly is { Untranslatable: { } why } native && c.Candidate.Provider.NativeDialect != native.Dialect
            ? $"provider '{c.Candidate.Provider.Name}' ({c.Candidate.Provider.Options.Type}) gets this request translated, and {why.Message}"
            : null;

    /// <summary>
    /// The estimated prompt and the output the request may produce must fit the context window. The
    /// output is max_tokens when the request sets it (an upstream refuses prompt + max_tokens over the
    /// window); otherwise the model's MaxOutputTokens, capped at a share of the window
    /// (<see cref="RoutingDefaults.UnsetOutputShareOfWindow"/>) so that a model configured with an
    /// output limit as large as its window still takes ordinary prompts.
    /// </summary>
    public static string? CheckContextWindow(RouteCandidate c, RoutingInput input)
    {
        var window = c.Model.ContextWindow;
        var output = input.MaxTokens ?? Math.Min(c.Model.MaxOutputTokens, (int)(window * RoutingDefaults.UnsetOutputShareOfWindow));
        var needed = (long)input.ContextTokens + output;
        return needed <= window
            ? null
            : input.Embeddings ? $"an input of ~{input.ContextTokens} tokens (estimated) is over its context window of {window}"
            : $"~{input.ContextTokens} prompt tokens (estimated) + {output} output tokens{(input.MaxTokens is null ? " (its output allowance; set max_tokens to ask for less)" : "")} is over its context window of {window}";
    }

    public static string? CheckMaxCost(RouteCandidate c, RoutingInput input) =>
        input.MaxCostUsd is { } limit && c.MaxCostUsd > limit
            ? $"its estimated cost of up to ${Usd(c.MaxCostUsd)} (the prompt and {input.MaxTokens ?? c.Model.MaxOutputTokens} output tokens) is over the ${Usd(limit)} limit of {input.MaxCostSource}"
            : null;

    public static string? CheckBudget(RouteCandidate c, IBudgetGate? budgets) =>
        budgets?.ExhaustedReason(c.Candidate.Provider.Name);

    public static string? CheckCircuit(RouteCandidate c) =>
        c.Circuit == CircuitState.Open ? $"the circuit of provider '{c.Candidate.Provider.Name}' is open" : null;

    internal static string Usd(decimal value) => value.ToString("0.########", CultureInfo.InvariantCulture);

    /// <summary>
    /// The error when every candidate was removed, from the reasons that removed them. A reason the
    /// system could resolve wins over one the request could: a spent budget (429, as the contract
    /// says) before an open circuit or a missing key (503), before a cost limit (400: the same request
    /// will never fit, so it is not a 429 that SDKs would retry; lower max_tokens or raise the limit),
    /// before local-only (403: the policy does not allow the models that could serve it), before what
    /// the request itself needs (400 naming the capability or the context window).
    /// </summary>
    public static ApiError NoCandidateError(IReadOnlyList<RouteCandidate> evaluated, RoutingInput input)
    {
        var worst = 0;
        RouteCandidate? first = null;
        foreach (var c in evaluated)
        {
            if (c.Removed is not { } r || r.Filter == NoFallback) continue;
            var rank = Rank(r.Filter);
            if (rank > worst)
            {
                worst = rank;
                first = c;
            }
        }

        var message = new StringBuilder("No model can serve this request: ");
        var n = 0;
        foreach (var c in evaluated)
        {
            if (c.Removed is not { } r || r.Filter == NoFallback) continue;
            if (n++ > 0) message.Append("; ");
            message.Append(r.ModelName).Append(" (").Append(r.Filter).Append("): ").Append(r.Reason);
        }
        if (n == 0)
        {
            message.Append(input.IsAuto
                ? "auto has no model to choose from (it never picks the built-in mock unless a task type's Models lists it; configure a real model or Gateway:Routing:TaskTypes)"
                : "the model list is empty");
        }
        message.Append('.');
        var text = message.ToString();

        return first?.Removed!.Filter switch
        {
            Budget => new ApiError(StatusCodes.Status429TooManyRequests, ErrorTypes.InsufficientQuota, ErrorCodes.BudgetExceeded, text),
            // auto with no provider key at all (a zero-config start): say what to configure.
            Unusable when input.IsAuto && worst == Rank(Unusable) && AllUnusable(evaluated) =>
                ApiError.NoHealthyProvider(text + " Set the key variable of one of these providers, or name a model (GET /v1/models); GET /admin/config shows what auto can reach."),
            CircuitOpen => ApiError.NoHealthyProvider(text) with { RetryAfterSeconds = ApiError.Seconds(SoonestProbe(evaluated)) },
            Unusable => ApiError.NoHealthyProvider(text),
            // The operator's per-request limit is a budget (429 budget_exceeded, as the contract says);
            // the client's own X-Max-Cost-Usd is a constraint of the request (400).
            MaxCost when input.MaxCostSource == RoutingInput.ConfiguredMaxCostSource =>
                new ApiError(StatusCodes.Status429TooManyRequests, ErrorTypes.InsufficientQuota, ErrorCodes.BudgetExceeded, text + " Lower max_tokens or the prompt size."),
            MaxCost => ApiError.InvalidRequest(text + " Lower max_tokens or raise the limit.", code: RoutingErrorCodes.MaxCostExceeded),
            LocalOnly => new ApiError(StatusCodes.Status403Forbidden, ErrorTypes.Permission, ErrorCodes.ModelNotAllowed, text),
            ContextWindow => ApiError.InvalidRequest(text, input.Embeddings ? "input" : "messages", "context_length_exceeded"),
            Capabilities => ApiError.InvalidRequest(text, CapabilityParam(input, first), RoutingErrorCodes.UnsupportedCapability),
            // The translation's own 400, naming the field, as when no provider could take the dialect natively.
            Native => input.NativeOnly!.Untranslatable!,
            _ => ApiError.NoHealthyProvider(text),
        };
    }

    private static bool AllUnusable(IReadOnlyList<RouteCandidate> evaluated)
    {
        foreach (var c in evaluated)
        {
            if (c.Removed is not { Filter: Unusable }) return false;
        }
        return true;
    }

    /// <summary>The soonest an open circuit among the candidates lets a probe through.</summary>
    private static TimeSpan? SoonestProbe(IReadOnlyList<RouteCandidate> evaluated)
    {
        TimeSpan? soonest = null;
        foreach (var c in evaluated)
        {
            if (c.Removed?.Filter == CircuitOpen && c.CircuitRetryIn is { } wait && (soonest is null || wait < soonest)) soonest = wait;
        }
        return soonest;
    }

    private static int Rank(string filter) => filter switch
    {
        Budget => 7,
        CircuitOpen => 6,
        Unusable => 6,
        MaxCost => 5,
        LocalOnly => 4,
        Capabilities => 3,
        Native => 3,
        ContextWindow => 2,
        _ => 1,
    };

    /// <summary>The request parameter that asked for the missing capability.</summary>
    private static string CapabilityParam(RoutingInput input, RouteCandidate removed)
    {
        var missing = input.Required & ~removed.Capabilities;
        // The wrong kind of model (chat for embeddings or the other way round): the model is the mistake.
        if (input.Embeddings != ((removed.Capabilities & ModelCapabilities.Embeddings) != 0)) return "model";
        return CapabilityParam(missing);
    }

    private static string CapabilityParam(ModelCapabilities missing) =>
        (missing & ModelCapabilities.Tools) != 0 ? "tools"
        : (missing & ModelCapabilities.Json) != 0 ? "response_format"
        : "messages";
}

/// <summary>Error codes the router adds to the contract's.</summary>
public static class RoutingErrorCodes
{
    public const string MaxCostExceeded = "max_cost_exceeded";
    public const string UnsupportedCapability = "unsupported_capability";
}
