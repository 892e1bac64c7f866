using BenchmarkDotNet.Attributes;
using LlmGateway.Http;
using LlmGateway.Pipeline;
using LlmGateway.Providers.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Benchmarks;

/// <summary>The request side: read the fields the gateway acts on (cacheable body), rewrite the model for the upstream. The cache key and the other steps are in <see cref="PipelineBenchmarks"/>.</summary>
[MemoryDiagnoser]
public class RequestBenchmarks
{
    private ChatRequest _chat = null!;

    [GlobalSetup]
    public void Setup()
    {
        _chat = ChatRequest.TryParse(Samples.RequestBody, out _) ?? throw new InvalidOperationException("the sample body does not parse");
        // ChatRequest_TryParse_OpenAiBody names the path that renames the model without a document: the miss body must take it.
        using var miss = ChatRequest.TryParse(Samples.MissBody, out _)!;
        if (miss.Stream || miss.MetadataTaskType is not null || !miss.TryGetModelSplice(out _, out _))
            throw new InvalidOperationException("the miss body would not be written from the model splice");
        _body.Request.Body = _bodyStream;
        _body.Request.ContentLength = Samples.MissBody.Length;
        if (RequestBody_Read_KnownLength().GetAwaiter().GetResult() != Samples.MissBody.Length) throw new InvalidOperationException("the body row did not read the whole miss body");
    }

    private readonly DefaultHttpContext _body = new();
    private readonly MemoryStream _bodyStream = new(Samples.MissBody, writable: false);

    /// <summary>
    /// Step 1: the miss body, its Content-Length known and all of it received (as a small body nearly always is), read
    /// into a pooled buffer under the size limit, as every model-call ingress reads its body.
    /// </summary>
    [Benchmark]
    public async Task<int> RequestBody_Read_KnownLength()
    {
        _bodyStream.Position = 0;
        var (buffer, length, error) = await RequestBody.ReadOrRefuseAsync(_body, 4 * 1024 * 1024).ConfigureAwait(false);
        System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        return error is null ? length : -1;
    }

    [GlobalCleanup]
    public void Cleanup() => _chat.Dispose();

    /// <summary>Step 2 of the handler: model, stream and the checked fields out of a ~1 KB body.</summary>
    [Benchmark]
    public int ChatRequest_TryParse()
    {
        using var chat = ChatRequest.TryParse(Samples.RequestBody, out _)!;
        return chat.EstimatedPromptTokens;
    }

    /// <summary>
    /// Step 2 and the upstream's body of a non-streamed miss on an OpenAI-compatible upstream (the bench's miss
    /// body, temperature 0.2): all that the miss path reads of the request, from the bytes to the body sent.
    /// </summary>
    [Benchmark]
    public int ChatRequest_TryParse_OpenAiBody()
    {
        using var chat = ChatRequest.TryParse(Samples.MissBody, out _)!;
        using var content = OpenAiRequestWriter.Content(chat, "gpt-4o-mini");
        return content.Written.Length;
    }

    /// <summary>Step 2, then the body's document, as the cache key, a streamed request's writer and the other providers' writers read it.</summary>
    [Benchmark]
    public int ChatRequest_TryParse_Document()
    {
        using var chat = ChatRequest.TryParse(Samples.MissBody, out _)!;
        return chat.Root.GetProperty("messages"u8).GetArrayLength();
    }

    /// <summary>Step 2's headers: the routing and cache hints of a request that sends none (the bench's), only a content type.</summary>
    [Benchmark]
    public bool GatewayHeaders_ReadHints_None() => GatewayHeaders.ReadHints(s_plainHeaders, out _).NoCache;

    private static readonly HeaderDictionary s_plainHeaders = new() { ["Content-Type"] = "application/json" };

    /// <summary>The body as the upstream receives it, with the model renamed (in a pooled buffer, given back on dispose).</summary>
    [Benchmark]
    public int OpenAiRequestWriter_Write_ModelRewrite()
    {
        using var content = OpenAiRequestWriter.Content(_chat, "gpt-4o-mini");
        return content.Written.Length;
    }
}
