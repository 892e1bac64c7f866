using System.Threading.RateLimiting;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Resilience;

/// <summary>
/// A provider's own limits: calls in flight (<see cref="ProviderOptions.MaxConcurrency"/>), requests
/// and tokens per minute (<see cref="ProviderOptions.Rpm"/>, <see cref="ProviderOptions.Tpm"/>; 0 = none).
/// </summary>
/// <remarks>
/// A provider over a limit is skipped to the next candidate at once, never queued: the candidate
/// list exists so that one saturated provider costs nothing but a different answerer, and a wait
/// here would add latency to every request exactly when the system is busiest. When every
/// candidate is over its limit, the client gets a 503 with Retry-After and can back off itself: a
/// second for a full MaxConcurrency (a slot frees when any answer ends), the window's rest for Rpm/Tpm.
/// </remarks>
public sealed class ProviderLimits : IDisposable
{
    /// <summary>
    /// Calls in flight, counted here rather than by a ConcurrencyLimiter: without a queue, a limiter's slot is this
    /// count under a lock, taken and given back with a lease object per call; here it is one compare-and-swap each way.
    /// </summary>
    private int _inFlight;
    private readonly FixedWindowRateLimiter? _requests;
    private readonly FixedWindowRateLimiter? _tokens;
    private readonly int _tpm;

    public ProviderLimits(ProviderOptions options)
    {
        MaxConcurrency = options.MaxConcurrency;
        Rpm = options.Rpm;
        Tpm = options.Tpm;
        if (options.Rpm > 0)
        {
            _requests = new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
            {
                PermitLimit = options.Rpm, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true,
            });
        }
        if (options.Tpm > 0)
        {
            _tpm = options.Tpm;
            _tokens = new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
            {
                PermitLimit = options.Tpm, Window = TimeSpan.FromMinutes(1), QueueLimit = 0, AutoReplenishment = true,
            });
        }
    }

    public int MaxConcurrency { get; }
    public int Rpm { get; }
    public int Tpm { get; }

    public long InFlight => Volatile.Read(ref _inFlight);

    /// <summary>
    /// Takes a slot for one call, held until the answer is fully delivered (then <see cref="Release"/>, once), since a
    /// stream occupies the provider until its last chunk. The token count is what the provider will charge against its
    /// own TPM before it answers: the prompt estimate plus the output the request allows (OpenAI's own rule).
    /// </summary>
    public LimitVerdict TryAcquire(GatewayRequest request, out TimeSpan retryAfter)
    {
        retryAfter = ResilienceDefaults.ConcurrencyRetryAfter;
        var inFlight = Volatile.Read(ref _inFlight);
        while (true)
        {
            if (inFlight >= MaxConcurrency) return LimitVerdict.Concurrency;
            var seen = Interlocked.CompareExchange(ref _inFlight, inFlight + 1, inFlight);
            if (seen == inFlight) break;
            inFlight = seen;
        }
        if (_requests is not null)
        {
            using var rpm = _requests.AttemptAcquire();
            if (!rpm.IsAcquired)
            {
                retryAfter = WindowRest(rpm);
                Release();
                return LimitVerdict.Rpm;
            }
        }
        if (_tokens is not null)
        {
            var tokens = (long)request.EstimatedPromptTokens + (request.MaxTokens ?? 0);
            // A request larger than the whole minute's allowance takes the whole allowance, not an exception.
            using var tpm = _tokens.AttemptAcquire((int)Math.Clamp(tokens, 1, _tpm));
            if (!tpm.IsAcquired)
            {
                retryAfter = WindowRest(tpm);
                Release();
                return LimitVerdict.Tpm;
            }
        }
        return LimitVerdict.Acquired;
    }

    /// <summary>Gives back the slot of one call that <see cref="TryAcquire"/> let through.</summary>
    public void Release() => Interlocked.Decrement(ref _inFlight);

    /// <summary>When a refused rate-limit lease says the window renews; else a whole minute.</summary>
    private static TimeSpan WindowRest(RateLimitLease refused) =>
        refused.TryGetMetadata(MetadataName.RetryAfter, out var wait) && wait > TimeSpan.Zero ? wait : TimeSpan.FromMinutes(1);

    public void Dispose()
    {
        _requests?.Dispose();
        _tokens?.Dispose();
    }
}

public enum LimitVerdict
{
    Acquired,
    Concurrency,
    Rpm,
    Tpm,
}
