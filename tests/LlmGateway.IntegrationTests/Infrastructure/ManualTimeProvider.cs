using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>
/// <see cref="FakeTimeProvider"/> (the clock moves only when the test says so, and firing timers is
/// its job) plus what these tests need to see: every timer the gateway creates (retry delays,
/// first-token, idle and total timeouts, probe intervals) is recorded with the delay it asked for, so
/// a test can wait until the gateway is sleeping, check how long it meant to sleep, and wake it.
/// </summary>
public sealed class ManualTimeProvider : FakeTimeProvider
{
    private readonly object _lock = new();
    private readonly List<Pending> _pending = [];
    private readonly List<TimeSpan> _requested = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ManualTimeProvider() => SetUtcNow(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var pending = new Pending(this);
        // The callback goes through the record first, so a one-shot timer stops being pending when it fires.
        pending.Inner = base.CreateTimer(static s => ((Pending)s!).Fire(), pending, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        pending.Callback = callback;
        pending.State = state;
        pending.Change(dueTime, period);
        return pending;
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
            lock (_lock) return [.. _pending.Select(t => t.Requested)];
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
                foreach (var t in _pending)
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

    private void Changed()
    {
        var old = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        old.TrySetResult();
    }

    /// <summary>A FakeTimeProvider timer, seen from the test: what it was asked for and whether it still waits.</summary>
    private sealed class Pending(ManualTimeProvider owner) : ITimer
    {
        public ITimer Inner { get; set; } = null!;
        public TimerCallback Callback { get; set; } = null!;
        public object? State { get; set; }
        public TimeSpan Requested { get; private set; }
        private bool _periodic;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                owner._pending.Remove(this);
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    Requested = dueTime;
                    _periodic = period != Timeout.InfiniteTimeSpan && period != TimeSpan.Zero;
                    // A zero due time fires at once (as a real timer does), so it never waits.
                    if (dueTime != TimeSpan.Zero || _periodic) owner._pending.Add(this);
                    owner._requested.Add(dueTime);
                }
                owner.Changed();
            }
            return Inner.Change(dueTime, period);
        }

        public void Fire()
        {
            lock (owner._lock)
            {
                if (!_periodic)
                {
                    owner._pending.Remove(this);
                    owner.Changed();
                }
            }
            Callback(State);
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                owner._pending.Remove(this);
                owner.Changed();
            }
            Inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
