using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;

namespace LlmGateway.Routing;

/// <summary>A model the request may be sent to, with the provider that serves it.</summary>
public sealed record Candidate(string ModelName, ModelOptions Model, IChatProvider Provider);

/// <summary>A candidate a filter removed, and why: the explain endpoint and the log line show these.</summary>
public sealed record RemovedCandidate(string ModelName, string Filter, string Reason);

/// <summary>Where a request goes: its task type and the candidates in the order they are tried.</summary>
public sealed class RouteDecision
{
    public required string TaskType { get; init; }

    /// <summary>How the task type was found: header, metadata, pattern, default, or none (a concrete model).</summary>
    public required string TaskTypeSource { get; init; }
    public required IReadOnlyList<Candidate> Candidates { get; init; }
    public IReadOnlyList<RemovedCandidate> Removed { get; init; } = [];
    public string Strategy { get; init; } = "priority";

    /// <summary>Set when no candidate is left: the error the client gets.</summary>
    public ApiError? Error { get; init; }
}

/// <summary>What the router needs to know of the caller beyond the body.</summary>
public readonly record struct RoutingContext(IHeaderDictionary Headers, bool CallerLocalOnly = false)
{
    public bool HeaderFlag(string name) =>
        Headers.TryGetValue(name, out var v) && string.Equals(v.ToString(), "true", StringComparison.OrdinalIgnoreCase);
}

public static class RoutingHeaders
{
    public const string TaskType = "X-Task-Type";
    public const string LocalOnly = "X-Local-Only";
    public const string NoFallback = "X-No-Fallback";
    public const string MaxCostUsd = "X-Max-Cost-Usd";
}
