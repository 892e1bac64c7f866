using LlmGateway.Configuration;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Registry;
using Polly.Retry;

namespace LlmGateway.Resilience;

/// <summary>
/// The <see cref="ProviderResilience"/> of every configured provider, built at start-up, and the
/// answer to <see cref="IProviderHealth"/> for the router. Each provider's retry pipeline comes from
/// a Polly <see cref="ResiliencePipelineRegistry{TKey}"/> keyed by provider name.
/// </summary>
public sealed class ProviderResilienceRegistry : IProviderHealth, IProviderHealthSource, IDisposable
{
    private readonly Dictionary<string, ProviderResilience> _providers = new(StringComparer.OrdinalIgnoreCase);
    private readonly ResiliencePipelineRegistry<string> _pipelines = new();

    public ProviderResilienceRegistry(IOptions<GatewayOptions> options, TimeProvider time, IGatewayEvents events)
    {
        var global = options.Value.Resilience;
        foreach (var (name, provider) in options.Value.Providers)
        {
            var effective = provider.Resilience?.ApplyTo(global) ?? global;
            var resilience = new ProviderResilience(name, provider, effective, time, events);
            resilience.Pipeline = _pipelines.GetOrAddPipeline<AttemptResult>(name, builder => ConfigureRetries(builder, effective, time));
            _providers[name] = resilience;
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
    public CircuitState GetCircuitState(string provider, string upstreamModel)
    {
        if (!_providers.TryGetValue(provider, out var p)) return CircuitState.Closed;
        var state = p.Breaker.State;
        if (state == CircuitState.Open) return state;
        var deployment = p.Deployment(upstreamModel).Breaker.State;
        return deployment > state ? deployment : state;
    }

    public TimeSpan RemainingBreak(string provider, string upstreamModel)
    {
        if (!_providers.TryGetValue(provider, out var p)) return TimeSpan.Zero;
        var own = p.Breaker.RemainingBreak;
        var deployment = p.Deployment(upstreamModel).Breaker.RemainingBreak;
        return own > deployment ? own : deployment;
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

    /// <summary>
    /// Retries of one candidate. Every decision (retry or not, and after how long) is made by the
    /// attempt itself, which knows the failure's classification and the provider's Retry-After; the
    /// pipeline runs the loop, sleeps on the injected <see cref="TimeProvider"/> and stops when the
    /// request's total time or the client's patience runs out.
    /// </summary>
    private static void ConfigureRetries(ResiliencePipelineBuilder<AttemptResult> builder, ResilienceOptions options, TimeProvider time)
    {
        builder.TimeProvider = time;
        if (options.MaxRetries == 0) return;
        // The retry event is raised by the attempt itself, which knows the deployment.
        builder.AddRetry(new RetryStrategyOptions<AttemptResult>
        {
            MaxRetryAttempts = options.MaxRetries,
            BackoffType = DelayBackoffType.Constant,
            Delay = TimeSpan.Zero,
            ShouldHandle = static args => new ValueTask<bool>(args.Outcome.Result.RetryDelay is not null),
            DelayGenerator = static args => new ValueTask<TimeSpan?>(args.Outcome.Result.RetryDelay),
        });
    }

    public void Dispose()
    {
        _pipelines.Dispose();
        foreach (var p in _providers.Values) p.Dispose();
    }
}
