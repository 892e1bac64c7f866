using LlmGateway.Configuration;
using LlmGateway.Providers;

namespace LlmGateway.Resilience;

/// <summary>
/// The health of one deployment: a provider serving one upstream model. A model's own trouble (its
/// 5xx, its timeouts, its rate limit) is kept here, so it never blacks out the provider's other
/// models; only evidence about the whole provider (unreachable, key refused) goes to the provider's
/// circuit (<see cref="ProviderResilience"/>).
/// </summary>
/// <remarks>
/// Two mechanisms, as LiteLLM's users know them: a <b>cooldown</b> after an upstream 429 or 529, for
/// as long as the upstream asked (Retry-After, retry-after-ms) or <see cref="ResilienceOptions.CooldownSeconds"/>;
/// it is not a failure and never opens a circuit. And a <b>circuit</b> that opens on a run of 5xx,
/// timeouts or unreadable answers, exactly like the provider's.
/// </remarks>
public sealed class DeploymentHealth
{
    private readonly TimeProvider _time;
    private readonly object _lock = new();
    private long _cooldownUntil;
    private FailureCause _cooldownCause;

    public DeploymentHealth(string provider, string upstreamModel, ResilienceOptions options, TimeProvider time)
    {
        Provider = provider;
        UpstreamModel = upstreamModel;
        _time = time;
        DefaultCooldown = TimeSpan.FromSeconds(options.CooldownSeconds);
        Breaker = new CircuitBreaker(options.CircuitBreaker, time, static _ => { });
        Stats = new ProviderStats(time);
    }

    public string Provider { get; }

    /// <summary>The model name the upstream knows: the deployment's name within its provider.</summary>
    public string UpstreamModel { get; }

    public TimeSpan DefaultCooldown { get; }
    public CircuitBreaker Breaker { get; }
    public ProviderStats Stats { get; }

    /// <summary>How long this deployment still cools down (zero when it takes calls).</summary>
    public TimeSpan RemainingCooldown
    {
        get
        {
            lock (_lock)
            {
                var left = _cooldownUntil - _time.GetTimestamp();
                return left <= 0 ? TimeSpan.Zero : _time.GetElapsedTime(0, left);
            }
        }
    }

    /// <summary>When the cooldown ends, for the admin view; null when there is none.</summary>
    public DateTimeOffset? CooldownUntil => RemainingCooldown is { } left && left > TimeSpan.Zero ? _time.GetUtcNow() + left : null;

    /// <summary>Why it cools down: <see cref="FailureCause.RateLimited"/> (429) or <see cref="FailureCause.Overloaded"/> (529).</summary>
    public FailureCause CooldownCause
    {
        get
        {
            lock (_lock) return _cooldownCause;
        }
    }

    /// <summary>Starts (or extends, never shortens) a cooldown after the upstream's 429 or 529.</summary>
    public TimeSpan CoolDown(ProviderFailure failure)
    {
        var wait = failure.RetryAfter is { } asked && asked > TimeSpan.Zero ? asked : DefaultCooldown;
        var until = _time.GetTimestamp() + (long)(wait.TotalSeconds * _time.TimestampFrequency);
        lock (_lock)
        {
            if (until > _cooldownUntil)
            {
                _cooldownCause = failure.Cause;
                Volatile.Write(ref _cooldownUntil, until);
            }
        }
        return wait;
    }

    /// <summary>A skip without a call while the cooldown lasts; it says what the upstream said (429 or 529) and for how much longer.</summary>
    public ProviderFailure? CheckCooldown()
    {
        // The common case, no cooldown ever or one long over, without the lock.
        if (Volatile.Read(ref _cooldownUntil) <= _time.GetTimestamp()) return null;
        FailureCause cause;
        TimeSpan left;
        lock (_lock)
        {
            var ticks = _cooldownUntil - _time.GetTimestamp();
            if (ticks <= 0) return null;
            left = _time.GetElapsedTime(0, ticks);
            cause = _cooldownCause;
        }
        var what = cause == FailureCause.Overloaded ? "overloaded" : "rate-limited";
        return new ProviderFailure(FailureKind.NextCandidate, cause, Provider,
            $"Provider '{Provider}' model '{UpstreamModel}' is cooling down after the upstream said it is {what} ({Math.Ceiling(left.TotalSeconds)} s left).")
        { RetryAfter = left };
    }

    public void Reset()
    {
        lock (_lock) Volatile.Write(ref _cooldownUntil, 0);
        Breaker.Reset();
        Stats.ClearRecent();
    }
}
