using BenchmarkDotNet.Attributes;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Providers.Anthropic;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Streaming;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.Benchmarks;

/// <summary>The response side: parse the upstream's SSE, inspect each chunk, frame and flush it to the client.</summary>
[MemoryDiagnoser]
public class StreamBenchmarks
{
    private HttpResponse _response = null!;
    private ChunkBuilder _chunks = null!;
    private ChatRequest _chat = null!;
    private ProviderRequest _providerRequest;

    [GlobalSetup]
    public void Setup()
    {
        // A real HttpResponse whose body is a pipe over a stream that discards: what is measured is
        // the framing and the flush calls (each under the response's write timeout, which reads its limit
        // from the request's services), not a socket.
        var context = new DefaultHttpContext { RequestServices = new ServiceCollection().BuildServiceProvider() };
        context.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
        _response = context.Response;
        _chunks = new ChunkBuilder("chatcmpl-bench", 1730000000, "claude-3-5-haiku");
        _chat = ChatRequest.TryParse(Samples.MissBody, out _) ?? throw new InvalidOperationException("the sample body does not parse");
        _providerRequest = new ProviderRequest(_chat, "bench-model", new ModelOptions { Provider = "anthropic", UpstreamModel = "claude-3-5-haiku-20241022" });
    }

    [GlobalCleanup]
    public void Cleanup() => _chat.Dispose();

    /// <summary>
    /// SSE chunk translation: a 20-word Anthropic stream read event by event and turned into OpenAI
    /// chunks by the provider's own stream (what a streamed answer from a non-OpenAI provider costs per stream).
    /// </summary>
    [Benchmark]
    public int AnthropicChatStream_Translate20Chunks()
    {
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        var stream = new AnthropicChatStream("anthropic", _providerRequest, response, new MemoryStream(Samples.AnthropicStream, writable: false), TimeProvider.System);
        var events = 0;
        try
        {
            while (stream.ReadAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is { Kind: not StreamEventKind.End and not StreamEventKind.Failed }) events++;
        }
        finally
        {
            stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return events;
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
