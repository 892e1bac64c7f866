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
public sealed class ProviderResilienceRegistry : IProviderHealth, IDisposable
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
            resilience.Pipeline = _pipelines.GetOrAddPipeline<AttemptResult>(name, builder => ConfigureRetries(builder, name, effective, time, events));
            _providers[name] = resilience;
        }
    }

    public IReadOnlyCollection<ProviderResilience> All => _providers.Values;

    public ProviderResilience Get(string provider) => _providers[provider];

    public ProviderResilience? Find(string provider) => _providers.GetValueOrDefault(provider);

    /// <summary>Open only while the break lasts: once a probe may go, the router should let the request through.</summary>
    public CircuitState GetCircuitState(string provider) =>
        _providers.TryGetValue(provider, out var p) ? p.Breaker.State : CircuitState.Closed;

    public TimeSpan RemainingBreak(string provider) =>
        _providers.TryGetValue(provider, out var p) ? p.Breaker.RemainingBreak : TimeSpan.Zero;

    /// <summary>
    /// Retries of one candidate. Every decision (retry or not, and after how long) is made by the
    /// attempt itself, which knows the failure's classification and the provider's Retry-After; the
    /// pipeline runs the loop, sleeps on the injected <see cref="TimeProvider"/> and stops when the
    /// request's total time or the client's patience runs out.
    /// </summary>
    private static void ConfigureRetries(ResiliencePipelineBuilder<AttemptResult> builder, string name, ResilienceOptions options, TimeProvider time, IGatewayEvents events)
    {
        builder.TimeProvider = time;
        if (options.MaxRetries == 0) return;
        builder.AddRetry(new RetryStrategyOptions<AttemptResult>
        {
            MaxRetryAttempts = options.MaxRetries,
            BackoffType = DelayBackoffType.Constant,
            Delay = TimeSpan.Zero,
            ShouldHandle = static args => new ValueTask<bool>(args.Outcome.Result.RetryDelay is not null),
            DelayGenerator = static args => new ValueTask<TimeSpan?>(args.Outcome.Result.RetryDelay),
            OnRetry = _ =>
            {
                events.Retry(name);
                return default;
            },
        });
    }

    public void Dispose()
    {
        _pipelines.Dispose();
        foreach (var p in _providers.Values) p.Dispose();
    }
}
