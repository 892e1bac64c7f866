using System.Net;
using LlmGateway.Providers;

namespace LlmGateway.Tests.Providers;

public class PooledBodyTests
{
    /// <summary>A body that arrives a few bytes per read, with or without a Content-Length.</summary>
    private sealed class TrickleContent(byte[] bytes, bool announceLength) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => throw new NotSupportedException();

        protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult<Stream>(new TrickleStream(bytes));

        // As a handler's answer content: the stream is there at once, asked for with or without a task.
        protected override Stream CreateContentReadStream(CancellationToken cancellationToken) => new TrickleStream(bytes);

        protected override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return announceLength;
        }
    }

    private sealed class TrickleStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, 1000)], cancellationToken);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(700, true)]
    [InlineData(700, false)]
    [InlineData(100_000, true)]
    [InlineData(100_000, false)]
    public async Task The_whole_body_is_read_whatever_its_size_and_however_it_arrives(int size, bool announceLength)
    {
        var bytes = Enumerable.Range(0, size).Select(i => (byte)(i * 7)).ToArray();

        var body = await ProviderHttp.ReadPooledAsync(new TrickleContent(bytes, announceLength), CancellationToken.None);
        try
        {
            Assert.Equal(bytes, body.Span.ToArray());
        }
        finally
        {
            body.Return();
        }
    }

    [Fact]
    public async Task A_completed_answer_keeps_its_body_until_it_is_disposed()
    {
        var body = await ProviderHttp.ReadPooledAsync(new TrickleContent("{\"ok\":true}"u8.ToArray(), true), CancellationToken.None);
        var response = ProviderResponse.Completed(body, new TokenUsage(1, 2), "stop");

        Assert.Equal("{\"ok\":true}"u8.ToArray(), response.Body.ToArray());
        await response.DisposeAsync();
        await response.DisposeAsync(); // the buffer went back once; a second dispose does nothing
    }

    [Theory]
    [InlineData(100, true)]
    [InlineData(100, false)]
    [InlineData(ProviderHttp.MaxErrorBodyBytes, true)]
    [InlineData(ProviderHttp.MaxErrorBodyBytes + 1, false)]
    [InlineData(200_000, true)]
    [InlineData(200_000, false)]
    public async Task An_error_body_is_read_whole_up_to_its_limit_and_cut_there(int size, bool announceLength)
    {
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);

        var read = await ProviderHttp.ReadBoundedAsync(new TrickleContent(bytes, announceLength), CancellationToken.None);

        Assert.Equal(bytes.AsSpan(0, Math.Min(size, ProviderHttp.MaxErrorBodyBytes)).ToArray(), read);
    }
}
