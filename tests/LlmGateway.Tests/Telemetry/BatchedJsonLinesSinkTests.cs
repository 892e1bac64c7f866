using System.Text;
using LlmGateway.Telemetry;
using Serilog.Events;
using Serilog.Parsing;

namespace LlmGateway.Tests.Telemetry;

public class BatchedJsonLinesSinkTests
{
    private static LogEvent Event(int i) => new(DateTimeOffset.UtcNow, LogEventLevel.Information, null,
        new MessageTemplateParser().Parse("line {N}"), [new LogEventProperty("N", new ScalarValue(i))]);

    /// <summary>A stream that records how many writes it got; the sink must write batches, not one call per line.</summary>
    private sealed class CountingStream : MemoryStream
    {
        public int Writes { get; private set; }
        public override void Write(byte[] buffer, int offset, int count) { Writes++; base.Write(buffer, offset, count); }
    }

    [Fact]
    public void Every_event_queued_before_dispose_is_written_as_a_whole_JSON_line_in_few_writes()
    {
        var output = new CountingStream();
        // An interval far beyond the test: everything is written by the drain at dispose, in one go.
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, capacity: 1000, interval: TimeSpan.FromHours(1));
        for (var i = 0; i < 500; i++) sink.Emit(Event(i));
        Assert.Equal(0, output.Writes);
        sink.Dispose();

        var lines = Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(500, lines.Length);
        for (var i = 0; i < 500; i++)
        {
            using var json = System.Text.Json.JsonDocument.Parse(lines[i]);
            Assert.Equal(i, json.RootElement.GetProperty("Properties").GetProperty("N").GetInt32());
        }
        // ~45 KB of lines: written out at the 32 K threshold and at the end, not 500 times.
        Assert.InRange(output.Writes, 1, 3);
        Assert.Equal(0, sink.Dropped);
    }

    [Fact]
    public void Beyond_capacity_events_are_dropped_counted_and_reported_in_a_warning_line()
    {
        var output = new MemoryStream();
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, capacity: 10, interval: TimeSpan.FromHours(1));
        for (var i = 0; i < 15; i++) sink.Emit(Event(i));
        Assert.Equal(5, sink.Dropped);
        sink.Dispose();

        var lines = Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(11, lines.Length);
        using var warning = System.Text.Json.JsonDocument.Parse(lines[^1]);
        Assert.Equal("Warning", warning.RootElement.GetProperty("Level").GetString());
        Assert.Equal(5, warning.RootElement.GetProperty("Properties").GetProperty("DroppedLogEvents").GetInt64());
    }

    [Fact]
    public void Written_events_make_room_again_for_as_many_more()
    {
        var output = new LineCountingStream();
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, capacity: 10, interval: TimeSpan.FromMilliseconds(5));
        for (var round = 1; round <= 3; round++)
        {
            for (var i = 0; i < 10; i++) sink.Emit(Event(i));
            // Bounded wait for the background thread; failing, not returning quietly, at the deadline.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (output.Lines < 10 * round)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the writer never wrote round {round}");
                Thread.Sleep(5);
            }
        }
        sink.Dispose();

        // Each round's events were counted out of the bound once written: none dropped, no warning line.
        Assert.Equal(0, sink.Dropped);
        Assert.Equal(30, output.Lines);
    }

    [Fact]
    public void The_writer_drains_on_its_interval_without_being_signalled()
    {
        var output = new MemoryStream();
        using var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, interval: TimeSpan.FromMilliseconds(5));
        sink.Emit(Event(1));
        // Bounded wait for the background thread; failing, not returning quietly, at the deadline.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Volatile.Read(ref output) is { Length: 0 })
        {
            Assert.True(DateTime.UtcNow < deadline, "the writer never wrote the queued event");
            Thread.Sleep(5);
        }
    }

    /// <summary>Lines written so far, readable from the test thread while the writer thread writes.</summary>
    private sealed class LineCountingStream : MemoryStream
    {
        private int _lines;
        public int Lines => Volatile.Read(ref _lines);
        // Only counted, not kept: the writer thread writes while the test thread reads the count.
        public override void Write(byte[] buffer, int offset, int count) => Interlocked.Add(ref _lines, buffer.AsSpan(offset, count).Count((byte)'\n'));
    }

    /// <summary>Waits, bounded, for <paramref name="condition"/>; fails (never returns quietly) at the deadline.</summary>
    private static void Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            Thread.Sleep(2);
        }
    }

    [Fact]
    public void A_quiet_writer_sleeps_until_the_next_event_and_that_event_wakes_it()
    {
        var output = new LineCountingStream();
        using var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, interval: TimeSpan.FromMilliseconds(5));
        Eventually(() => sink.IsParked, "the writer never went to sleep with nothing queued");

        // Each quiet spell ends with one event that must wake the sleeping writer by itself: no interval runs
        // while it sleeps, so a missing wake-up leaves the line unwritten and the wait below fails.
        for (var i = 1; i <= 3; i++)
        {
            sink.Emit(Event(i));
            Eventually(() => output.Lines == i, $"event {i}, sent to a sleeping writer, was never written");
            Eventually(() => sink.IsParked, "the writer did not go back to sleep after the quiet spell");
        }
    }

    [Fact]
    public async Task Disposing_a_sleeping_writer_wakes_it_and_returns()
    {
        var output = new LineCountingStream();
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, interval: TimeSpan.FromMilliseconds(5));
        Eventually(() => sink.IsParked, "the writer never went to sleep with nothing queued");
        // Dispose joins the writer for at most 10 s: a writer dispose cannot wake would hold it that long.
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await Task.Run(sink.Dispose).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"dispose took {stopping.Elapsed}: the sleeping writer was not woken");
        Assert.Equal(0, output.Lines);
        Assert.False(sink.IsParked);
        sink.Emit(Event(1)); // a log call racing the shutdown: queued, nothing to wake, no exception
    }

    private sealed class ThrowingToString
    {
        public override string ToString() => throw new InvalidOperationException("no text for you");
    }

    [Fact]
    public void An_event_that_cannot_be_formatted_is_dropped_and_reported_and_the_lines_after_it_are_written()
    {
        var output = new MemoryStream();
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), output, capacity: 100, interval: TimeSpan.FromHours(1));
        sink.Emit(Event(1));
        // Half written when it throws: the properties before it are already in the buffer.
        sink.Emit(new LogEvent(DateTimeOffset.UtcNow, LogEventLevel.Information, null, new MessageTemplateParser().Parse("bad"),
            [new LogEventProperty("N", new ScalarValue(2)), new LogEventProperty("Bad", new ScalarValue(new ThrowingToString()))]));
        sink.Emit(Event(3));
        sink.Dispose();

        var lines = Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        var json = lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(1, json[0].GetProperty("Properties").GetProperty("N").GetInt32());
        Assert.Equal(3, json[1].GetProperty("Properties").GetProperty("N").GetInt32());
        Assert.Equal("Warning", json[2].GetProperty("Level").GetString());
        Assert.Equal(1, json[2].GetProperty("Properties").GetProperty("UnformattableLogEvents").GetInt64());
    }

    private sealed class BrokenStream : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("stdout closed");
    }

    [Fact]
    public void A_broken_stdout_throws_neither_into_the_logger_nor_at_shutdown()
    {
        var sink = new BatchedJsonLinesSink(new JsonLogLineFormatter(), new BrokenStream(), capacity: 10, interval: TimeSpan.FromHours(1));
        for (var i = 0; i < 10; i++) sink.Emit(Event(i));
        sink.Dispose(); // drains into the broken stream: swallowed
        Assert.Equal(0, sink.Dropped);
    }
}
