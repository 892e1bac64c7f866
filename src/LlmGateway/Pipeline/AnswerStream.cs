using System.Runtime.CompilerServices;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Usage;

namespace LlmGateway.Pipeline;

/// <summary>
/// A streamed answer past its commit point, read one event at a time by the ingress: first the events
/// read before the commit (or a cached answer's replayed chunks), then the upstream's as they arrive,
/// each read under the provider's idle timeout. It never ends a failed stream as if it were complete:
/// a provider failure, or silence past the idle or total timeout, is one
/// <see cref="StreamEventKind.Failed"/> event with the error, and the request is recorded as broken.
/// When the caller leaves, a read throws <see cref="OperationCanceledException"/>.
/// </summary>
public sealed class AnswerStream
{
    private readonly GatewayContext _context;
    private readonly List<(StreamEventKind Kind, byte[] Data)> _pending;
    private readonly ChatStream? _upstream;
    private readonly TimedCancellation? _cancellation;
    private readonly StreamCommit? _commit;
    private readonly TimeSpan _idle;
    private readonly bool _endedBeforeContent;
    private readonly Action<RequestRecord, ApiError> _broken;
    private int _next;
    private AnswerEvent? _last;
    // The last ReadAsync started an upstream read, at _readStarted, which its awaiter finishes; else its awaiter's event was
    // in hand: the last event, once there is one, or else the pending one it took.
    private bool _reading;
    private long _readStarted;

    /// <summary>The rest of an upstream's stream, after the events the executor read before committing.</summary>
    internal AnswerStream(GatewayContext context, Execution execution, ChatStream upstream, Action<RequestRecord, ApiError> broken)
    {
        _context = context;
        _pending = execution.Pending;
        _endedBeforeContent = execution.EndedBeforeContent;
        _upstream = upstream;
        _cancellation = execution.Cancellation;
        _commit = execution.Commit;
        _idle = execution.StreamIdleTimeout;
        _broken = broken;
    }

    /// <summary>A cached answer replayed: every event is in hand, and the stream ends after them.</summary>
    internal AnswerStream(GatewayContext context, List<(StreamEventKind Kind, byte[] Data)> replay)
    {
        _context = context;
        _pending = replay;
        _broken = static (_, _) => { };
    }

    /// <summary>Null for chat chunks; the client dialect whose own framed SSE events the upstream's events are (<see cref="ChatStream.Dialect"/>).</summary>
    public string? Dialect => _upstream?.Dialect;

    /// <summary>What the client asked to get usage in: chat's <c>stream_options.include_usage</c>. Other dialects decide for themselves.</summary>
    public bool ClientWantsUsage => _context.Request is ChatRequest { ClientWantsUsage: true };

    /// <summary>Usage so far: the provider's report when it came, else an estimate from what was streamed.</summary>
    public TokenUsage Usage => _upstream?.Usage ?? _context.Record.Usage;

    /// <summary>
    /// The next event is already in hand (read before the commit, replayed from the cache, or arrived from the upstream
    /// in the same read as the one before): an ingress may write it without flushing the one before, so those go out in
    /// one write. A stream's last chunk, its usage and [DONE] arrive together: one send to the client instead of three.
    /// </summary>
    public bool HasBufferedEvents => _last is null && (_next < _pending.Count || (_upstream?.HasBufferedEvent ?? false));

    /// <summary>The finish reason the upstream reported, once it did.</summary>
    public string? FinishReason => _upstream?.FinishReason;

    /// <summary>
    /// The next event. After <see cref="StreamEventKind.End"/> or <see cref="StreamEventKind.Failed"/>,
    /// the same event again.
    /// </summary>
    /// <remarks>
    /// Not an async method: what this level does after the upstream's read (the idle timeout stopped, the upstream's time
    /// counted, the commit told, a timeout turned into the failed event) runs in the awaiter's GetResult, when the ingress
    /// that awaits the read resumes. So a chunk that arrives resumes the ingress straight from the upstream stream's read,
    /// one async level (a pooled box suspended and resumed) fewer per chunk than an async method awaiting that read.
    /// </remarks>
    public AnswerRead ReadAsync()
    {
        if (_last is not null) return Ready();
        if (_next < _pending.Count)
        {
            _next++;
            return Ready();
        }

        var record = _context.Record;
        if (_upstream is null || _endedBeforeContent)
        {
            // A replayed answer is whole once its chunks are out; the upstream that ended before any
            // content sent nothing a user would call a first token.
            if (_upstream is null) record.TimeToFirstToken ??= _context.Time.GetElapsedTime(_context.StartTimestamp);
            Finish(new AnswerEvent(StreamEventKind.End, default));
            return Ready();
        }
        // The ingress comes back for more once it has passed on what was read before the commit.
        record.TimeToFirstToken ??= _context.Time.GetElapsedTime(_context.StartTimestamp);

        // One clock read for both: the idle timer (kept under the request's total) and the upstream time start here.
        _readStarted = _context.Time.GetTimestamp();
        _cancellation!.CancelAfter(_idle, _readStarted);
        _reading = true;
        ValueTask<StreamEvent> read;
        try
        {
            read = _upstream.ReadAsync(_cancellation.Token);
        }
        catch (Exception e)
        {
            // Thrown before the read returned: handled as if the read had failed, in GetResult, as an awaited read's is.
            read = ValueTask.FromException<StreamEvent>(e);
        }
        return new(this, read);
    }

    /// <summary>An event in hand: a completed read, whose awaiter finds the event in <see cref="Completed"/>.</summary>
    private AnswerRead Ready() => new(this, default);

    /// <summary>The awaited read's event: the one in hand, or what the upstream read came to, once it completed (the rest of <see cref="ReadAsync"/>).</summary>
    private AnswerEvent Completed(ConfiguredValueTaskAwaitable<StreamEvent>.ConfiguredValueTaskAwaiter read)
    {
        if (!_reading)
        {
            if (_last is { } last) return last;
            var (kind, data) = _pending[_next - 1];
            return new AnswerEvent(kind, data);
        }
        _reading = false;
        var record = _context.Record;
        StreamEvent ev;
        try
        {
            ev = read.GetResult();
        }
        catch (OperationCanceledException) when (!_context.RequestAborted.IsCancellationRequested)
        {
            // The idle or the total timeout, after the client already has part of the answer. The idle one is the
            // provider's doing; the total's is not held against it.
            if (_cancellation!.TimedOut) _commit?.IdleTimedOut();
            return Break(ApiError.UpstreamTimeout($"Provider '{record.Provider}' stopped sending in the middle of the answer."));
        }
        finally
        {
            // The idle timeout is the upstream's: it runs only while the upstream is waited on. Stopped here, so
            // time spent writing to a slow client is never taken for the provider going quiet (and held against it).
            var readEnded = _context.Time.GetTimestamp();
            _cancellation!.CancelAfter(Timeout.InfiniteTimeSpan, readEnded);
            _context.AddUpstreamTime(_readStarted, readEnded);
        }

        _commit?.Observe(ev);
        return ev.Kind switch
        {
            StreamEventKind.End => Finish(new AnswerEvent(StreamEventKind.End, default)),
            StreamEventKind.Failed => Break(ev.Failure!.ToApiError()),
            _ => new AnswerEvent(ev.Kind, ev.Data),
        };
    }

    /// <summary>
    /// <see cref="ReadAsync"/>'s result, awaited like a <see cref="ValueTask{AnswerEvent}"/> (once, with or without
    /// ConfigureAwait): an event in hand (a completed read), or the upstream's read, which the awaiter finishes in its GetResult.
    /// Holds the read and the stream: in the ingress's state machine, one reference more than a value task of the event.
    /// </summary>
    public readonly struct AnswerRead
    {
        private readonly AnswerStream _stream;
        private readonly ValueTask<StreamEvent> _read;
        private readonly bool _continueOnCapturedContext;

        internal AnswerRead(AnswerStream stream, ValueTask<StreamEvent> read, bool continueOnCapturedContext = true)
        {
            _stream = stream;
            _read = read;
            _continueOnCapturedContext = continueOnCapturedContext;
        }

        public AnswerRead ConfigureAwait(bool continueOnCapturedContext) => new(_stream, _read, continueOnCapturedContext);

        public Awaiter GetAwaiter() => new(_stream, _read.ConfigureAwait(_continueOnCapturedContext).GetAwaiter());

        public readonly struct Awaiter : ICriticalNotifyCompletion
        {
            private readonly AnswerStream _stream;
            private readonly ConfiguredValueTaskAwaitable<StreamEvent>.ConfiguredValueTaskAwaiter _read;

            internal Awaiter(AnswerStream stream, ConfiguredValueTaskAwaitable<StreamEvent>.ConfiguredValueTaskAwaiter read)
            {
                _stream = stream;
                _read = read;
            }

            public bool IsCompleted => _read.IsCompleted;

            public AnswerEvent GetResult() => _stream.Completed(_read);

            public void OnCompleted(Action continuation) => _read.OnCompleted(continuation);

            public void UnsafeOnCompleted(Action continuation) => _read.UnsafeOnCompleted(continuation);
        }
    }

    private AnswerEvent Break(ApiError error)
    {
        _broken(_context.Record, error);
        return Finish(new AnswerEvent(StreamEventKind.Failed, default, error));
    }

    private AnswerEvent Finish(AnswerEvent ev)
    {
        _last = ev;
        return ev;
    }
}
