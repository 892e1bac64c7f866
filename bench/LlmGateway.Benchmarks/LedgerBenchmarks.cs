using BenchmarkDotNet.Attributes;
using LlmGateway.Usage;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The usage ledger's per-request work on the request thread, the record's JSON: the source-generated serializer
/// (what the ledger used) against <see cref="LedgerJson"/> (what it uses), the same bytes, in one run so their
/// ratio holds on a loaded machine. <c>PipelineBenchmarks.Record_Ledger</c> is the whole step, the store's copy included.
/// </summary>
[MemoryDiagnoser]
public class LedgerBenchmarks
{
    private readonly LedgerEntry _entry = new();

    [GlobalSetup]
    public void Setup()
    {
        _entry.Set(PipelineBenchmarks.CompletedRecord("req_0123456789abcdef0123456789abcdef"));
        var serializer = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(_entry, UsageJsonContext.Default.LedgerEntry);
        if (!LedgerJson.TryWrite(_entry, new byte[1024], out _) || !serializer.AsSpan().SequenceEqual(LedgerJson.Serialize(_entry)))
            throw new InvalidOperationException("the bench's entry does not take LedgerJson's own path, or its bytes differ from the serializer's");
    }

    [Benchmark(Baseline = true)]
    public byte[] Entry_Serializer() => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(_entry, UsageJsonContext.Default.LedgerEntry);

    [Benchmark]
    public byte[] Entry_LedgerJson() => LedgerJson.Serialize(_entry);
}
