namespace LlmGateway.PassThrough;

/// <summary>
/// A write-only stream put in front of the response body while YARP copies an answer: every write and
/// flush goes straight to the client first, unchanged and unbuffered, and only then does the subclass
/// look at the bytes (<see cref="Observe"/>). The gateway never copies a forwarded body itself.
/// </summary>
public abstract class ObservingStream(Stream inner) : Stream
{
    /// <summary>The response body this one stands in front of; it belongs to the server and is never disposed here.</summary>
    public Stream Inner { get; } = inner;

    /// <summary>Sees bytes the client has already been handed.</summary>
    protected abstract void Observe(ReadOnlySpan<byte> bytes);

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Inner.Write(buffer);
        Observe(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        Observe(buffer.Span);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => Inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
