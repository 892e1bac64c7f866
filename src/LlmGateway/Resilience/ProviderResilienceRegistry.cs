using LlmGateway.Configuration;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.Resilience;

/// <summary>
/// The <see cref="ProviderResilience"/> of every configured provider, built at start-up, and the
/// answer to <see cref="IProviderHealth"/> for the router. A provider's retries are the candidate loop's
/// (<see cref="CandidateExecutor"/>), by its effective <see cref="ResilienceOptions.MaxRetries"/>.
/// </summary>
public sealed class ProviderResilienceRegistry : IProviderHealth, IProviderHealthSource, IDisposable
{
    private readonly Dictionary<string, ProviderResilience> _providers = new(StringComparer.OrdinalIgnoreCase);

    public ProviderResilienceRegistry(IOptions<GatewayOptions> options, TimeProvider time, IGatewayEvents events)
    {
        var global = options.Value.Resilience;
        foreach (var (name, provider) in options.Value.Providers)
        {
            var effective = provider.Resilience?.ApplyTo(global) ?? global;
            _providers[name] = new ProviderResilience(name, provider, effective, time, events);
        }
        // Every configured deployment is known (and shown, and measured) before its first call.
        foreach (var (modelName, model) in options.Value.Models)
        {
            if (_providers.TryGetValue(model.Provider, out var provider)) provider.Deployment(model.UpstreamModel ?? modelName);
        }
    }

    public IReadOnlyCollection<ProviderResilience> All => _providers.Values;

    public ProviderResilience Get(string provider) => _providers[provider];

    public ProviderResilience? Find(string provider) => _providers.GetValueOrDefault(provider);

    /// <summary>
    /// Open while the provider's or the deployment's break lasts: once a probe may go, the router should
    /// let the request through.
    /// </summary>
    public CircuitState GetCircuitState(string provider, string upstreamModel) =>
        _providers.TryGetValue(provider, out var p) ? StateOf(p, upstreamModel) : CircuitState.Closed;

    public TimeSpan RemainingBreak(string provider, string upstreamModel) =>
        _providers.TryGetValue(provider, out var p) ? RemainingBreakOf(p, p.Deployment(upstreamModel).Breaker) : TimeSpan.Zero;

    public (CircuitState State, TimeSpan RemainingBreak) GetCircuit(string provider, string upstreamModel)
    {
        if (!_providers.TryGetValue(provider, out var p)) return (CircuitState.Closed, TimeSpan.Zero);
        var deployment = p.Deployment(upstreamModel).Breaker;
        var state = p.Breaker.State;
        return (state == CircuitState.Open ? state : Worse(state, deployment.State), RemainingBreakOf(p, deployment));
    }

    private static CircuitState StateOf(ProviderResilience p, string upstreamModel)
    {
        var state = p.Breaker.State;
        return state == CircuitState.Open ? state : Worse(state, p.Deployment(upstreamModel).Breaker.State);
    }

    private static CircuitState Worse(CircuitState a, CircuitState b) => b > a ? b : a;

    private static TimeSpan RemainingBreakOf(ProviderResilience p, CircuitBreaker deployment)
    {
        var own = p.Breaker.RemainingBreak;
        var its = deployment.RemainingBreak;
        return own > its ? own : its;
    }

    /// <summary>Each provider's and each deployment's status, as the admin view computes it, for the metrics.</summary>
    public IReadOnlyList<ProviderHealthSample> SampleHealth()
    {
        var samples = new List<ProviderHealthSample>();
        foreach (var p in _providers.Values)
        {
            var view = ProviderViews.For(p);
            samples.Add(new ProviderHealthSample(p.Name, null, ProviderStatuses.IsUp(view.Status), (int)p.Breaker.State));
            foreach (var d in view.Deployments)
            {
                samples.Add(new ProviderHealthSample(p.Name, d.Model, ProviderStatuses.IsUp(d.Status), DeploymentStates.Of(d)));
            }
        }
        return samples;
    }

    public void Dispose()
    {
        foreach (var p in _providers.Values) p.Dispose();
    }
}
