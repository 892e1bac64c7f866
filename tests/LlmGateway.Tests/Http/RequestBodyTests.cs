using System.Buffers;
using LlmGateway.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Tests.Http;

public class RequestBodyTests
{
    private const int Max = 1024;

    /// <summary>A body stream that hands out its bytes in the given pieces, each at once or after a yield, and counts the reads.</summary>
    private sealed class PiecewiseStream(byte[] bytes, int[] pieces, bool yields = false, Exception? failAt = null) : Stream
    {
        private int _position;
        private int _piece;
        public int Reads { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Reads++;
            if (yields) await Task.Yield();
            if (_position == bytes.Length && failAt is not null) throw failAt;
            var size = Math.Min(buffer.Length, Math.Min(bytes.Length - _position, _piece < pieces.Length ? pieces[_piece++] : int.MaxValue));
            bytes.AsSpan(_position, size).CopyTo(buffer.Span);
            _position += size;
            return size;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class MaxBodySize : IHttpMaxRequestBodySizeFeature
    {
        public bool IsReadOnly => false;
        public long? MaxRequestBodySize { get; set; } = 2 * Max;
    }

    private static (DefaultHttpContext Http, MaxBodySize Limit) Context(Stream body, long? contentLength)
    {
        var http = new DefaultHttpContext();
        var limit = new MaxBodySize();
        http.Features.Set<IHttpMaxRequestBodySizeFeature>(limit);
        http.Request.Body = body;
        http.Request.ContentLength = contentLength;
        return (http, limit);
    }

    private static byte[] Bytes(int length) => Enumerable.Range(0, length).Select(i => (byte)i).ToArray();

    [Fact]
    public async Task A_body_of_known_length_that_has_arrived_is_read_in_one_read()
    {
        var bytes = Bytes(300);
        var stream = new PiecewiseStream(bytes, [300]);
        var (http, limit) = Context(stream, bytes.Length);

        var read = RequestBody.ReadOrRefuseAsync(http, Max);
        Assert.True(read.IsCompletedSuccessfully);
        var (buffer, length, error) = await read;

        Assert.Null(error);
        Assert.Equal(bytes, buffer.AsSpan(0, length).ToArray());
        Assert.Equal(1, stream.Reads);
        // Such a body can't reach Kestrel's limit: left as it is.
        Assert.Equal(2 * Max, limit.MaxRequestBodySize);
        ArrayPool<byte>.Shared.Return(buffer);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_body_of_known_length_arriving_in_pieces_is_read_to_its_length(bool yields)
    {
        var bytes = Bytes(700);
        var stream = new PiecewiseStream(bytes, [1, 200, 99, 400], yields);
        var (http, _) = Context(stream, bytes.Length);

        var (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(http, Max);

        Assert.Null(error);
        Assert.Equal(bytes, buffer.AsSpan(0, length).ToArray());
        Assert.Equal(4, stream.Reads);
        ArrayPool<byte>.Shared.Return(buffer);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_body_that_ends_before_its_content_length_gives_what_it_had(bool yields)
    {
        var (http, _) = Context(new PiecewiseStream(Bytes(100), [60], yields), 200);
        var (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(http, Max);
        Assert.Null(error);
        Assert.Equal(100, length);
        ArrayPool<byte>.Shared.Return(buffer);

        (http, _) = Context(new PiecewiseStream([], [], yields), 200);
        (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(http, Max);
        Assert.Equal(0, length);
        Assert.Equal(400, error!.Status);
        Assert.Contains("empty", error!.Message, StringComparison.Ordinal);
        ArrayPool<byte>.Shared.Return(buffer);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Kestrels_413_while_reading_a_body_of_known_length_is_the_same_refusal(bool yields)
    {
        var tooLarge = new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
        var (http, _) = Context(new PiecewiseStream(Bytes(10), [10], yields, failAt: tooLarge), 20);

        var (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(http, Max);

        Assert.Empty(buffer);
        Assert.Equal(0, length);
        Assert.Equal(413, error!.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Any_other_failure_while_reading_is_thrown(bool yields)
    {
        var (http, _) = Context(new PiecewiseStream(Bytes(10), [10], yields, failAt: new IOException("reset")), 20);
        await Assert.ThrowsAsync<IOException>(async () => await RequestBody.ReadOrRefuseAsync(http, Max));
    }

    [Fact]
    public async Task A_content_length_over_the_limit_is_refused_before_reading()
    {
        var stream = new PiecewiseStream(Bytes(10), [10]);
        var (http, _) = Context(stream, Max + 1);
        var (_, _, error) = await RequestBody.ReadOrRefuseAsync(http, Max);
        Assert.Equal(413, error!.Status);
        Assert.Equal(0, stream.Reads);
    }

    [Fact]
    public async Task A_body_without_content_length_lowers_Kestrels_limit_and_is_read_to_its_end()
    {
        var bytes = Bytes(500);
        var stream = new PiecewiseStream(bytes, [250, 250]);
        var (http, limit) = Context(stream, null);

        var (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(http, Max);

        Assert.Null(error);
        Assert.Equal(bytes, buffer.AsSpan(0, length).ToArray());
        Assert.Equal(3, stream.Reads); // the last one returns 0
        Assert.Equal(Max, limit.MaxRequestBodySize);
        ArrayPool<byte>.Shared.Return(buffer);
    }

    [Fact]
    public async Task A_body_without_content_length_over_the_limit_is_refused()
    {
        var (http, _) = Context(new PiecewiseStream(Bytes(Max + 10), []), null);
        var (buffer, _, error) = await RequestBody.ReadOrRefuseAsync(http, Max);
        Assert.Equal(413, error!.Status);
        ArrayPool<byte>.Shared.Return(buffer);
    }
}
