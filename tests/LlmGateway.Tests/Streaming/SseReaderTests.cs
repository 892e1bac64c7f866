using System.Text;
using LlmGateway.Streaming;

namespace LlmGateway.Tests.Streaming;

public class SseReaderTests
{
    /// <summary>Delivers the body a few bytes at a time, as a network does, so framing across reads is exercised.</summary>
    internal sealed class TricklingStream(byte[] data, int step) : Stream
    {
        private int _position;
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(step, count), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static async Task<List<(string Type, string Data)>> ReadAll(string body, int step)
    {
        using var reader = new SseReader(new TricklingStream(Encoding.UTF8.GetBytes(body), step));
        var events = new List<(string, string)>();
        while (await reader.ReadAsync(CancellationToken.None))
        {
            events.Add((Encoding.UTF8.GetString(reader.EventType), Encoding.UTF8.GetString(reader.Data.Span)));
        }
        return events;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Reads_events_with_types_comments_crlf_and_multiline_data(int step)
    {
        var body = ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\r\ndata: line1\r\ndata: line2\r\n\r\ndata:nospace\n\nevent: ping\ndata: {}\n\ndata: last-without-blank-line";
        var events = await ReadAll(body, step);
        Assert.Equal(
            [("message_start", "{\"a\":1}"), ("", "line1\nline2"), ("", "nospace"), ("ping", "{}"), ("", "last-without-blank-line")],
            events);
    }

    /// <summary>
    /// The split read a framing reader awaits the body with (TryRead, then FillAsync and Filled when nothing is whole):
    /// the same events as ReadAsync, an event's lines kept across the reads it spans, and false at the end.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task TryRead_with_fills_reads_the_same_events_as_ReadAsync(int step)
    {
        var body = ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\r\ndata: line1\r\ndata: line2\r\n\r\ndata:nospace\n\nevent: ping\ndata: {}\n\ndata: last-without-blank-line";
        using var reader = new SseReader(new TricklingStream(Encoding.UTF8.GetBytes(body), step));
        var events = new List<(string, string)>();
        var fills = 0;
        while (true)
        {
            if (reader.TryRead())
            {
                events.Add((Encoding.UTF8.GetString(reader.EventType), Encoding.UTF8.GetString(reader.Data.Span)));
                continue;
            }
            if (reader.AtEnd) break;
            reader.Filled(await reader.FillAsync(CancellationToken.None));
            fills++;
        }
        Assert.Equal((await ReadAll(body, step)).ToArray(), events.ToArray());
        Assert.Equal(5, events.Count);
        if (step == 1) Assert.True(fills > body.Length, "every byte was a read of its own");
        Assert.False(reader.TryRead());
        Assert.True(reader.AtEnd);
    }

    /// <summary>
    /// What a relay may hold unflushed: only a whole event with data already read. Everything arrives in one read here,
    /// so what is buffered after each event is exactly the rest of the body.
    /// </summary>
    [Theory]
    [InlineData("data: 1\n\ndata: 2\n\n", true)]
    [InlineData("data: 1\n\nevent: x\r\ndata: 2\r\n\r\n", true)]
    [InlineData("data: 1\n\ndata: [DONE]\n\n", true)]
    [InlineData("data: 1\n\ndata: 2\n", false)] // no blank line yet: the event may go on
    [InlineData("data: 1\n\ndata: 2", false)]
    [InlineData("data: 1\n\n: keep-alive\n\n", false)] // a comment is no event
    [InlineData("data: 1\n\ndata:\n\n", false)] // nor a data line without a value
    [InlineData("data: 1\n\ndata: \n\n", false)]
    [InlineData("data: 1\n\nevent: ping\n\n", false)]
    [InlineData("data: 1\n\n", false)]
    public async Task Has_a_buffered_event_only_when_a_whole_event_with_data_has_arrived(string body, bool expected)
    {
        using var reader = new SseReader(new TricklingStream(Encoding.UTF8.GetBytes(body), 4096));
        Assert.True(await reader.ReadAsync(CancellationToken.None));
        Assert.Equal("1", Encoding.UTF8.GetString(reader.Data.Span));
        Assert.Equal(expected, reader.HasBufferedEvent);
    }

    [Fact]
    public async Task Has_no_buffered_event_while_the_next_one_is_still_arriving()
    {
        // Two bytes a read: after the first event, at most a piece of the second is in hand.
        using var reader = new SseReader(new TricklingStream(Encoding.UTF8.GetBytes("data: 1\n\ndata: 2\n\n"), 2));
        Assert.True(await reader.ReadAsync(CancellationToken.None));
        Assert.False(reader.HasBufferedEvent);
        Assert.True(await reader.ReadAsync(CancellationToken.None));
        Assert.Equal("2", Encoding.UTF8.GetString(reader.Data.Span));
        Assert.False(reader.HasBufferedEvent);
    }

    [Fact]
    public async Task An_event_type_without_data_is_not_dispatched()
    {
        var events = await ReadAll("event: lonely\n\ndata: x\n\n", 2);
        Assert.Equal([("", "x")], events);
    }
}
