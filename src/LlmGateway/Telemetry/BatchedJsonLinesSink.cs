using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace LlmGateway.Telemetry;

/// <summary>
/// Serilog events as JSON lines on a stream (stdout), written in batches by one background thread that wakes
/// on a fixed interval while lines keep coming, and sleeps when they stop: a request only enqueues its event.
/// <para>
/// Why not <c>WriteTo.Async(Console)</c>: its worker takes events one at a time from a
/// <c>BlockingCollection</c>, so every log line signals a semaphore and wakes (then spins) the worker, and the
/// console sink flushes per line: one write system call per request. The issue-19 profile put that at a fifth
/// of the miss path's CPU (the worker's <c>SemaphoreSlim</c> spin alone 12.5 %). Here nothing is signalled per
/// event; the writer drains whatever has queued every <see cref="DefaultInterval"/>, formats it into one
/// buffer and writes it with one call, only ever whole lines, so a reader of stdout never sees half a line.
/// </para>
/// <para>
/// An interval that found nothing queued parks the writer until the next event: only that event, the first
/// after a quiet spell, signals it (one flag exchange; under load the writer never parks, so no event
/// signals). Without this an idle gateway woke 40 times a second to find nothing to write.
/// </para>
/// <para>
/// Bounded: beyond <c>capacity</c> queued events new ones are dropped and counted (a warning line says how
/// many), so a stalled stdout reader never grows memory or slows requests; the usage ledger, not the log, is
/// the record of what was spent. Dispose drains what is queued, so a normal shutdown loses nothing; a
/// crash loses at most one interval of lines.
/// </para>
/// <para>
/// The lines are formatted as UTF-8 straight into one long-lived byte buffer by <see cref="JsonLogLineFormatter"/>
/// (Serilog's JSON, byte for byte), not into a <c>StringWriter</c> that is then encoded a second time: see
/// <c>LoggingExtensions</c> for what that saves.
/// </para>
/// </summary>
public sealed class BatchedJsonLinesSink : ILogEventSink, IDisposable
{
    /// <summary>
    /// A tenth of a second: what a crash can lose of the log, and how late a line reaches stdout. Each interval that
    /// finds lines is a wake-up of this thread with cold caches, about 100 µs here: with requests a few dozen a second
    /// (bench/diagnose.sh threads --stream), the writer woke 0.38 times per stream at 25 ms and took 40 µs, at 100 ms
    /// 0.25 times and 27 to 33 µs. Under load it drains every interval either way, and writes every 32 KiB.
    /// </summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Lines are written out once the buffer holds this much, and at the end of every batch.</summary>
    private const int WriteThresholdBytes = 32 * 1024;

    private readonly ConcurrentQueue<LogEvent> _queue = new();
    private readonly JsonLogLineFormatter _formatter;
    private readonly Stream _output;
    private readonly int _capacity;
    private readonly TimeSpan _interval;
    // No spinning before a wait: the writer waits a whole interval (or until the next event) on purpose, and a
    // slim event's default spin calls sched_yield before every wait on a multi-core machine, a core handed away
    // for nothing. perf of the bench's miss path (2026-12-02) had this thread's waits as the main caller of
    // sched_yield; strace -c of the same load, 0.48 sched_yield per request before, 0.26 after.
    private readonly ManualResetEventSlim _stopping = new(false, spinCount: 0);
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly Thread _writer;
    private readonly LogLineBuffer _lines = new(WriteThresholdBytes * 2);
    private int _queued;
    private long _unformattable;
    private long _dropped;
    private int _disposed;
    private int _parked;

    public BatchedJsonLinesSink(JsonLogLineFormatter formatter, Stream output, int capacity = 50_000, TimeSpan? interval = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _formatter = formatter;
        _output = output;
        _capacity = capacity;
        _interval = interval ?? DefaultInterval;
        _writer = new Thread(Run) { IsBackground = true, Name = "log-writer" };
        _writer.Start();
    }

    /// <summary>Events dropped because the queue was full (a slow or stalled stdout reader).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Emit(LogEvent logEvent)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _dropped);
            return;
        }
        _queue.Enqueue(logEvent);
        // The first event after a quiet spell wakes the parked writer; every other event only enqueues. The
        // enqueue and the writer's park are both full fences, so either it sees this event or this sees it parked.
        if (Volatile.Read(ref _parked) != 0 && Interlocked.Exchange(ref _parked, 0) != 0) _wake.Set();
    }

    /// <summary>The writer is asleep until the next event (nothing was queued for a whole interval).</summary>
    internal bool IsParked => Volatile.Read(ref _parked) != 0;

    private void Run()
    {
        long reportedDrops = 0;
        // One batch per interval while events arrive; when an interval brought none, sleep until one does.
        while (!_stopping.Wait(_interval))
        {
            if (_queue.IsEmpty && !Park()) break;
            reportedDrops = Drain(reportedDrops);
        }
        Drain(reportedDrops);
    }

    /// <summary>Sleeps until an event is queued; false when the sink is stopping instead.</summary>
    private bool Park()
    {
        _wake.Reset(); // a wake left over from the last park (an event that raced this writer's own un-park)
        Interlocked.Exchange(ref _parked, 1);
        if (!_queue.IsEmpty || _stopping.IsSet)
        {
            Interlocked.Exchange(ref _parked, 0);
            return !_stopping.IsSet;
        }
        _wake.Wait();
        Interlocked.Exchange(ref _parked, 0); // woken by dispose rather than an event: nothing may signal a gone writer
        return !_stopping.IsSet;
    }

    /// <summary>Writes every queued event; returns the drop count already reported.</summary>
    private long Drain(long reportedDrops)
    {
        // Events taken off the queue and not yet counted out of _queued: counted out together before each write, not one
        // interlocked decrement per event on the line every request's Emit increments from the other cores. So the bound
        // counts, besides the queue, the lines being formatted for the next write (a few dozen, next to 50,000).
        var taken = 0;
        try
        {
            while (_queue.TryDequeue(out var e))
            {
                taken++;
                var start = _lines.Length;
                try
                {
                    _formatter.Format(e, _lines);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A value whose ToString() throws (an exception's, an object's), which Serilog's formatter
                    // throws on too: that line is lost, not the writer thread and every line after it.
                    _lines.Truncate(start);
                    _unformattable++;
                }
                if (_lines.Length >= WriteThresholdBytes)
                {
                    CountOut(ref taken);
                    WriteOut();
                }
            }
            CountOut(ref taken);
            if (_unformattable != 0)
            {
                _formatter.Format(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Warning, null,
                    new Serilog.Parsing.MessageTemplateParser().Parse("{UnformattableLogEvents} log events could not be formatted and were dropped"),
                    [new LogEventProperty("UnformattableLogEvents", new ScalarValue(_unformattable))]), _lines);
                _unformattable = 0;
            }
            var dropped = Dropped;
            if (dropped != reportedDrops)
            {
                _formatter.Format(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Warning, null,
                    new Serilog.Parsing.MessageTemplateParser().Parse("{DroppedLogEvents} log events dropped: stdout is not keeping up"),
                    [new LogEventProperty("DroppedLogEvents", new ScalarValue(dropped - reportedDrops))]), _lines);
                reportedDrops = dropped;
            }
            WriteOut();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // stdout closed or broken (the reader went away): nothing to report it to; keep draining so the
            // queue stays bounded.
            _lines.Clear();
        }
        finally
        {
            CountOut(ref taken);
        }
        return reportedDrops;
    }

    private void CountOut(ref int taken)
    {
        if (taken == 0) return;
        Interlocked.Add(ref _queued, -taken);
        taken = 0;
    }

    private void WriteOut()
    {
        if (_lines.Length == 0) return;
        try
        {
            _output.Write(_lines.WrittenArray, 0, _lines.Length);
            _output.Flush();
        }
        finally
        {
            _lines.Clear();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stopping.Set();
        _wake.Set();
        _writer.Join(TimeSpan.FromSeconds(10));
        _stopping.Dispose();
        // _wake is not disposed: a log call racing the shutdown may still set it, and an undisposed slim event holds
        // no kernel handle.
    }
}
