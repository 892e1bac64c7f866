namespace LlmGateway.Resilience;

/// <summary>
/// A cancellation that fires when its parent does or when its own timer (on the injected
/// <see cref="TimeProvider"/>) runs out, and remembers which. <see cref="CancelAfter"/> may be called
/// again to restart the timer, which is how idle timeouts reset on every chunk.
/// </summary>
public sealed class TimedCancellation : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenRegistration _parent;

    public TimedCancellation(TimeProvider time, CancellationToken parent)
    {
        _timer = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        _parent = parent.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _timer);
        ParentToken = parent;
    }

    public CancellationToken Token => _timer.Token;
    public CancellationToken ParentToken { get; }

    /// <summary>True when this fired because its own timer ran out, not because the parent was cancelled.</summary>
    public bool TimedOut => _timer.IsCancellationRequested && !ParentToken.IsCancellationRequested;

    public void CancelAfter(TimeSpan delay)
    {
        if (!_timer.IsCancellationRequested) _timer.CancelAfter(delay);
    }

    public void Dispose()
    {
        _parent.Dispose();
        _timer.Dispose();
    }
}
