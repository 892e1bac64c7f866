using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Telemetry;
using Polly;

namespace LlmGateway.Resilience;

/// <summary>
/// Everything resilience keeps for one provider: its effective options (Gateway:Resilience with the
/// provider's overrides), its retry pipeline, circuit, limits and recent history. Built once at
/// start-up; every outcome of a call on this provider is reported here, in one place, so the
/// circuit, the admin view and the events never disagree.
/// </summary>
public sealed class ProviderResilience : IDisposable
{
    // Whether the provider is believed to serve, for the provider-up signal: raised only on a change.
    private const int Unknown = 0, Up = 1, Down = 2;

    private readonly IGatewayEvents _events;
    private int _up = Unknown;

    public ProviderResilience(string name, ProviderOptions provider, ResilienceOptions options, TimeProvider time, IGatewayEvents events)
    {
        Name = name;
        Type = provider.Type;
        Options = options;
        ProbeInterval = TimeSpan.FromSeconds(provider.ProbeIntervalSeconds);
        _events = events;
        FirstTokenTimeout = TimeSpan.FromSeconds(options.FirstTokenTimeoutSeconds);
        StreamIdleTimeout = TimeSpan.FromSeconds(options.StreamIdleTimeoutSeconds);
        AttemptTotalTimeout = TimeSpan.FromSeconds(options.TotalTimeoutSeconds);
        Breaker = new CircuitBreaker(options.CircuitBreaker, time, OnCircuitStateChanged);
        Limits = new ProviderLimits(provider);
        Stats = new ProviderStats(time);
    }

    public string Name { get; }
    public string Type { get; }
    public ResilienceOptions Options { get; }
    public TimeSpan ProbeInterval { get; }

    /// <summary>Headers and the first content chunk of a stream must arrive within this.</summary>
    public TimeSpan FirstTokenTimeout { get; }

    /// <summary>The longest silence between two chunks of a stream that has started.</summary>
    public TimeSpan StreamIdleTimeout { get; }

    /// <summary>The longest one non-streaming call may take (the request's own total still applies).</summary>
    public TimeSpan AttemptTotalTimeout { get; }

    public CircuitBreaker Breaker { get; }
    public ProviderLimits Limits { get; }
    public ProviderStats Stats { get; }

    /// <summary>Retries on this provider (Polly, from the registry); set once by the registry right after construction.</summary>
    public ResiliencePipeline<AttemptResult> Pipeline { get; internal set; } = ResiliencePipeline<AttemptResult>.Empty;

    /// <summary>A call answered (a complete body, or a stream that ended cleanly or was left by its client).</summary>
    public void Succeeded(bool probe, TimeSpan latency)
    {
        Breaker.OnSuccess(probe);
        Stats.RecordSuccess(latency);
        if (Breaker.State == CircuitState.Closed) SetUp(true);
    }

    /// <summary>A stream's first content arrived: the client will get this provider's answer.</summary>
    public void Committed(bool probe) => Breaker.OnCommitted(probe);

    /// <summary>
    /// A call failed. Only provider-health failures (5xx, 429, timeouts, broken connections) count
    /// against the circuit. Any other answer from the provider (a 400 for the client's bad parameter,
    /// a 401 for a key the operator must fix) shows the provider is up; the 401 still shows in the
    /// admin view as an error. <paramref name="providerTimedOut"/> is false when a timeout was the
    /// request's total running out rather than this call being slow: that says nothing about the provider.
    /// </summary>
    public void Failed(bool probe, ProviderFailure failure, bool providerTimedOut = true)
    {
        if (failure.Kind == FailureKind.Retryable)
        {
            if (failure.IsTimeout && !providerTimedOut)
            {
                Breaker.OnNeutral(probe);
                return;
            }
            Breaker.OnFailure(probe);
            Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            return;
        }
        if (failure.UpstreamStatus > 0) Breaker.OnSuccess(probe);
        else Breaker.OnNeutral(probe);
        if (failure.Kind == FailureKind.NextCandidate) Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
    }

    /// <summary>The call never happened (a limit or the budget said no, the client left before an answer).</summary>
    public void Abandoned(bool probe) => Breaker.OnNeutral(probe);

    public void Probed(bool ok, TimeSpan latency, string? error, int upstreamStatus)
    {
        Stats.RecordProbe(ok, latency, error, upstreamStatus);
        // A probe sees whether the endpoint answers, not whether chat works: it never closes a circuit.
        if (!ok) SetUp(false);
        else if (Breaker.State == CircuitState.Closed) SetUp(true);
    }

    public void Reset()
    {
        Breaker.Reset();
        Stats.ClearRecent();
    }

    private void OnCircuitStateChanged(CircuitState state)
    {
        _events.CircuitStateChanged(Name, state);
        if (state == CircuitState.Open) SetUp(false);
    }

    private void SetUp(bool up)
    {
        var value = up ? Up : Down;
        // A plain read first: on the hot path the answer is nearly always "no change".
        if (Volatile.Read(ref _up) != value && Interlocked.Exchange(ref _up, value) != value) _events.ProviderUp(Name, up);
    }

    public void Dispose() => Limits.Dispose();
}
