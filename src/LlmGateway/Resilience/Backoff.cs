using LlmGateway.Configuration;

namespace LlmGateway.Resilience;

/// <summary>How long to wait before retrying the same provider, or that it is not worth waiting at all.</summary>
public static class Backoff
{
    /// <summary>
    /// The wait before retry number <paramref name="retry"/> (0 for the first retry), or null when the
    /// provider asked for a wait longer than <see cref="ResilienceOptions.MaxDelayMs"/>: sleeping that
    /// long would hold the client for nothing when the next candidate can answer now.
    /// </summary>
    /// <param name="retryAfter">What the upstream asked for (Retry-After / retry-after-ms), taken as given when it fits.</param>
    /// <param name="random">A number in [0, 1) for the jitter.</param>
    public static TimeSpan? RetryDelay(int retry, ResilienceOptions options, TimeSpan? retryAfter, double random)
    {
        var max = TimeSpan.FromMilliseconds(options.MaxDelayMs);
        if (retryAfter is { } asked)
        {
            if (asked > max) return null;
            return asked < TimeSpan.Zero ? TimeSpan.Zero : asked;
        }
        return TimeSpan.FromMilliseconds(ExponentialMs(retry, options.BaseDelayMs, options.MaxDelayMs, random));
    }

    /// <summary>
    /// Exponential backoff with "equal jitter": the ceiling doubles per retry up to <paramref name="maxMs"/>,
    /// and the wait is a random point in its upper half. Half keeps retries of many clients from
    /// landing together after one provider hiccup; the floor keeps a retry from coming back at once.
    /// </summary>
    public static double ExponentialMs(int retry, int baseMs, int maxMs, double random)
    {
        if (baseMs <= 0) return 0;
        // 2^retry overflows nothing here: the exponent is clamped long before a double would.
        var ceiling = Math.Min(maxMs, baseMs * Math.Pow(2, Math.Clamp(retry, 0, 30)));
        var half = ceiling / 2;
        return half + half * Math.Clamp(random, 0, 1);
    }
}
