using LlmGateway.Storage;

namespace LlmGateway.Auth;

/// <summary>
/// <see cref="IRateLimiter"/> over the gateway's store: the GCRA state of each key is one arrival time
/// that the store updates atomically (a lock in memory, a Lua script on Redis), so instances sharing
/// Redis share each key's limits. This class turns units into time and the result into headers' numbers.
/// </summary>
public sealed class StoreRateLimiter(IGatewayStore store) : IRateLimiter
{
    public async ValueTask<RateLimitResult> AcquireAsync(string key, int limit, TimeSpan window, int cost, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfNegative(cost);
        var nowUs = Micros(now);
        var windowUs = Micros(window);
        var result = await store.GcraAcquireAsync(key, Occupies(cost, limit, windowUs), windowUs, nowUs).ConfigureAwait(false);
        var busy = result.TatUs - nowUs;
        var remaining = (long)((Int128)(windowUs - busy) * limit / windowUs);
        var retry = result.Allowed ? 0 : result.TatUs + Occupies(cost, limit, windowUs) - windowUs - nowUs;
        return new RateLimitResult(result.Allowed, limit, (int)Math.Clamp(remaining, 0, limit),
            TimeSpan.FromMicroseconds(Math.Max(busy, 0)), TimeSpan.FromMicroseconds(Math.Max(retry, 0)));
    }

    public async ValueTask AdjustAsync(string key, int limit, TimeSpan window, int delta, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        if (delta == 0) return;
        var occupies = Occupies(Math.Abs((long)delta), limit, Micros(window));
        await store.GcraAdjustAsync(key, delta > 0 ? occupies : -occupies, Micros(now)).ConfigureAwait(false);
    }

    /// <summary>Time <paramref name="units"/> occupy in the bucket: units × window / limit.</summary>
    private static long Occupies(long units, int limit, long windowUs) => (long)((Int128)units * windowUs / limit);

    private static long Micros(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    private static long Micros(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMicrosecond;
}
