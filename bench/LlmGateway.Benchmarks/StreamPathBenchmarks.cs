using System.Text;
using System.Threading.Tasks.Sources;
using BenchmarkDotNet.Attributes;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;
using LlmGateway.Providers.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Benchmarks;

/// <summary>
/// A streamed miss as a whole, on the gateway's real services (<see cref="GatewayServices"/>): POST /v1/chat/completions
/// with stream:true through the handler every request runs, the pipeline, the executor's commit, the
/// <see cref="Pipeline.AnswerStream"/> and the handler's SSE relay, against an OpenAI stream whose chunks arrive one by
/// one (<see cref="ChunkFeed"/>): every read waits and is resumed by its chunk, as each is over a socket, so each async
/// level between the upstream's body and the client's flush suspends and resumes per chunk. What the bench's stream
/// phase pays per stream above HttpClient and Kestrel.
/// </summary>
[MemoryDiagnoser]
public class StreamPathBenchmarks
{
    private static readonly byte[] s_body = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Samples.MissBody)
        .Replace("\"max_tokens\":256", "\"max_tokens\":256,\"stream\":true,\"stream_options\":{\"include_usage\":true}", StringComparison.Ordinal));

    private static readonly byte[][] s_frames = [.. Samples.StreamEvents.Select(e => (byte[])[.. "data: "u8, .. e, .. "\n\n"u8]), "data: [DONE]\n\n"u8.ToArray()];

    private GatewayServices _services = null!;
    private ChatCompletionsHandler _handler = null!;
    private ChunkFeed _feed = null!;
    private readonly ClientBody _client = new();

    [GlobalSetup]
    public void Setup()
    {
        if (s_body.AsSpan().IndexOf("\"stream\":true"u8) < 0) throw new InvalidOperationException("the stream body has no stream:true");
        _services = GatewayServices.StartAsync(fakeUpstream: true).GetAwaiter().GetResult();
        _handler = _services.Get<ChatCompletionsHandler>();
        FakeUpstream.Streams = request =>
        {
            _feed = new ChunkFeed();
            return new OpenAiChatStream("openai", new HttpResponseMessage(System.Net.HttpStatusCode.OK), _feed, request.Chat.EstimatedPromptTokens);
        };

        // The row runs once here and is checked to be the path it names: a stream answered by the provider (not the cache,
        // not an error), every upstream read waiting for its chunk, the client getting every event and [DONE] byte for
        // byte, one write per chunk after the commit (the pending events and the last one with [DONE] go together).
        var http = Context();
        if (ChatCompletions_Stream_ChunksArrivingAlone(http) != 200) throw new InvalidOperationException($"the stream row answered {http.Response.StatusCode}");
        var headers = http.Response.Headers;
        if (headers[GatewayHeaders.Cache] != "bypass" || headers[GatewayHeaders.Provider] != "openai" || http.Response.ContentType != "text/event-stream; charset=utf-8")
            throw new InvalidOperationException($"the row is not a stream answered by the provider: cache {headers[GatewayHeaders.Cache]}, provider {headers[GatewayHeaders.Provider]}, type {http.Response.ContentType}");
        if (_feed.ReadsThatDidNotWait != 0) throw new InvalidOperationException($"{_feed.ReadsThatDidNotWait} upstream reads found their chunk already there");
        byte[] expected = [.. s_frames.SelectMany(f => f)];
        if (!_client.Written.SequenceEqual(expected)) throw new InvalidOperationException($"the client got {_client.Written.Count} bytes, not the stream's {expected.Length} unchanged");
        if (_client.Writes is < 15 or > 23) throw new InvalidOperationException($"the client got {_client.Writes} writes for {s_frames.Length} chunks");
        Console.WriteLine($"// stream row: {_client.Writes} client writes for {s_frames.Length} upstream chunks, {_client.Written.Count} bytes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        FakeUpstream.Streams = null;
        _services.Dispose();
    }

    /// <summary>
    /// One streamed request, its 23 chunks (role, 20 words, finish, usage) and [DONE] each arriving alone on this thread,
    /// so every level resumes here (their pooled boxes come from this thread's cache: exact bytes).
    /// </summary>
    [Benchmark]
    public int ChatCompletions_Stream_ChunksArrivingAlone() => ChatCompletions_Stream_ChunksArrivingAlone(Context());

    private int ChatCompletions_Stream_ChunksArrivingAlone(HttpContext http)
    {
        _client.Reset();
        var running = _handler.HandleAsync(http);
        foreach (var frame in s_frames) _feed.Arrive(frame);
        _feed.End();
        running.GetAwaiter().GetResult();
        return http.Response.StatusCode;
    }

    private DefaultHttpContext Context() => MissPathBenchmarks.ChatContext(_services.Services, s_body, _client);

    /// <summary>The client's end: counts the writes that reach it and, when asked, keeps the bytes.</summary>
    private sealed class ClientBody : Stream
    {
        public List<byte> Written { get; } = [];
        public int Writes { get; private set; }

        public void Reset()
        {
            Written.Clear();
            Writes = 0;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Writes++;
            if (Written.Count < 64 * 1024) Written.AddRange(buffer);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>
/// An upstream body whose chunks arrive one at a time: a read with nothing there waits (a pending <see cref="ValueTask{Int32}"/>,
/// no allocation), and <see cref="Arrive"/> completes it on the caller's thread, where its awaiters resume, as a socket's
/// receive completes a read of HttpClient's response stream.
/// </summary>
internal sealed class ChunkFeed : Stream, IValueTaskSource<int>
{
    private ManualResetValueTaskSourceCore<int> _source;
    private Memory<byte> _waiting;
    private bool _reading;
    private bool _ended;

    /// <summary>Reads that found their bytes there (the rows expect none: every chunk arrives alone).</summary>
    public int ReadsThatDidNotWait { get; private set; }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_reading) throw new InvalidOperationException("two reads at once");
        if (_ended)
        {
            ReadsThatDidNotWait++;
            return ValueTask.FromResult(0);
        }
        _source.Reset();
        _waiting = buffer;
        _reading = true;
        return new ValueTask<int>(this, _source.Version);
    }

    /// <summary>The next chunk arrives: the waiting read takes it (and its awaiters run, on this thread, until they read again).</summary>
    public void Arrive(byte[] chunk)
    {
        if (!_reading) throw new InvalidOperationException("a chunk arrived with no read waiting for it");
        if (chunk.Length > _waiting.Length) throw new InvalidOperationException("the chunk is larger than the read's buffer");
        chunk.CopyTo(_waiting.Span);
        _reading = false;
        _waiting = default;
        _source.SetResult(chunk.Length);
    }

    /// <summary>The body ends: a waiting read gets 0.</summary>
    public void End()
    {
        _ended = true;
        if (!_reading) return;
        _reading = false;
        _waiting = default;
        _source.SetResult(0);
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);
    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override void Flush() { }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
