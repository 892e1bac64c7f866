using BenchmarkDotNet.Attributes;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Streaming;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Benchmarks;

/// <summary>The response side: parse the upstream's SSE, inspect each chunk, frame and flush it to the client.</summary>
[MemoryDiagnoser]
public class StreamBenchmarks
{
    private HttpResponse _response = null!;
    private ChunkBuilder _chunks = null!;

    [GlobalSetup]
    public void Setup()
    {
        // A real HttpResponse whose body is a pipe over a stream that discards: what is measured is
        // the framing and the flush calls, not a socket.
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
        _response = context.Response;
        _chunks = new ChunkBuilder("chatcmpl-bench", 1730000000, "claude-3-5-haiku");
    }

    /// <summary>Every event of a 20-chunk stream, read from the body with the gateway's SSE reader.</summary>
    [Benchmark]
    public int SseReader_ReadRealisticStream()
    {
        using var reader = new SseReader(new MemoryStream(Samples.Stream, writable: false));
        var events = 0;
        while (reader.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult()) events++;
        return events;
    }

    /// <summary>The same stream's events framed as data: lines and flushed one by one, as the handler does.</summary>
    [Benchmark]
    public bool SseResponseWriter_FrameAndFlushStream()
    {
        var ok = true;
        foreach (var data in Samples.StreamEvents)
        {
            ok &= SseResponseWriter.WriteAndFlushAsync(_response, data, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        return ok;
    }

    /// <summary>What the OpenAI pass-through learns from one content chunk (content seen, finish, usage).</summary>
    [Benchmark]
    public bool OpenAiResponseInspector_ContentChunk() => OpenAiResponseInspector.Inspect(Samples.ContentChunk).HasContent;

    [Benchmark]
    public int OpenAiResponseInspector_UsageChunk() => OpenAiResponseInspector.Inspect(Samples.UsageChunk).Usage?.Total ?? 0;

    /// <summary>Translation output for providers whose wire format is not OpenAI's: one text delta as an OpenAI chunk.</summary>
    [Benchmark]
    public int ChunkBuilder_ContentChunk() => _chunks.Content(" replacement").Length;

    /// <summary>Usage from a translated stream, as the final usage chunk.</summary>
    [Benchmark]
    public int ChunkBuilder_UsageChunk() => _chunks.Usage(new TokenUsage(236, 20)).Length;
}
