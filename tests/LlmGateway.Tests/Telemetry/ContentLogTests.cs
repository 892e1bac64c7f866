using System.Text;
using LlmGateway.Http;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LlmGateway.Tests.Telemetry;

/// <summary>The content line, written after the request was answered, when the connection behind the request body is no longer there to read.</summary>
public class ContentLogTests
{
    private const string Body = """{"model":"test-model","messages":[{"role":"user","content":"secret-prompt-marker"}]}""";

    [Fact]
    public async Task The_line_is_written_with_its_prompt_when_the_client_left_once_it_had_its_answer()
    {
        var logger = new Capture();
        var http = new DefaultHttpContext();
        http.Request.ContentLength = Encoding.UTF8.GetByteCount(Body);
        http.Request.Body = new LeftTransport(Encoding.UTF8.GetBytes(Body));

        await new ContentLog(logger).RunAsync(http, async http =>
        {
            // The ingress's own read: to the Content-Length, no further.
            var (rented, length, error) = await RequestBody.ReadOrRefuseAsync(http, 1 << 20);
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            Assert.Null(error);
            Assert.Equal(Body.Length, length);
            http.Response.Headers[GatewayHeaders.RequestId] = "req_left";
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync("""{"choices":[{"message":{"role":"assistant","content":"Poseidonia"}}]}""");
        });

        var line = Assert.Single(logger.Lines);
        Assert.Contains("req_left", line, StringComparison.Ordinal);
        Assert.Contains("secret-prompt-marker", line, StringComparison.Ordinal);
        Assert.Contains("Poseidonia", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_claimed_length_beyond_what_was_buffered_rents_nothing_by_it_and_logs_no_prompt()
    {
        var logger = new Capture();
        var http = new DefaultHttpContext();
        // The client claims close to 2 GB; only the small body reaches the buffer (the handler reads no more).
        http.Request.ContentLength = int.MaxValue - 64;
        http.Request.Body = new LeftTransport(Encoding.UTF8.GetBytes(Body));

        var before = GC.GetAllocatedBytesForCurrentThread();
        await new ContentLog(logger).RunAsync(http, async http =>
        {
            var buffer = new byte[Body.Length];
            await http.Request.Body.ReadExactlyAsync(buffer);
            http.Response.Headers[GatewayHeaders.RequestId] = "req_claimed";
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync("""{"choices":[{"message":{"role":"assistant","content":"Poseidonia"}}]}""");
        });
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes for a body of {Body.Length}");
        var line = Assert.Single(logger.Lines);
        Assert.Contains("req_claimed", line, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-prompt-marker", line, StringComparison.Ordinal);
    }

    /// <summary>
    /// A request body whose client has gone: its bytes, then, where the end of the body would be read, what
    /// WebApplicationFactory's in-memory transport throws once the client disposed its response (seen there).
    /// </summary>
    private sealed class LeftTransport(byte[] body) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position == body.Length) throw new OperationCanceledException("Read was canceled on underlying PipeReader.");
            var count = Math.Min(buffer.Length, body.Length - _position);
            body.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override void Flush() => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class Capture : ILogger<ContentLog>
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
