namespace LlmGateway.PassThrough;

/// <summary>
/// Put in front of the response body while YARP copies a streamed (<c>text/event-stream</c>) answer
/// to the client: every write and flush goes straight through, unchanged and unbuffered, so the
/// client still gets the stream event by event; on the side, <see cref="SseUsageFinder"/> looks for
/// the usage event, and the first byte's time is noted for the record.
/// </summary>
public sealed class EventStreamTee : Stream
{
    private readonly Stream _inner;
    private readonly TimeProvider _time;
    private readonly SseUsageFinder _finder = new();

    public EventStreamTee(Stream inner, TimeProvider time)
    {
        _inner = inner;
        _time = time;
    }

    public Stream Inner => _inner;

    /// <summary>The usage of the last event that carried one; default if none went by.</summary>
    public ResponseUsage Usage => _finder.Usage;

    /// <summary>Events that might have carried usage but were too long to read (see <see cref="SseUsageFinder.MaxLineBytes"/>).</summary>
    public int SkippedLines => _finder.SkippedLines;

    /// <summary>When the first byte of the answer was handed to the client (a <see cref="TimeProvider"/> timestamp; 0 if none was).</summary>
    public long FirstByte { get; private set; }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (FirstByte == 0 && !buffer.IsEmpty) FirstByte = _time.GetTimestamp();
        _inner.Write(buffer);
        _finder.Append(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (FirstByte == 0 && !buffer.IsEmpty) FirstByte = _time.GetTimestamp();
        // The client's copy first: looking for usage never delays the bytes.
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _finder.Append(buffer.Span);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Returns the finder's buffer; the response body it wrapped belongs to the server and stays open.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _finder.Dispose();
        base.Dispose(disposing);
    }
}
