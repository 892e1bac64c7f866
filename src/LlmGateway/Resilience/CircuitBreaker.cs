using LlmGateway.Configuration;

namespace LlmGateway.Resilience;

/// <summary>
/// One provider's circuit: closed (calls flow), open (calls are skipped without touching the
/// provider), half-open (one probe call decides). It opens when, within the last
/// <see cref="CircuitBreakerOptions.SamplingSeconds"/>, at least <see cref="CircuitBreakerOptions.MinimumThroughput"/>
/// calls were sampled and the share of failures reached <see cref="CircuitBreakerOptions.FailureRatio"/>;
/// after <see cref="CircuitBreakerOptions.BreakSeconds"/> the next call is let through as the probe.
/// </summary>
/// <remarks>
/// Why not Polly's CircuitBreakerStrategy: it only learns an outcome by
/// wrapping the call, and the executor needs to drive it per attempt by hand.
/// <list type="bullet">
/// <item>A stream is judged after the call returned: the executor commits at the first content
/// chunk, and a cut or a stall after that is a provider failure that must still be counted.
/// Polly has no way to report an outcome outside an execution.</item>
/// <item>Some outcomes say nothing about the provider (the client left, a budget refused before
/// the call, the request's total time ran out). Polly counts every unhandled outcome as a success,
/// which in half-open closes the circuit on a probe that never reached the provider.</item>
/// <item>The router asks for the state without calling. Polly's state stays Open after the break
/// ended until someone executes through it, so a router that skips Open would never send the probe.</item>
/// </list>
/// The sampling mirrors Polly's advanced breaker: the window is cut into ten buckets that roll over.
/// </remarks>
public sealed class CircuitBreaker
{
    private const int Buckets = 10;

    private readonly TimeProvider _time;
    private readonly double _failureRatio;
    private readonly int _minimumThroughput;
    private readonly long _windowTicks;
    private readonly long _bucketTicks;
    private readonly long _breakTicks;
    private readonly Action<CircuitState> _onStateChanged;
    private readonly object _lock = new();

    private readonly long[] _bucketStart = new long[Buckets];
    private readonly int[] _successes = new int[Buckets];
    private readonly int[] _failures = new int[Buckets];
    private int _head;

    // Read without the lock on the hot path: a closed circuit needs no more than this.
    private volatile CircuitState _state = CircuitState.Closed;
    private long _openUntil;
    private bool _probeInFlight;
    private long _probeStarted;

    public CircuitBreaker(CircuitBreakerOptions options, TimeProvider time, Action<CircuitState> onStateChanged)
    {
        _time = time;
        _failureRatio = options.FailureRatio;
        _minimumThroughput = options.MinimumThroughput;
        _windowTicks = ToTicks(TimeSpan.FromSeconds(options.SamplingSeconds));
        _bucketTicks = Math.Max(1, _windowTicks / Buckets);
        _breakTicks = ToTicks(TimeSpan.FromSeconds(options.BreakSeconds));
        _onStateChanged = onStateChanged;
        ClearWindow();
    }

    /// <summary>
    /// The state as a caller deciding whether to try should see it: an open circuit whose break is
    /// over reads as half-open, since the next call would be let through as the probe.
    /// </summary>
    public CircuitState State
    {
        get
        {
            var state = _state;
            if (state != CircuitState.Open) return state;
            lock (_lock)
            {
                return _state == CircuitState.Open && _time.GetTimestamp() >= _openUntil ? CircuitState.HalfOpen : _state;
            }
        }
    }

    /// <summary>How long until an open circuit lets a probe through (zero when it would now).</summary>
    public TimeSpan RemainingBreak
    {
        get
        {
            // A closed circuit, the router's every candidate on every request, without the lock and the clock.
            if (_state != CircuitState.Open) return TimeSpan.Zero;
            lock (_lock)
            {
                if (_state != CircuitState.Open) return TimeSpan.Zero;
                var left = _openUntil - _time.GetTimestamp();
                return left <= 0 ? TimeSpan.Zero : _time.GetElapsedTime(0, left);
            }
        }
    }

    /// <summary>
    /// Asks to call the provider. False: the circuit is open (or a probe is already out). True with
    /// <paramref name="probe"/> set: this call is the half-open probe, and its outcome must be
    /// reported through <see cref="OnSuccess"/>, <see cref="OnFailure"/>, <see cref="OnCommitted"/> or <see cref="OnNeutral"/>.
    /// </summary>
    public bool TryEnter(out bool probe)
    {
        probe = false;
        if (_state == CircuitState.Closed) return true;

        var changed = false;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            switch (_state)
            {
                case CircuitState.Closed:
                    return true;
                case CircuitState.Open when now >= _openUntil:
                    _state = CircuitState.HalfOpen;
                    changed = true;
                    break;
                case CircuitState.Open:
                    return false;
                case CircuitState.HalfOpen when _probeInFlight && now - _probeStarted < _breakTicks:
                    // One probe at a time. A probe out for longer than a whole break is presumed lost.
                    return false;
            }
            _probeInFlight = true;
            _probeStarted = now;
            probe = true;
        }
        if (changed) _onStateChanged(CircuitState.HalfOpen);
        return true;
    }

    /// <summary>The provider answered: a sample on the good side; a probe closes the circuit.</summary>
    public void OnSuccess(bool probe) => OnSuccess(probe, _time.GetTimestamp());

    /// <inheritdoc cref="OnSuccess(bool)"/>
    /// <param name="probe">The call was the half-open probe.</param>
    /// <param name="now">When the answer came, a <see cref="TimeProvider.GetTimestamp"/> the caller already has: one clock read serves every circuit and history a success is told to.</param>
    public void OnSuccess(bool probe, long now)
    {
        bool closed;
        lock (_lock)
        {
            Sample(failure: false, now);
            closed = probe && _state == CircuitState.HalfOpen && CloseNeedsLock();
        }
        if (closed) _onStateChanged(CircuitState.Closed);
    }

    /// <summary>
    /// A stream started to flow: the probe has shown the provider is back, so the circuit closes. The
    /// stream's sample comes later, when it ends, through <see cref="OnSuccess"/> or <see cref="OnFailure"/>
    /// with probe false.
    /// </summary>
    public void OnCommitted(bool probe)
    {
        if (!probe) return;
        bool closed;
        lock (_lock)
        {
            closed = _state == CircuitState.HalfOpen && CloseNeedsLock();
        }
        if (closed) _onStateChanged(CircuitState.Closed);
    }

    /// <summary>A provider-health failure: counted; a failed probe, or too many failures, opens the circuit.</summary>
    public void OnFailure(bool probe)
    {
        var opened = false;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            Sample(failure: true, now);
            if (_state == CircuitState.HalfOpen && probe)
            {
                OpenNeedsLock(now);
                opened = true;
            }
            else if (_state == CircuitState.Closed)
            {
                var (total, failures) = TotalsNeedsLock(now);
                if (total >= _minimumThroughput && failures >= _failureRatio * total)
                {
                    OpenNeedsLock(now);
                    opened = true;
                }
            }
        }
        if (opened) _onStateChanged(CircuitState.Open);
    }

    /// <summary>The call told nothing about the provider (refused before sending, the client left): a probe slot is freed.</summary>
    public void OnNeutral(bool probe)
    {
        if (!probe) return;
        lock (_lock)
        {
            if (_state == CircuitState.HalfOpen) _probeInFlight = false;
        }
    }

    /// <summary>Closes the circuit and forgets the samples (the admin reset).</summary>
    public void Reset()
    {
        bool changed;
        lock (_lock)
        {
            changed = _state != CircuitState.Closed;
            CloseNeedsLock();
        }
        if (changed) _onStateChanged(CircuitState.Closed);
    }

    /// <summary>Calls sampled in the current window and how many of them failed.</summary>
    public (int Total, int Failures) Totals()
    {
        lock (_lock)
        {
            return TotalsNeedsLock(_time.GetTimestamp());
        }
    }

    private bool CloseNeedsLock()
    {
        _state = CircuitState.Closed;
        _probeInFlight = false;
        ClearWindow();
        return true;
    }

    private void OpenNeedsLock(long now)
    {
        _state = CircuitState.Open;
        _openUntil = now + _breakTicks;
        _probeInFlight = false;
    }

    private void Sample(bool failure, long now)
    {
        if (now - _bucketStart[_head] >= _bucketTicks)
        {
            _head = (_head + 1) % Buckets;
            _bucketStart[_head] = now;
            _successes[_head] = 0;
            _failures[_head] = 0;
        }
        if (failure) _failures[_head]++;
        else _successes[_head]++;
    }

    private (int Total, int Failures) TotalsNeedsLock(long now)
    {
        int total = 0, failures = 0;
        for (var i = 0; i < Buckets; i++)
        {
            if (now - _bucketStart[i] >= _windowTicks) continue;
            total += _successes[i] + _failures[i];
            failures += _failures[i];
        }
        return (total, failures);
    }

    private void ClearWindow()
    {
        // Far enough in the past to be outside any window, not so far that subtracting overflows.
        Array.Fill(_bucketStart, long.MinValue / 4);
        Array.Clear(_successes);
        Array.Clear(_failures);
    }

    private long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);
}
