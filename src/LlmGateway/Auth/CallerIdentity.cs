using LlmGateway.Configuration;
using LlmGateway.Routing;

namespace LlmGateway.Auth;

/// <summary>
/// Who is calling, as the gateway key says: set on the request's features by the auth middleware
/// (Gateway:Auth:Mode=keys) and read by the chat pipeline for the ledger's key id, the model
/// allow-list, local-only routing, RPM/TPM, and by budgets for the <c>key:&lt;id&gt;</c> scope.
/// Never holds the secret.
/// </summary>
public sealed class CallerIdentity
{
    public CallerIdentity(string keyId, ModelPatterns models, bool localOnly, int rpm, int tpm, decimal dailyUsd, decimal monthlyUsd)
    {
        KeyId = keyId;
        Models = models;
        LocalOnly = localOnly;
        Rpm = rpm;
        Tpm = tpm;
        DailyUsd = dailyUsd;
        MonthlyUsd = monthlyUsd;
        BudgetScope = "key:" + keyId;
        RequestsLimitKey = "rpm:" + keyId;
        TokensLimitKey = "tpm:" + keyId;
    }

    public string KeyId { get; }
    public ModelPatterns Models { get; }
    public bool LocalOnly { get; }

    /// <summary>Requests per minute; 0 = unlimited.</summary>
    public int Rpm { get; }

    /// <summary>Tokens (prompt + completion) per minute; 0 = unlimited.</summary>
    public int Tpm { get; }

    /// <summary>Budgets of the key's scope; 0 = none. Enforced by Budgets/ under <see cref="BudgetScope"/>.</summary>
    public decimal DailyUsd { get; }
    public decimal MonthlyUsd { get; }

    /// <summary>The budget scope name of this key: <c>key:&lt;id&gt;</c>.</summary>
    public string BudgetScope { get; }

    /// <summary>Names of this key's limits in the <see cref="IRateLimiter"/>, built once rather than per request.</summary>
    public string RequestsLimitKey { get; }
    public string TokensLimitKey { get; }

    /// <summary>The caller of this request, or null when Gateway:Auth:Mode is none.</summary>
    public static CallerIdentity? Of(HttpContext http) => http.Features.Get<CallerIdentity>();

    public static CallerIdentity FromConfig(KeyOptions k) =>
        new(k.Id, k.Models.Count == 0 ? ModelPatterns.All : new ModelPatterns(k.Models), k.LocalOnly, k.Rpm, k.Tpm, k.DailyUsd, k.MonthlyUsd);

    public static CallerIdentity FromStored(StoredKey k) =>
        new(k.Id, new ModelPatterns(k.Models), k.LocalOnly, k.Rpm, k.Tpm, k.DailyUsd, k.MonthlyUsd);

    /// <summary>
    /// May the client ask for this model? <c>auto</c> always may: the router's candidates are filtered
    /// instead (<see cref="FilterCandidates"/>), and only an empty result is refused.
    /// </summary>
    public bool MayRequest(string model) =>
        string.Equals(model, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase) || Models.Allows(model);

    /// <summary>
    /// Drops the candidates (fallbacks, task-type models) this key may not use, noting each in
    /// <see cref="RouteDecision.Removed"/>; when none is left, the decision carries a 403.
    /// Allocates only when something is dropped.
    /// </summary>
    public RouteDecision FilterCandidates(RouteDecision route)
    {
        if (route.Error is not null) return route;
        var candidates = route.Candidates;
        var firstDenied = -1;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!Models.Allows(candidates[i].ModelName))
            {
                firstDenied = i;
                break;
            }
        }
        if (firstDenied < 0) return route;

        var kept = new List<Candidate>(candidates.Count - 1);
        var removed = new List<RemovedCandidate>(route.Removed);
        for (var i = 0; i < candidates.Count; i++)
        {
            var c = candidates[i];
            if (i >= firstDenied && !Models.Allows(c.ModelName))
            {
                removed.Add(new RemovedCandidate(c.ModelName, "key", $"key '{KeyId}' may not use it"));
            }
            else
            {
                kept.Add(c);
            }
        }
        return new RouteDecision
        {
            TaskType = route.TaskType,
            TaskTypeSource = route.TaskTypeSource,
            TaskTypeDetail = route.TaskTypeDetail,
            Strategy = route.Strategy,
            ScoreMeaning = route.ScoreMeaning,
            Evaluated = route.Evaluated,
            Input = route.Input,
            Candidates = kept,
            Removed = removed,
            Error = kept.Count == 0 ? AuthErrors.NoAllowedCandidate(KeyId) : null,
        };
    }
}
