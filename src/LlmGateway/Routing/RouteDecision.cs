using System.Globalization;
using System.Runtime.CompilerServices;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Resilience;

namespace LlmGateway.Routing;

/// <summary>A model the request may be sent to, with the provider that serves it. Built once per model at start-up.</summary>
public sealed record Candidate(string ModelName, ModelOptions Model, IChatProvider Provider)
{
    /// <summary>The model's declared Capabilities, parsed once rather than on every request that weighs it.</summary>
    public ModelCapabilities Capabilities { get; } = CapabilityNames.Parse(Model.Capabilities);

    /// <summary>The model name the upstream knows; with the provider, it names the deployment whose health is kept.</summary>
    public string UpstreamModel => Model.UpstreamModel ?? ModelName;
}

/// <summary>A candidate a filter removed, and why: the explain endpoint and the log line show these.</summary>
public sealed record RemovedCandidate(string ModelName, string Filter, string Reason);

/// <summary>Where a request goes: its task type and the candidates in the order they are tried.</summary>
public sealed class RouteDecision
{
    private string? _summary;

    public required string TaskType { get; init; }

    /// <summary>How the task type was found: header, metadata, pattern or default.</summary>
    public required string TaskTypeSource { get; init; }

    /// <summary>Why, in words: which pattern matched, or that a header named an unknown task type.</summary>
    public string? TaskTypeDetail { get; init; }

    /// <summary>The candidates left after the filters, in the order they are tried.</summary>
    public required IReadOnlyList<Candidate> Candidates { get; init; }
    public IReadOnlyList<RemovedCandidate> Removed { get; init; } = [];

    /// <summary>The strategy that ordered an <c>auto</c> request, or <see cref="RoutingStrategies.Fallbacks"/> for a named model.</summary>
    public string Strategy { get; init; } = RoutingStrategies.Priority;

    /// <summary>What the candidates' scores mean under <see cref="Strategy"/>.</summary>
    public string ScoreMeaning { get; init; } = "";

    /// <summary>Every candidate considered, with its estimates and score: the kept ones in order, then the removed ones.</summary>
    public IReadOnlyList<RouteCandidate> Evaluated { get; init; } = [];

    /// <summary>The facts the filters worked from (limits, local-only, required capabilities).</summary>
    public RoutingInput? Input { get; init; }

    /// <summary>Set when no candidate is left: the error the client gets.</summary>
    public ApiError? Error { get; init; }

    /// <summary>
    /// Set by the router when the candidates are a configured list as it is (nothing removed, the order unchanged): the
    /// line is then the same as the last such decision's with the same strategy and task-type source, and is reused.
    /// </summary>
    internal SharedRouteSummary? SharedSummary { get; init; }

    /// <summary>
    /// The decision in one short line for the request log: strategy and order, what was removed and
    /// why, and where the task type came from. Built on first use.
    /// </summary>
    public string Summary => _summary ??= SharedSummary?.For(this) ?? BuildSummary();

    internal string BuildSummary()
    {
        // Rejected before any candidate was weighed (a malformed routing header, an unknown model).
        if (Error is not null && Evaluated.Count == 0) return "no route: " + Error.Message;

        // Built on the stack: the log line's only copy is the string itself (a StringBuilder's chunks were a second one).
        var s = new DefaultInterpolatedStringHandler(0, 0, CultureInfo.InvariantCulture, stackalloc char[256]);
        s.AppendFormatted(Strategy);
        s.AppendLiteral(": ");
        for (var i = 0; i < Candidates.Count; i++)
        {
            if (i > 0) s.AppendLiteral(">");
            s.AppendFormatted(Candidates[i].ModelName);
        }
        if (Candidates.Count == 0) s.AppendLiteral("none left");
        if (Removed.Count > 0)
        {
            s.AppendLiteral(" | removed ");
            for (var i = 0; i < Removed.Count; i++)
            {
                if (i > 0) s.AppendLiteral(", ");
                s.AppendFormatted(Removed[i].ModelName);
                s.AppendLiteral(" (");
                s.AppendFormatted(Removed[i].Filter);
                s.AppendLiteral(")");
            }
        }
        s.AppendLiteral(" | task type by ");
        s.AppendFormatted(TaskTypeSource);
        return s.ToStringAndClear();
    }
}

/// <summary>
/// The summary line of one configured candidate list, kept from the last decision that used the list unchanged. The
/// request log reads a route's summary on every request, and for a named model it is the same text every time: built
/// per request, it was a new string each time (and the log compared it, character by character, with the last line's).
/// </summary>
internal sealed class SharedRouteSummary
{
    private sealed record Entry(string Strategy, string TaskTypeSource, string Summary);

    private Entry? _last;

    /// <summary>The summary of <paramref name="decision"/>, whose candidates are this list, in order, none removed.</summary>
    public string For(RouteDecision decision)
    {
        // One object read once: a concurrent request may replace it, never tear it.
        var last = _last;
        if (last is not null && string.Equals(last.Strategy, decision.Strategy, StringComparison.Ordinal)
            && string.Equals(last.TaskTypeSource, decision.TaskTypeSource, StringComparison.Ordinal))
        {
            return last.Summary;
        }
        var summary = decision.BuildSummary();
        _last = new Entry(decision.Strategy, decision.TaskTypeSource, summary);
        return summary;
    }
}

/// <summary>What the router needs to know of the caller beyond the body: the caller's hints, and whether its key is local-only.</summary>
public readonly record struct RoutingContext(RequestHints Hints, bool CallerLocalOnly = false);

/// <summary>The request headers the OpenAI-style ingresses read the routing hints from.</summary>
public static class RoutingHeaders
{
    public const string TaskType = "X-Task-Type";
    public const string LocalOnly = "X-Local-Only";
    public const string NoFallback = "X-No-Fallback";
    public const string MaxCostUsd = "X-Max-Cost-Usd";
}

/// <summary>What a request needs of a model, as far as routing can tell before the call.</summary>
[Flags]
public enum ModelCapabilities
{
    None = 0,
    Tools = 1,
    Vision = 2,
    Json = 4,

    /// <summary>An embeddings model: it takes /v1/embeddings requests and no chat requests.</summary>
    Embeddings = 8,
}

/// <summary>The capability names used in <c>Gateway:Models:*:Capabilities</c>.</summary>
public static class CapabilityNames
{
    public const string Tools = "tools";
    public const string Vision = "vision";
    public const string Json = "json";
    public const string Embeddings = "embeddings";

    public static ModelCapabilities Parse(List<string> names)
    {
        var caps = ModelCapabilities.None;
        foreach (var name in names)
        {
            if (string.Equals(name, Tools, StringComparison.OrdinalIgnoreCase)) caps |= ModelCapabilities.Tools;
            else if (string.Equals(name, Vision, StringComparison.OrdinalIgnoreCase)) caps |= ModelCapabilities.Vision;
            else if (string.Equals(name, Json, StringComparison.OrdinalIgnoreCase)) caps |= ModelCapabilities.Json;
            else if (string.Equals(name, Embeddings, StringComparison.OrdinalIgnoreCase)) caps |= ModelCapabilities.Embeddings;
        }
        return caps;
    }

    public static string Describe(ModelCapabilities caps)
    {
        if (caps == ModelCapabilities.None) return "";
        var parts = new List<string>(3);
        if ((caps & ModelCapabilities.Tools) != 0) parts.Add(Tools);
        if ((caps & ModelCapabilities.Vision) != 0) parts.Add(Vision);
        if ((caps & ModelCapabilities.Json) != 0) parts.Add(Json);
        if ((caps & ModelCapabilities.Embeddings) != 0) parts.Add(Embeddings);
        return string.Join(", ", parts);
    }
}

/// <summary>
/// The per-request facts every filter reads, worked out once: what the request needs and which
/// limits apply. Also shown by the explain endpoint.
/// </summary>
public sealed class RoutingInput
{
    public required string RequestedModel { get; init; }
    public bool IsAuto { get; init; }
    public bool Stream { get; init; }
    public bool NoFallback { get; init; }

    /// <summary>
    /// The client's own request when the translation can't carry all of it (a field only its dialect
    /// knows): only providers that take that dialect natively may serve it. Null otherwise.
    /// </summary>
    public Pipeline.NativeBody? NativeOnly { get; init; }

    /// <summary>Why only local providers may be used (the global setting, the header, the caller's key), or null.</summary>
    public string? LocalOnlySource { get; init; }
    public ModelCapabilities Required { get; init; }
    public bool Embeddings => (Required & ModelCapabilities.Embeddings) != 0;
    public int PromptTokens { get; init; }

    /// <summary>What must fit one context window with the output: the prompt (the default), or an embeddings request's largest input.</summary>
    public int ContextTokens
    {
        get => _contextTokens ?? PromptTokens;
        init => _contextTokens = value;
    }
    private readonly int? _contextTokens;
    public int? MaxTokens { get; init; }

    /// <summary>The tighter of <c>X-Max-Cost-Usd</c> and <c>Budgets:MaxCostPerRequestUsd</c>, or null for no limit.</summary>
    public decimal? MaxCostUsd { get; init; }
    public string? MaxCostSource { get; init; }

    public const string ConfiguredMaxCostSource = "Gateway:Budgets:MaxCostPerRequestUsd (the gateway's limit per request)";
}

/// <summary>Observed latency of one model, exponentially weighted; null where nothing was observed yet.</summary>
public readonly record struct LatencyEstimate(double? TimeToFirstTokenMs, double? DurationMs, long Samples)
{
    /// <summary>What a client of this request waits for: the first token of a stream, the whole answer otherwise.</summary>
    public double? For(bool stream) => stream ? TimeToFirstTokenMs ?? DurationMs : DurationMs;
}

/// <summary>
/// One candidate as the router weighed it for one request: its estimates, the strategy's score, and
/// the filter that removed it, if one did. Strategies order lists of these.
/// </summary>
public sealed class RouteCandidate(Candidate candidate, int listIndex)
{
    public Candidate Candidate { get; } = candidate;
    public string ModelName => Candidate.ModelName;
    public ModelOptions Model => Candidate.Model;

    /// <summary>Position in the configured list (task type Models, or the model then its Fallbacks): the last tie-break.</summary>
    public int ListIndex { get; } = listIndex;
    public ModelCapabilities Capabilities => Candidate.Capabilities;

    /// <summary>Cost of the prompt and a typical answer (see <see cref="RoutingDefaults.TypicalOutputTokens"/>): what the cost strategy ranks by.</summary>
    public decimal EstimatedCostUsd { get; set; }

    /// <summary>Cost of the prompt and the full output allowance: what cost limits are checked against.</summary>
    public decimal MaxCostUsd { get; set; }
    public LatencyEstimate Latency { get; set; }
    public CircuitState? Circuit { get; set; }

    /// <summary>For an open circuit: how long until it lets a probe through (the Retry-After of a 503 when every circuit is open).</summary>
    public TimeSpan? CircuitRetryIn { get; set; }

    /// <summary>The ordering strategy's score (its meaning depends on the strategy); null when none was applied.</summary>
    public double? Score { get; set; }
    public RemovedCandidate? Removed { get; set; }
}
