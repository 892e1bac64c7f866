using LlmGateway.Budgets;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Routing;

public interface IModelRouter
{
    RouteDecision Route(GatewayRequest request, RoutingContext context);

    /// <summary>Each task type with the models <c>auto</c> considers for it, before any per-request filter.</summary>
    IReadOnlyList<TaskTypeRoute> TaskTypes { get; }
}

/// <summary>A task type's models as the router resolved them (every real chat model when it lists none).</summary>
public sealed record TaskTypeRoute(string TaskType, IReadOnlyList<Candidate> Models, string Strategy, bool IsDefault);

/// <summary>
/// Resolves the model a client named (or <c>auto</c>) to the ordered candidates to try.
/// <list type="number">
/// <item>The task type (<see cref="TaskTypeClassifier"/>).</item>
/// <item>The candidates: for <c>auto</c> the task type's Models (every model when it lists none), for
/// a named model that model, then its Fallbacks.</item>
/// <item>The filters (<see cref="CandidateFilters"/>), each removal recorded with its reason.</item>
/// <item>The order: for <c>auto</c> the task type's strategy, else the global one; a named model keeps
/// the client's choice first and its Fallbacks in the order the operator wrote them.</item>
/// </list>
/// Everything that depends only on configuration is built once here; a request costs a few small
/// objects and no provider call, which is also what lets the explain endpoint run it safely.
/// </summary>
public sealed class ModelRouter : IModelRouter
{
    private readonly GatewayOptions _options;
    private readonly Dictionary<string, Candidate[]> _chains = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, (Candidate[] Models, IRoutingStrategy Strategy)> _taskTypes = new(StringComparer.OrdinalIgnoreCase);
    private readonly Candidate[] _allModels;
    private readonly Candidate[] _embeddingModels;
    private readonly (Candidate[] Models, IRoutingStrategy Strategy)? _embeddingsTaskType;
    private readonly IRoutingStrategy _strategy;
    private readonly TaskTypeClassifier _classifier;
    private readonly LatencyTracker _latency;
    private readonly IProviderHealth? _health;
    private readonly IBudgetGate? _budgets;

    /// <summary>Each configured candidate list's summary line (see <see cref="SharedRouteSummary"/>); filled at start-up, then only read.</summary>
    private readonly Dictionary<Candidate[], SharedRouteSummary> _summaries = new(ReferenceEqualityComparer.Instance);

    public ModelRouter(
        IOptions<GatewayOptions> options,
        ProviderRegistry providers,
        IEnumerable<IRoutingStrategy> strategies,
        LatencyTracker latency,
        ILogger<ModelRouter> logger,
        IProviderHealth? health = null,
        IBudgetGate? budgets = null)
    {
        _options = options.Value;
        _latency = latency;
        _health = health;
        _budgets = budgets;

        var byName = new Dictionary<string, IRoutingStrategy>(StringComparer.OrdinalIgnoreCase);
        foreach (var s in strategies) byName[s.Name] = s;
        _strategy = Strategy(byName, _options.Routing.Strategy);

        var models = new Dictionary<string, Candidate>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, model) in _options.Models) models[name] = new Candidate(name, model, providers.Get(model.Provider));
        // auto picks among models of the request's kind: chat models for chat, embeddings models for embeddings.
        // "Every model" leaves out the built-in mock: a fake answer must never stand in for a real one, so
        // a mock model is an auto choice only where the operator lists it in a task type's Models.
        var all = new List<Candidate>(models.Values);
        all.Sort(static (a, b) => a.Model.Priority.CompareTo(b.Model.Priority));
        _allModels = [.. all.Where(static c => !IsEmbeddingsModel(c) && !IsMock(c))];
        _embeddingModels = [.. all.Where(static c => IsEmbeddingsModel(c) && !IsMock(c))];

        foreach (var (name, candidate) in models)
        {
            var chain = new List<Candidate> { candidate };
            foreach (var f in candidate.Model.Fallbacks) AddOnce(chain, models[f]);
            _chains[name] = [.. chain];
        }
        foreach (var (name, taskType) in _options.Routing.TaskTypes)
        {
            var list = new List<Candidate>();
            foreach (var m in taskType.Models) AddOnce(list, models[m]);
            var strategy = taskType.Strategy is { Length: > 0 } s ? Strategy(byName, s) : _strategy;
            _taskTypes[name] = (list.Count > 0 ? [.. list] : _allModels, strategy);
        }
        // An "embeddings" task type, when configured, is how an operator orders auto embeddings requests.
        if (_taskTypes.TryGetValue(EmbeddingsTaskType, out var embeddings))
        {
            _embeddingsTaskType = (embeddings.Models == _allModels ? _embeddingModels : embeddings.Models, embeddings.Strategy);
        }
        _classifier = new TaskTypeClassifier(_options.Routing, RoutingDefaults.PatternMatchTimeout, logger);

        var routes = new List<TaskTypeRoute>();
        foreach (var (name, route) in _taskTypes)
        {
            var isDefault = string.Equals(name, _options.Routing.DefaultTaskType, StringComparison.OrdinalIgnoreCase);
            routes.Add(new TaskTypeRoute(name, name == EmbeddingsTaskType && _embeddingsTaskType is { } e ? e.Models : route.Models, route.Strategy.Name, isDefault));
        }
        if (!_taskTypes.ContainsKey(_options.Routing.DefaultTaskType))
        {
            // No task type by the default's name: auto requests that match no pattern go to every real model.
            routes.Add(new TaskTypeRoute(_options.Routing.DefaultTaskType, _allModels, _strategy.Name, IsDefault: true));
        }
        routes.Sort(static (a, b) => string.CompareOrdinal(a.TaskType, b.TaskType));
        TaskTypes = routes;

        foreach (var list in _chains.Values) _summaries.TryAdd(list, new SharedRouteSummary());
        foreach (var (list, _) in _taskTypes.Values) _summaries.TryAdd(list, new SharedRouteSummary());
        _summaries.TryAdd(_allModels, new SharedRouteSummary());
        _summaries.TryAdd(_embeddingModels, new SharedRouteSummary());
        if (_embeddingsTaskType is { } embeddingsRoute) _summaries.TryAdd(embeddingsRoute.Models, new SharedRouteSummary());
    }

    public IReadOnlyList<TaskTypeRoute> TaskTypes { get; }

    /// <summary>The task type of every embeddings request (metrics, logs and the ledger group by it).</summary>
    public const string EmbeddingsTaskType = "embeddings";

    private static bool IsEmbeddingsModel(Candidate c) => (c.Capabilities & ModelCapabilities.Embeddings) != 0;

    private static bool IsMock(Candidate c) => string.Equals(c.Provider.Options.Type, ProviderTypes.Mock, StringComparison.OrdinalIgnoreCase);

    private static IRoutingStrategy Strategy(Dictionary<string, IRoutingStrategy> byName, string name) =>
        byName.TryGetValue(name, out var s) ? s : throw new InvalidOperationException($"Routing strategy '{name}' is not registered.");

    private static void AddOnce(List<Candidate> list, Candidate candidate)
    {
        foreach (var c in list)
        {
            if (ReferenceEquals(c, candidate)) return;
        }
        list.Add(candidate);
    }

    public RouteDecision Route(GatewayRequest request, RoutingContext context)
    {
        var isAuto = string.Equals(request.Model, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase);
        var embeddings = request.Operation == RequestOperation.Embeddings;
        var task = embeddings
            ? new TaskTypeMatch(EmbeddingsTaskType, TaskTypeSources.Operation)
            : _classifier.Classify(request, context.Hints.TaskType, usePatterns: isAuto);

        // :: Step 1: the routing hints; a malformed one is the client's mistake, not a silent default
        // (a typo in X-Local-Only must not send data to a cloud provider).
        var input = ReadInput(request, context, isAuto, out var headerError);
        if (headerError is not null)
        {
            return new RouteDecision { TaskType = task.TaskType, TaskTypeSource = task.Source, TaskTypeDetail = task.Detail, Candidates = [], Error = headerError };
        }

        // :: Step 2: the candidates.
        Candidate[] list;
        IRoutingStrategy? strategy = null;
        if (isAuto && embeddings)
        {
            (list, strategy) = _embeddingsTaskType ?? (_embeddingModels, _strategy);
        }
        else if (isAuto)
        {
            (list, strategy) = _taskTypes.TryGetValue(task.TaskType, out var route) ? route : (_allModels, _strategy);
        }
        else if (!_chains.TryGetValue(request.Model, out list!))
        {
            return new RouteDecision { TaskType = task.TaskType, TaskTypeSource = task.Source, TaskTypeDetail = task.Detail, Candidates = [], Input = input, Error = ApiError.ModelNotFound(request.Model) };
        }

        // :: Step 3: estimates and filters.
        var kept = new List<RouteCandidate>(list.Length);
        List<RouteCandidate>? dropped = null;
        for (var i = 0; i < list.Length; i++)
        {
            var c = Evaluate(list[i], i, input);
            var reason = Filter(c, input, out var filter);
            if (reason is null)
            {
                kept.Add(c);
            }
            else
            {
                c.Removed = new RemovedCandidate(c.ModelName, filter!, reason);
                (dropped ??= []).Add(c);
            }
        }

        // :: Step 4: the order. X-No-Fallback on auto keeps only the strategy's first choice.
        if (strategy is not null) strategy.Order(kept, new StrategyContext(input.Stream));
        if (isAuto && input.NoFallback && kept.Count > 1)
        {
            for (var i = 1; i < kept.Count; i++)
            {
                kept[i].Removed = new RemovedCandidate(kept[i].ModelName, CandidateFilters.NoFallback, $"{RoutingHeaders.NoFallback}: only the first choice, '{kept[0].ModelName}', is tried");
                (dropped ??= []).Add(kept[i]);
            }
            kept.RemoveRange(1, kept.Count - 1);
        }

        var candidates = InOrder(kept, list);
        var evaluated = kept;
        RemovedCandidate[] removed = [];
        if (dropped is not null)
        {
            removed = new RemovedCandidate[dropped.Count];
            for (var i = 0; i < dropped.Count; i++) removed[i] = dropped[i].Removed!;
            evaluated = [.. kept, .. dropped];
        }

        return new RouteDecision
        {
            TaskType = task.TaskType,
            TaskTypeSource = task.Source,
            TaskTypeDetail = task.Detail,
            Candidates = candidates,
            Removed = removed,
            Strategy = strategy?.Name ?? RoutingStrategies.Fallbacks,
            ScoreMeaning = strategy?.ScoreMeaning ?? "none: the model asked for is tried first, then its Fallbacks in the configured order",
            Evaluated = evaluated,
            Input = input,
            Error = candidates.Length == 0 ? CandidateFilters.NoCandidateError(evaluated, input) : null,
            SharedSummary = dropped is null && candidates.Length > 0 && ReferenceEquals(candidates, list) ? _summaries.GetValueOrDefault(list) : null,
        };
    }

    /// <summary>
    /// The candidates kept, in order. When that is the configured list itself (nothing removed, the order unchanged:
    /// every request for a named model whose candidates are all usable), the list, built once, is shared rather than
    /// copied per request; nothing writes to a decision's candidates.
    /// </summary>
    private static Candidate[] InOrder(List<RouteCandidate> kept, Candidate[] configured)
    {
        var same = kept.Count == configured.Length;
        for (var i = 0; same && i < kept.Count; i++) same = ReferenceEquals(kept[i].Candidate, configured[i]);
        if (same) return configured;
        var candidates = new Candidate[kept.Count];
        for (var i = 0; i < kept.Count; i++) candidates[i] = kept[i].Candidate;
        return candidates;
    }

    /// <summary>What the strategy and the explain output show of a candidate: estimates from configuration and traffic.</summary>
    private RouteCandidate Evaluate(Candidate candidate, int index, RoutingInput input)
    {
        var model = candidate.Model;
        var expectedOutput = Math.Min(input.MaxTokens ?? RoutingDefaults.TypicalOutputTokens, model.MaxOutputTokens);
        var circuit = _health?.GetCircuit(candidate.Provider.Name, candidate.UpstreamModel);
        return new RouteCandidate(candidate, index)
        {
            EstimatedCostUsd = Pricing.CostUsd(model, new TokenUsage(input.PromptTokens, expectedOutput)),
            MaxCostUsd = Pricing.MaxCostUsd(model, input.PromptTokens, input.MaxTokens),
            Latency = _latency.Get(candidate.ModelName),
            Circuit = circuit?.State,
            CircuitRetryIn = circuit?.RemainingBreak,
        };
    }

    /// <summary>The filters in order, cheapest and most certain first; the first that objects names the reason.</summary>
    private string? Filter(RouteCandidate c, RoutingInput input, out string? filter)
    {
        string? reason;
        if ((reason = CandidateFilters.CheckNoFallback(c, input)) is not null) { filter = CandidateFilters.NoFallback; return reason; }
        if ((reason = CandidateFilters.CheckLocalOnly(c, input)) is not null) { filter = CandidateFilters.LocalOnly; return reason; }
        if ((reason = CandidateFilters.CheckUsable(c)) is not null) { filter = CandidateFilters.Unusable; return reason; }
        if ((reason = CandidateFilters.CheckCapabilities(c, input)) is not null) { filter = CandidateFilters.Capabilities; return reason; }
        if ((reason = CandidateFilters.CheckNative(c, input)) is not null) { filter = CandidateFilters.Native; return reason; }
        if ((reason = CandidateFilters.CheckContextWindow(c, input)) is not null) { filter = CandidateFilters.ContextWindow; return reason; }
        if ((reason = CandidateFilters.CheckMaxCost(c, input)) is not null) { filter = CandidateFilters.MaxCost; return reason; }
        if ((reason = CandidateFilters.CheckBudget(c, _budgets)) is not null) { filter = CandidateFilters.Budget; return reason; }
        if ((reason = CandidateFilters.CheckCircuit(c)) is not null) { filter = CandidateFilters.CircuitOpen; return reason; }
        filter = null;
        return null;
    }

    private RoutingInput ReadInput(GatewayRequest request, RoutingContext context, bool isAuto, out ApiError? error)
    {
        var hints = context.Hints;
        error = hints.RoutingError;

        string? localOnly = _options.Routing.LocalOnly ? "Gateway:Routing:LocalOnly"
            : context.CallerLocalOnly ? "the caller's key"
            : hints.LocalOnly ? $"the {RoutingHeaders.LocalOnly} header"
            : null;

        decimal? maxCost = null;
        string? maxCostSource = null;
        if (_options.Budgets.MaxCostPerRequestUsd > 0)
        {
            maxCost = _options.Budgets.MaxCostPerRequestUsd;
            maxCostSource = RoutingInput.ConfiguredMaxCostSource;
        }
        if (hints.MaxCostUsd is { } limit && (maxCost is null || limit < maxCost))
        {
            // The client may tighten the operator's limit, never loosen it.
            maxCost = limit;
            maxCostSource = RoutingHeaders.MaxCostUsd;
        }

        var required = ModelCapabilities.None;
        if (request is ChatRequest chat)
        {
            if (chat.HasTools) required |= ModelCapabilities.Tools;
            if (chat.HasImages) required |= ModelCapabilities.Vision;
            if (chat.ResponseFormatType is "json_object" or "json_schema") required |= ModelCapabilities.Json;
        }
        else if (request.Operation == RequestOperation.Embeddings)
        {
            required = ModelCapabilities.Embeddings;
        }

        return new RoutingInput
        {
            RequestedModel = request.Model,
            IsAuto = isAuto,
            Stream = request.Stream,
            NoFallback = hints.NoFallback,
            NativeOnly = request.Native is { Untranslatable: not null } native ? native : null,
            LocalOnlySource = localOnly,
            Required = required,
            PromptTokens = request.EstimatedPromptTokens,
            ContextTokens = request.ContextTokens,
            MaxTokens = request.MaxTokens,
            MaxCostUsd = maxCost,
            MaxCostSource = maxCostSource,
        };
    }
}
