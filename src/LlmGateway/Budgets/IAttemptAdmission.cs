using LlmGateway.ChatCompletions;
using LlmGateway.Providers;
using LlmGateway.Routing;

namespace LlmGateway.Budgets;

/// <summary>
/// Asked before each attempt on a candidate: may this request spend on it? A refusal skips the
/// candidate (so traffic flows to one whose budget has room); an admission holds a ticket that is
/// settled with the real cost when the request ends, or released if the attempt failed.
/// </summary>
public interface IAttemptAdmission
{
    ValueTask<Admission> AdmitAsync(GatewayContext context, Candidate candidate, CancellationToken cancellationToken);
}

public readonly record struct Admission(ProviderFailure? Refusal, IAdmissionTicket? Ticket)
{
    public static readonly Admission Granted = new(null, null);
}

public interface IAdmissionTicket
{
    /// <summary>The request finished (in any way) and cost this much.</summary>
    ValueTask SettleAsync(decimal actualCostUsd);

    /// <summary>The attempt failed before it cost anything: give the reservation back.</summary>
    ValueTask ReleaseAsync();
}

/// <summary>
/// Spend whose cost is known only from the answer (a pass-through call: the gateway doesn't read its
/// body, so there is nothing to reserve): refused up front when a budget it falls under is already
/// spent, and charged to every such budget when it ends.
/// </summary>
public interface IUnreservedSpend
{
    /// <summary>Why a call on <paramref name="provider"/> by <paramref name="caller"/> may not spend now, or null.</summary>
    string? ExhaustedReason(string provider, Auth.CallerIdentity? caller);

    /// <summary>Adds what the call cost to the global, provider and key budgets; once per <paramref name="requestId"/>, never throws.</summary>
    ValueTask ChargeAsync(string provider, Auth.CallerIdentity? caller, string requestId, decimal costUsd);
}

/// <summary>What the router asks of budgets to skip a provider whose budget is spent, without a call to the store.</summary>
public interface IBudgetGate
{
    bool IsProviderExhausted(string provider);

    /// <summary>Why, in words (which window, when it resets), or null when the provider's budget has room.</summary>
    string? ExhaustedReason(string provider) => IsProviderExhausted(provider) ? $"the budget of provider '{provider}' is spent" : null;
}
