using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Telemetry;

namespace LlmGateway.Resilience;

/// <summary>The circuits one call entered, so its outcome is reported to the same ones.</summary>
/// <param name="Deployment">The deployment (provider + upstream model) called.</param>
/// <param name="ProviderProbe">The call is the half-open probe of the provider's circuit.</param>
/// <param name="DeploymentProbe">The call is the half-open probe of the deployment's circuit.</param>
public readonly record struct HealthEntry(DeploymentHealth Deployment, bool ProviderProbe, bool DeploymentProbe);

/// <summary>
/// Everything resilience keeps for one provider: its effective options (Gateway:Resilience with the
/// provider's overrides), its retry pipeline, circuit, limits and recent history, and the health of
/// each of its deployments (one per upstream model). Built once at start-up; every outcome of a call
/// on this provider is reported here, in one place, so the circuits, the cooldowns, the admin view
/// and the metrics never disagree.
/// </summary>
/// <remarks>
/// Which level an outcome lands on (see <see cref="Failed"/>): a 429 or 529 cools that deployment
/// down; a 5xx, timeout or unreadable answer counts against that deployment's circuit; a refused
/// connection, DNS or TLS failure, or a 401/403 on the provider's key counts against the provider's
/// circuit, which stops every deployment of it.
/// </remarks>
public sealed class ProviderResilience : IDisposable
{
    private readonly IGatewayEvents _events;
    private readonly TimeProvider _time;
    // Filled at start-up with every configured deployment and read on every attempt: no lock on reads.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DeploymentHealth> _deployments = new(StringComparer.Ordinal);

    public ProviderResilience(string name, ProviderOptions provider, ResilienceOptions options, TimeProvider time, IGatewayEvents events)
    {
        Name = name;
        Type = provider.Type;
        Options = options;
        ProbeInterval = TimeSpan.FromSeconds(provider.ProbeIntervalSeconds);
        _events = events;
        _time = time;
        FirstTokenTimeout = TimeSpan.FromSeconds(options.FirstTokenTimeoutSeconds);
        StreamIdleTimeout = TimeSpan.FromSeconds(options.StreamIdleTimeoutSeconds);
        AttemptTimeout = TimeSpan.FromSeconds(Math.Min(options.AttemptTimeoutSeconds, options.TotalTimeoutSeconds));
        Breaker = new CircuitBreaker(options.CircuitBreaker, time, OnCircuitStateChanged);
        Limits = new ProviderLimits(provider);
        Stats = new ProviderStats(time);
    }

    public string Name { get; }
    public string Type { get; }
    public ResilienceOptions Options { get; }
    public TimeSpan ProbeInterval { get; }

    /// <summary>
    /// Headers and the first content chunk of a stream must arrive within this, counted from the first
    /// try of a candidate: its retries share it, so the next candidate starts within this time.
    /// </summary>
    public TimeSpan FirstTokenTimeout { get; }

    /// <summary>The longest silence between two chunks of a stream that has started.</summary>
    public TimeSpan StreamIdleTimeout { get; }

    /// <summary>The longest one non-streaming call may take (the request's own total still applies).</summary>
    public TimeSpan AttemptTimeout { get; }

    /// <summary>The provider's own circuit: opened only by evidence about the whole provider.</summary>
    public CircuitBreaker Breaker { get; }
    public ProviderLimits Limits { get; }

    /// <summary>Every call to any of its deployments; errors are only the provider-wide ones.</summary>
    public ProviderStats Stats { get; }

    /// <summary>The deployments by upstream model name.</summary>
    public IReadOnlyList<DeploymentHealth> Deployments =>
        [.. _deployments.Values.OrderBy(d => d.UpstreamModel, StringComparer.Ordinal)];

    /// <summary>The deployment of one upstream model; the registry adds the configured ones at start-up.</summary>
    public DeploymentHealth Deployment(string upstreamModel) =>
        _deployments.TryGetValue(upstreamModel, out var deployment)
            ? deployment
            : _deployments.GetOrAdd(upstreamModel, static (model, p) => new DeploymentHealth(p.Name, model, p.Options, p._time), this);

    /// <summary>
    /// Asks to call a deployment: null with <paramref name="entry"/> set when the call may go, else
    /// the skip (cooling down, or the provider's or the deployment's circuit is open), without a call.
    /// </summary>
    /// <param name="ignoreCooldown">This call is the retry that waited out the cooldown its own 429 started.</param>
    public ProviderFailure? TryEnter(DeploymentHealth deployment, out HealthEntry entry, bool ignoreCooldown = false)
    {
        entry = default;
        if (!ignoreCooldown && deployment.CheckCooldown() is { } cooling) return cooling;
        if (!Breaker.TryEnter(out var providerProbe))
        {
            return ResilienceFailures.CircuitOpen(Name, Breaker.RemainingBreak);
        }
        if (!deployment.Breaker.TryEnter(out var deploymentProbe))
        {
            Breaker.OnNeutral(providerProbe);
            return ResilienceFailures.CircuitOpen(Name, deployment.Breaker.RemainingBreak, deployment.UpstreamModel);
        }
        entry = new HealthEntry(deployment, providerProbe, deploymentProbe);
        return null;
    }

    /// <summary>A call answered (a complete body, or a stream that ended cleanly or was left by its client).</summary>
    public void Succeeded(HealthEntry entry, TimeSpan latency) => Succeeded(entry, latency, _time.GetTimestamp());

    /// <inheritdoc cref="Succeeded(HealthEntry, TimeSpan)"/>
    /// <param name="entry">The circuits the call entered.</param>
    /// <param name="latency">The time to the first token (or the whole body).</param>
    /// <param name="now">
    /// When the answer came, a <see cref="TimeProvider.GetTimestamp"/> the caller read as the call ended. The two
    /// circuits and the two histories each read the clock themselves before (six reads per success, perf on the
    /// bench 2026-12-02 showed the clock among the executor's samples); one moment serves them all.
    /// </param>
    public void Succeeded(HealthEntry entry, TimeSpan latency, long now)
    {
        var at = _time.GetUtcNow();
        Breaker.OnSuccess(entry.ProviderProbe, now);
        entry.Deployment.Breaker.OnSuccess(entry.DeploymentProbe, now);
        Stats.RecordSuccess(latency, now, at);
        entry.Deployment.Stats.RecordSuccess(latency, now, at);
    }

    /// <summary>A stream's first content arrived: the client will get this provider's answer.</summary>
    public void Committed(HealthEntry entry)
    {
        Breaker.OnCommitted(entry.ProviderProbe);
        entry.Deployment.Breaker.OnCommitted(entry.DeploymentProbe);
    }

    /// <summary>
    /// A call failed; the failure decides where it counts. A 429 or 529 cools the deployment down and
    /// is no failure of anything. A provider-wide failure (unreachable, key refused) counts against the
    /// provider's circuit. Any other provider-health failure (5xx, timeout, unreadable answer) counts
    /// against the deployment's circuit, and the provider, having answered, counts a success. Any
    /// other answer (a 400 for the client's bad parameter, a 404 for an unknown upstream model) shows
    /// both are up; the 404 still shows in the admin view as the deployment's error.
    /// <paramref name="providerTimedOut"/> is false when a timeout was the request's total running out
    /// rather than this call being slow: that says nothing about the provider.
    /// </summary>
    public void Failed(HealthEntry entry, ProviderFailure failure, bool providerTimedOut = true)
    {
        var deployment = entry.Deployment;
        if (failure.IsTimeout && !providerTimedOut)
        {
            Breaker.OnNeutral(entry.ProviderProbe);
            deployment.Breaker.OnNeutral(entry.DeploymentProbe);
            return;
        }
        if (failure.CoolsDown)
        {
            deployment.CoolDown(failure);
            Breaker.OnSuccess(entry.ProviderProbe);
            deployment.Breaker.OnNeutral(entry.DeploymentProbe);
            Stats.RecordAnswered();
            deployment.Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            return;
        }
        if (failure.IsProviderWide)
        {
            Breaker.OnFailure(entry.ProviderProbe);
            deployment.Breaker.OnNeutral(entry.DeploymentProbe);
            Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            deployment.Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            return;
        }
        if (failure.Kind == FailureKind.Retryable)
        {
            if (failure.UpstreamStatus > 0)
            {
                Breaker.OnSuccess(entry.ProviderProbe);
                Stats.RecordAnswered();
            }
            else
            {
                Breaker.OnNeutral(entry.ProviderProbe);
            }
            deployment.Breaker.OnFailure(entry.DeploymentProbe);
            deployment.Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            return;
        }
        if (failure.UpstreamStatus > 0)
        {
            Breaker.OnSuccess(entry.ProviderProbe);
            deployment.Breaker.OnSuccess(entry.DeploymentProbe);
            Stats.RecordAnswered();
        }
        else
        {
            Breaker.OnNeutral(entry.ProviderProbe);
            deployment.Breaker.OnNeutral(entry.DeploymentProbe);
        }
        if (failure.Kind == FailureKind.NextCandidate)
        {
            deployment.Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
            if (failure.Cause == FailureCause.NotConfigured) Stats.RecordFailure(failure.Message, failure.UpstreamStatus);
        }
    }

    /// <summary>The call never happened (a limit or the budget said no, the client left before an answer).</summary>
    public void Abandoned(HealthEntry entry)
    {
        Breaker.OnNeutral(entry.ProviderProbe);
        entry.Deployment?.Breaker.OnNeutral(entry.DeploymentProbe);
    }

    public void Probed(bool ok, TimeSpan latency, string? error, int upstreamStatus) =>
        // A probe sees whether the endpoint answers, not whether chat works: it never closes a circuit.
        Stats.RecordProbe(ok, latency, error, upstreamStatus);

    /// <summary>Closes the provider's circuit and its deployments', ends their cooldowns, forgets recent samples.</summary>
    public void Reset()
    {
        Breaker.Reset();
        Stats.ClearRecent();
        foreach (var d in Deployments) d.Reset();
    }

    private void OnCircuitStateChanged(CircuitState state) => _events.CircuitStateChanged(Name, state);

    public void Dispose() => Limits.Dispose();
}
