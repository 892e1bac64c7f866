namespace LlmGateway.Auth;

/// <summary>
/// The state of one limit after an acquisition: whether it was granted, and what OpenAI's
/// <c>x-ratelimit-*</c> headers report (<see cref="Remaining"/> units now, full again after
/// <see cref="ResetAfter"/>). <see cref="RetryAfter"/> is how long a refused request must wait.
/// </summary>
public readonly record struct RateLimitResult(bool Allowed, int Limit, int Remaining, TimeSpan ResetAfter, TimeSpan RetryAfter);

/// <summary>
/// Limits of <c>limit</c> units per <c>window</c> (requests or tokens per minute) keyed by a string,
/// shared by every instance when the store is shared. The semantics are GCRA's (a token bucket
/// of <c>limit</c> units refilled evenly over the window), so that a Redis implementation is one
/// atomic Lua script over a single number per key:
/// <code>
///   tat   = max(stored TAT or now, now)              -- theoretical arrival time
///   step  = window / limit                           -- time one unit occupies
///   new   = tat + cost * step
///   allow = new - window &lt;= now                      -- refused when it would overfill the bucket
///   if allow: store new with expiry (new - now)
///   remaining = floor((window - (TAT' - now)) / step); reset = TAT' - now; retry = new - window - now
/// </code>
/// Callers pass <c>now</c> so that every instance and every test agrees on the clock they mean.
/// </summary>
public interface IRateLimiter
{
    /// <summary>Takes <paramref name="cost"/> units (0 only reads the state). Refused takes nothing.</summary>
    ValueTask<RateLimitResult> AcquireAsync(string key, int limit, TimeSpan window, int cost, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>
    /// Corrects an earlier acquisition by <paramref name="delta"/> units, never refusing: negative
    /// gives units back (the estimate was high), positive charges what was used beyond it, which
    /// may leave the bucket over-full so that later requests wait it off.
    /// </summary>
    ValueTask AdjustAsync(string key, int limit, TimeSpan window, int delta, DateTimeOffset now, CancellationToken cancellationToken = default);
}
