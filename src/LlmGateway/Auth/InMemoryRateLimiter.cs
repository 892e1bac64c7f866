using System.Collections.Concurrent;

namespace LlmGateway.Auth;

/// <summary>
/// <see cref="IRateLimiter"/> for one instance: GCRA with the theoretical arrival time of each key
/// held as ticks and updated with compare-and-swap, so concurrent requests never lock.
/// </summary>
public sealed class InMemoryRateLimiter : IRateLimiter
{
    /// <summary>Past this many keys, idle ones (bucket full again) are swept out.</summary>
    private const int SweepAbove = 10_000;

    private readonly ConcurrentDictionary<string, Cell> _cells = new(StringComparer.Ordinal);

    public ValueTask<RateLimitResult> AcquireAsync(string key, int limit, TimeSpan window, int cost, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ArgumentOutOfRangeException.ThrowIfNegative(cost);
        var nowTicks = now.UtcTicks;
        var windowTicks = window.Ticks;
        var cell = _cells.GetOrAdd(key, static _ => new Cell());
        while (true)
        {
            var stored = Volatile.Read(ref cell.Tat);
            var tat = Math.Max(stored, nowTicks);
            var next = tat + Occupies(cost, limit, windowTicks);
            var allowAt = next - windowTicks;
            if (allowAt > nowTicks)
            {
                return ValueTask.FromResult(Result(false, limit, windowTicks, tat, nowTicks, allowAt - nowTicks));
            }
            if (cost == 0 || Interlocked.CompareExchange(ref cell.Tat, next, stored) == stored)
            {
                if (_cells.Count > SweepAbove) Sweep(nowTicks);
                return ValueTask.FromResult(Result(true, limit, windowTicks, next, nowTicks, 0));
            }
        }
    }

    public ValueTask AdjustAsync(string key, int limit, TimeSpan window, int delta, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        if (delta == 0) return ValueTask.CompletedTask;
        var nowTicks = now.UtcTicks;
        var cell = _cells.GetOrAdd(key, static _ => new Cell());
        while (true)
        {
            var stored = Volatile.Read(ref cell.Tat);
            var tat = Math.Max(stored, nowTicks);
            var next = delta > 0
                ? tat + Occupies(delta, limit, window.Ticks)
                : Math.Max(nowTicks, tat - Occupies(-delta, limit, window.Ticks));
            if (Interlocked.CompareExchange(ref cell.Tat, next, stored) == stored) return ValueTask.CompletedTask;
        }
    }

    /// <summary>Time <paramref name="units"/> occupy in the bucket: units × window / limit, in ticks.</summary>
    private static long Occupies(long units, int limit, long windowTicks) => (long)((Int128)units * windowTicks / limit);

    private static RateLimitResult Result(bool allowed, int limit, long windowTicks, long tat, long now, long retryTicks)
    {
        var busy = tat - now;
        var remaining = (long)((Int128)(windowTicks - busy) * limit / windowTicks);
        return new RateLimitResult(allowed, limit, (int)Math.Clamp(remaining, 0, limit), TimeSpan.FromTicks(Math.Max(busy, 0)), TimeSpan.FromTicks(retryTicks));
    }

    /// <summary>
    /// Removes keys whose bucket is full again. A request racing the removal can lose its charge to
    /// the removed cell; that is one request's worth, only past <see cref="SweepAbove"/> keys.
    /// </summary>
    private void Sweep(long nowTicks)
    {
        foreach (var (key, cell) in _cells)
        {
            if (Volatile.Read(ref cell.Tat) <= nowTicks) _cells.TryRemove(key, out _);
        }
    }

    private sealed class Cell
    {
        public long Tat;
    }
}
