namespace LlmGateway.Resilience;

/// <summary>
/// A cancellation that fires when its parent does or when its own timer (on the injected
/// <see cref="TimeProvider"/>) runs out, and remembers which. <see cref="CancelAfter(TimeSpan)"/> may be called
/// again to restart the timer, which is how idle timeouts reset on every chunk.
/// </summary>
/// <remarks>
/// <para>
/// It is the token source itself, not a wrapper around one. A request's total time is a cap on the same source
/// (<see cref="ForRequest"/>): every limit set on it (an attempt's, a first token's, a stream's idle) runs out at the
/// cap at the latest, and a timer that fires at the cap is the total running out (<see cref="CapReached"/>), not the
/// limit (<see cref="TimedOut"/>). So a request's attempt runs on the one source instead of a second one linked to the
/// total: a miss made two, each with its timer, the timer queue's lock taken for each to arm and to let go, and the
/// attempt's registration on the total (DeadlineBenchmarks).
/// </para>
/// <para>
/// Only a limit that ran out cancels what the total still allows: the caller goes on with <see cref="Successor"/>.
/// </para>
/// </remarks>
public sealed class TimedCancellation : CancellationTokenSource
{
    private readonly CancellationTokenRegistration _parent;
    private readonly TimeProvider _time;

    /// <summary>When the total runs out (a <see cref="TimeProvider.GetTimestamp"/>), if this source has a cap.</summary>
    private readonly long _capAt;
    private readonly bool _capped;
    private readonly long _frequency;

    /// <summary>The timer is set for the cap, not for a shorter limit.</summary>
    private volatile bool _atCap;

    public TimedCancellation(TimeProvider time, CancellationToken parent) : base(Timeout.InfiniteTimeSpan, time)
    {
        _time = time;
        _parent = parent.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), this);
        ParentToken = parent;
    }

    private TimedCancellation(TimeProvider time, CancellationToken parent, long capAt) : this(time, parent)
    {
        _capAt = capAt;
        _capped = true;
        _frequency = time.TimestampFrequency;
        CancelAfter(Timeout.InfiniteTimeSpan, time.GetTimestamp());
    }

    /// <summary>A request's source: cancelled by <paramref name="parent"/> (the client leaving) or when <paramref name="total"/> has passed.</summary>
    public static TimedCancellation ForRequest(TimeProvider time, CancellationToken parent, TimeSpan total) =>
        new(time, parent, time.GetTimestamp() + (long)(total.TotalSeconds * time.TimestampFrequency));

    /// <summary>
    /// A fresh source with the same parent and cap, for what the total still allows after a limit of this one ran out
    /// (a retry, the next candidate); this one is the caller's to dispose.
    /// </summary>
    public TimedCancellation Successor() => _capped ? new(_time, ParentToken, _capAt) : new(_time, ParentToken);

    public CancellationToken ParentToken { get; }

    /// <summary>True when this fired because its own limit ran out: not the parent cancelled, not the cap reached.</summary>
    public bool TimedOut => IsCancellationRequested && !ParentToken.IsCancellationRequested && !_atCap;

    /// <summary>True when this fired because the cap (the request's total time) was reached.</summary>
    public bool CapReached => IsCancellationRequested && !ParentToken.IsCancellationRequested && _atCap;

    /// <summary>
    /// Restarts the timer for <paramref name="delay"/>, or up to the cap when that comes first (an infinite delay: the
    /// cap alone); once cancelled, stays cancelled.
    /// </summary>
    public new void CancelAfter(TimeSpan delay) => CancelAfter(delay, _capped ? _time.GetTimestamp() : 0); // no cap: the moment is not read

    /// <summary><see cref="CancelAfter(TimeSpan)"/> with the moment it is set, already read by the caller.</summary>
    public void CancelAfter(TimeSpan delay, long now)
    {
        if (IsCancellationRequested) return;
        if (!_capped)
        {
            base.CancelAfter(delay);
            return;
        }
        var left = _capAt - now;
        if (left <= 0)
        {
            _atCap = true;
            Cancel();
            return;
        }
        // In the timer's whole milliseconds, rounded up: the total never runs out before its time. Whole seconds apart
        // from the rest, so no total overflows here (one beyond the timer's reach throws in CancelAfter, as it always did).
        var toCap = left / _frequency * 1000 + ((left % _frequency * 1000) + _frequency - 1) / _frequency;
        if (delay != Timeout.InfiniteTimeSpan && delay.Ticks < toCap * TimeSpan.TicksPerMillisecond)
        {
            // A timer set for the cap can't be firing now: the cap is further away than this limit.
            _atCap = false;
            base.CancelAfter(delay);
        }
        else
        {
            base.CancelAfter(TimeSpan.FromTicks(toCap * TimeSpan.TicksPerMillisecond));
            // A limit's timer that fired just before it was moved to the cap stays the limit's.
            if (!IsCancellationRequested) _atCap = true;
        }
    }

    protected override void Dispose(bool disposing)
    {
        // The parent lets go first, so its callback never cancels a disposed source.
        if (disposing) _parent.Dispose();
        base.Dispose(disposing);
    }
}
