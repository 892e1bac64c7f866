namespace LlmGateway.Resilience;

/// <summary>
/// A cancellation that fires when its parent does or when its own timer (on the injected
/// <see cref="TimeProvider"/>) runs out, and remembers which. <see cref="CancelAfter"/> may be called
/// again to restart the timer, which is how idle timeouts reset on every chunk.
/// </summary>
/// <remarks>
/// It is the token source itself, not a wrapper around one: a miss makes two (the request's total and the
/// attempt's), and a wrapper was one more object each.
/// </remarks>
public sealed class TimedCancellation : CancellationTokenSource
{
    private readonly CancellationTokenRegistration _parent;

    public TimedCancellation(TimeProvider time, CancellationToken parent) : base(Timeout.InfiniteTimeSpan, time)
    {
        _parent = parent.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), this);
        ParentToken = parent;
    }

    public CancellationToken ParentToken { get; }

    /// <summary>True when this fired because its own timer ran out, not because the parent was cancelled.</summary>
    public bool TimedOut => IsCancellationRequested && !ParentToken.IsCancellationRequested;

    /// <summary>Restarts the timer; once cancelled, stays cancelled.</summary>
    public new void CancelAfter(TimeSpan delay)
    {
        if (!IsCancellationRequested) base.CancelAfter(delay);
    }

    protected override void Dispose(bool disposing)
    {
        // The parent lets go first, so its callback never cancels a disposed source.
        if (disposing) _parent.Dispose();
        base.Dispose(disposing);
    }
}
