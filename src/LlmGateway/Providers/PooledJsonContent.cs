using System.Buffers;
using System.Net;

namespace LlmGateway.Providers;

/// <summary>
/// An upstream request's JSON body, written into a buffer rented from <see cref="ArrayPool{T}.Shared"/>
/// instead of a growing array and its exact-size copy (about twice the body per attempt, on every call).
/// The buffer goes back to the pool when the content is disposed, which the provider does by disposing
/// its <see cref="HttpRequestMessage"/> once the call is over: HTTP/1.1 in SocketsHttpHandler sends the
/// whole body before it reads the answer, and returns or throws (cancelled, the connection broken) only
/// after its last write to the socket, so nothing reads the buffer after that. Each attempt (a retry, a
/// fallback) writes its own content; disposing twice returns the buffer once.
/// </summary>
public sealed class PooledJsonContent : HttpContent, IBufferWriter<byte>
{
    private byte[]? _buffer;
    private int _length;

    private PooledJsonContent(int sizeHint)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, 256));
        // As text: a parsed value is a header-info object per request, read back as text when the headers are written.
        Headers.TryAddWithoutValidation("Content-Type", "application/json");
    }

    /// <summary>
    /// The body <paramref name="write"/> puts straight into the buffer for <paramref name="state"/> (a static callback: no
    /// closure per request), a buffer of about <paramref name="sizeHint"/> bytes to start with. A writer may wrap it in a
    /// <see cref="System.Text.Json.Utf8JsonWriter"/>; the OpenAI bodies, mostly the client's bytes copied as they came, need none.
    /// </summary>
    public static PooledJsonContent Write<TState>(int sizeHint, TState state, Action<IBufferWriter<byte>, TState> write)
    {
        var content = new PooledJsonContent(sizeHint);
        try
        {
            write(content, state);
        }
        catch
        {
            content.Dispose();
            throw;
        }
        return content;
    }

    /// <summary>The body as written (tests; valid until the content is disposed).</summary>
    public ReadOnlySpan<byte> Written => Buffer.AsSpan(0, _length);

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(PooledJsonContent));

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        stream.WriteAsync(Buffer, 0, _length);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        stream.WriteAsync(Buffer, 0, _length, cancellationToken);

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        stream.Write(Buffer, 0, _length);

    protected override Task<Stream> CreateContentReadStreamAsync() =>
        Task.FromResult<Stream>(new MemoryStream(Buffer, 0, _length, writable: false));

    protected override bool TryComputeLength(out long length)
    {
        length = _length;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        base.Dispose(disposing);
    }

    void IBufferWriter<byte>.Advance(int count) => _length += count;

    Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint) => Reserve(sizeHint).AsMemory(_length);

    Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint) => Reserve(sizeHint).AsSpan(_length);

    /// <summary>The buffer, with room for at least <paramref name="sizeHint"/> more bytes (at least one).</summary>
    private byte[] Reserve(int sizeHint)
    {
        var buffer = Buffer;
        var needed = _length + Math.Max(sizeHint, 1);
        if (needed <= buffer.Length) return buffer;
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, buffer.Length * 2));
        buffer.AsSpan(0, _length).CopyTo(bigger);
        _buffer = bigger;
        ArrayPool<byte>.Shared.Return(buffer);
        return bigger;
    }
}
