using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Streaming;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The per-chunk steps of a live stream, as they run when each chunk arrives on its own (the upstream's
/// read waits, then resumes): the SSE reader and the OpenAI pass-through resumed chunk by chunk, and the
/// client write under the write timeout. <see cref="StreamBenchmarks"/> reads a whole body that is already
/// there, where no read ever waits; here every read does, as in a real stream, so the cost of resuming
/// the async readers (and what each resumption allocates) shows per chunk.
/// </summary>
[MemoryDiagnoser]
public class StreamChunkBenchmarks
{
    private static readonly PipeOptions s_inline = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0, useSynchronizationContext: false);

    /// <summary>Each event of the sample stream framed as the upstream sends it, one frame per network read.</summary>
    private byte[][] _frames = null!;
    private static readonly byte[] s_done = "data: [DONE]\n\n"u8.ToArray();
    private HttpContext _http = null!;

    [GlobalSetup]
    public void Setup()
    {
        _frames = [.. Samples.StreamEvents.Select(e => (byte[])[.. "data: "u8, .. e, .. "\n\n"u8])];
        _http = new DefaultHttpContext { RequestServices = new ServiceCollection().BuildServiceProvider() };
        _http.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
    }

    /// <summary>
    /// A 23-event OpenAI stream through <see cref="OpenAiChatStream"/> (line reader, SSE reader, chunk inspection),
    /// every read started before its chunk arrives and resumed by it: what a real stream costs the upstream side.
    /// </summary>
    [Benchmark]
    public int OpenAiChatStream_EachChunkArrivingAlone()
    {
        var pipe = new Pipe(s_inline);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        var stream = new OpenAiChatStream("openai", response, pipe.Reader.AsStream(), 236);
        var events = 0;
        foreach (var frame in _frames)
        {
            var read = stream.ReadAsync(CancellationToken.None);
            if (read.IsCompleted) throw new InvalidOperationException("the read did not wait for its chunk");
            pipe.Writer.Write(frame);
            _ = pipe.Writer.FlushAsync().GetAwaiter().GetResult();
            if (read.GetAwaiter().GetResult().Kind is StreamEventKind.Chunk or StreamEventKind.Content or StreamEventKind.Usage) events++;
        }
        var end = stream.ReadAsync(CancellationToken.None);
        pipe.Writer.Write(s_done);
        pipe.Writer.Complete();
        if (end.GetAwaiter().GetResult().Kind != StreamEventKind.End) throw new InvalidOperationException("the stream did not end");
        stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return events;
    }

    /// <summary>
    /// 23 client writes that complete at once (the socket buffers take them), each run under the response's
    /// write timeout, as <see cref="SseResponseWriter.FlushAsync"/> does per chunk.
    /// </summary>
    [Benchmark]
    public int ClientWriteTimeout_WritesThatCompleteAtOnce()
    {
        var n = 0;
        for (var i = 0; i < 23; i++)
        {
            var write = ClientWriteTimeout.RunAsync(_http, new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: false)));
            if (!write.GetAwaiter().GetResult().IsCompleted) n++;
        }
        return n;
    }
}
