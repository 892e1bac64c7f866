namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// A clock that moves only when the test says so. Every timer the gateway creates (retry delays,
/// first-token, idle and total timeouts, probe intervals) is kept here with the delay it asked for,
/// so a test can wait until the gateway is sleeping, check how long it meant to sleep, and wake it.
/// </summary>
public sealed class ManualTimeProvider : TimeProvider
{
    private readonly object _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private readonly List<TimeSpan> _requested = [];
    private DateTimeOffset _now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _timestamp = 1_000_000_000;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock) return _now;
    }

    public override long GetTimestamp()
    {
        lock (_lock) return _timestamp;
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Every finite delay any timer was set to, in order.</summary>
    public IReadOnlyList<TimeSpan> RequestedDelays
    {
        get
        {
            lock (_lock) return [.. _requested];
        }
    }

    /// <summary>The delays of the timers currently waiting to fire.</summary>
    public IReadOnlyList<TimeSpan> PendingDelays
    {
        get
        {
            lock (_lock) return [.. _timers.Select(t => t.Requested)];
        }
    }

    /// <summary>Moves the clock forward, firing every timer that comes due on the way, each at its own time.</summary>
    public void Advance(TimeSpan by)
    {
        DateTimeOffset target;
        lock (_lock) target = _now + by;
        while (true)
        {
            ManualTimer? due;
            lock (_lock)
            {
                due = _timers.Where(t => t.DueAt <= target).OrderBy(t => t.DueAt).FirstOrDefault();
                if (due is null)
                {
                    MoveTo(target);
                    break;
                }
                MoveTo(due.DueAt);
                if (due.Period > TimeSpan.Zero) due.DueAt += due.Period;
                else _timers.Remove(due);
            }
            due.Fire();
        }
    }

    /// <summary>
    /// Waits (in real time, as a guard only) until a pending timer's delay matches. When
    /// <paramref name="meanwhile"/> ends first (the request finished without waiting), that is the answer's failure.
    /// </summary>
    public async Task<TimeSpan> WaitForTimerAsync(Func<TimeSpan, bool> match, string what, Task? meanwhile = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                foreach (var t in _timers)
                {
                    if (match(t.Requested)) return t.Requested;
                }
                changed = _changed.Task;
            }
            if (meanwhile is { IsCompleted: true })
            {
                await meanwhile;
                throw new InvalidOperationException($"The request finished without ever waiting for {what}.");
            }
            var left = deadline - DateTime.UtcNow;
            var waits = meanwhile is null ? new[] { changed, Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero) } : [changed, meanwhile, Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero)];
            if (left <= TimeSpan.Zero || await Task.WhenAny(waits) == waits[^1])
            {
                throw new TimeoutException($"No timer for {what}; pending: {string.Join(", ", PendingDelays)}");
            }
        }
    }

    /// <summary>Waits (in real time, as a guard only) until timers were set to <paramref name="delay"/> at least <paramref name="times"/> times.</summary>
    public async Task WaitForArmedAsync(TimeSpan delay, int times, Task? meanwhile = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_requested.Count(d => d == delay) >= times) return;
                changed = _changed.Task;
            }
            if (meanwhile is { IsCompleted: true })
            {
                await meanwhile;
                throw new InvalidOperationException($"The request finished before a timer was set to {delay} {times} times.");
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"Timers were not set to {delay} {times} times; requested: {string.Join(", ", RequestedDelays)}");
            await Task.WhenAny(changed, meanwhile ?? changed, Task.Delay(left));
        }
    }

    public Task<TimeSpan> WaitForTimerAsync(TimeSpan exactly, Task? meanwhile = null) => WaitForTimerAsync(d => d == exactly, exactly.ToString(), meanwhile);

    private void MoveTo(DateTimeOffset when)
    {
        if (when <= _now) return;
        _timestamp += (when - _now).Ticks;
        _now = when;
    }

    private void Changed()
    {
        var old = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.TrySetResult();
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset DueAt { get; set; }
        public TimeSpan Period { get; private set; }
        public TimeSpan Requested { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                owner._timers.Remove(this);
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    Requested = dueTime;
                    Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
                    DueAt = owner._now + dueTime;
                    owner._timers.Add(this);
                    owner._requested.Add(dueTime);
                }
                owner.Changed();
            }
            return true;
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._lock)
            {
                owner._timers.Remove(this);
                owner.Changed();
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
