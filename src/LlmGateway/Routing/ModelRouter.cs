using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using Microsoft.Extensions.Options;

namespace LlmGateway.Routing;

public interface IModelRouter
{
    RouteDecision Route(ChatRequest request, RoutingContext context);
}

/// <summary>
/// Resolves the model a client named (or <c>auto</c>) to the ordered candidates to try: the model,
/// then its Fallbacks; for <c>auto</c>, the task type's Models. Candidates that can't serve the
/// request are removed with a reason.
/// </summary>
public sealed class ModelRouter(IOptions<GatewayOptions> options, ProviderRegistry providers) : IModelRouter
{
    private readonly GatewayOptions _options = options.Value;

    public RouteDecision Route(ChatRequest request, RoutingContext context)
    {
        var removed = new List<RemovedCandidate>();
        string taskType;
        string source;
        List<string> names;

        if (string.Equals(request.Model, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase))
        {
            (taskType, source) = FindTaskType(request, context);
            names = _options.Routing.TaskTypes.TryGetValue(taskType, out var tt) && tt.Models.Count > 0
                ? [.. tt.Models]
                : [.. _options.Models.OrderBy(m => m.Value.Priority).Select(m => m.Key)];
        }
        else
        {
            if (!_options.Models.TryGetValue(request.Model, out var model))
            {
                return new RouteDecision { TaskType = "", TaskTypeSource = "none", Candidates = [], Error = ApiError.ModelNotFound(request.Model) };
            }
            (taskType, source) = FindTaskType(request, context);
            names = [request.Model, .. model.Fallbacks];
        }

        var candidates = new List<Candidate>(names.Count);
        var noFallback = context.HeaderFlag(RoutingHeaders.NoFallback);
        var localOnly = _options.Routing.LocalOnly || context.CallerLocalOnly || context.HeaderFlag(RoutingHeaders.LocalOnly);
        foreach (var name in names.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var model = _options.Models[name];
            var provider = providers.Get(model.Provider);
            if (noFallback && candidates.Count + removed.Count > 0)
            {
                removed.Add(new RemovedCandidate(name, "no-fallback", "X-No-Fallback asks for exactly the model requested"));
                continue;
            }
            if (localOnly && !provider.Options.IsLocal)
            {
                removed.Add(new RemovedCandidate(name, "local-only", $"provider '{provider.Name}' is not local"));
                continue;
            }
            if (!provider.IsUsable)
            {
                removed.Add(new RemovedCandidate(name, "unusable", $"provider '{provider.Name}': {provider.UnusableReason}"));
                continue;
            }
            candidates.Add(new Candidate(name, model, provider));
        }

        ApiError? error = null;
        if (candidates.Count == 0)
        {
            var reasons = string.Join("; ", removed.Select(r => $"{r.ModelName}: {r.Reason}"));
            error = ApiError.NoHealthyProvider($"No model can serve this request ({reasons}).");
        }
        return new RouteDecision { TaskType = taskType, TaskTypeSource = source, Candidates = candidates, Removed = removed, Error = error };
    }

    private (string TaskType, string Source) FindTaskType(ChatRequest request, RoutingContext context)
    {
        if (context.Headers.TryGetValue(RoutingHeaders.TaskType, out var header) && header.ToString() is { Length: > 0 } h)
        {
            return (h, "header");
        }
        if (request.MetadataTaskType is { Length: > 0 } m)
        {
            return (m, "metadata");
        }
        return (_options.Routing.DefaultTaskType, "default");
    }
}
