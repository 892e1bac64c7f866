using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using LlmGateway.Pipeline;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Benchmarks;

/// <summary>The request side of the pass-through path: read the fields the gateway acts on, rewrite the model, key the cache.</summary>
[MemoryDiagnoser]
public class RequestBenchmarks
{
    private ChatRequest _chat = null!;

    [GlobalSetup]
    public void Setup() => _chat = ChatRequest.TryParse(Samples.RequestBody, out _) ?? throw new InvalidOperationException("the sample body does not parse");

    [GlobalCleanup]
    public void Cleanup() => _chat.Dispose();

    /// <summary>Step 2 of the handler: model, stream and the checked fields out of a ~1 KB body.</summary>
    [Benchmark]
    public int ChatRequest_TryParse()
    {
        using var chat = ChatRequest.TryParse(Samples.RequestBody, out _)!;
        return chat.EstimatedPromptTokens;
    }

    /// <summary>The body as the upstream receives it, with the model renamed.</summary>
    [Benchmark]
    public int OpenAiRequestWriter_Write_ModelRewrite() => OpenAiRequestWriter.Write(_chat, "gpt-4o-mini").Length;

    /// <summary>
    /// Stand-in until the Caching folder lands: SHA-256 of the body bytes to a hex key, the floor that
    /// any cache key over the canonical request pays. Replace with the real key builder when it exists.
    /// </summary>
    [Benchmark]
    public string CacheKey_Sha256OfBody_StandIn()
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Samples.RequestBody, hash);
        return Convert.ToHexStringLower(hash);
    }
}
