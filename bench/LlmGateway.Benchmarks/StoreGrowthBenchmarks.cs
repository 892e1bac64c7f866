using BenchmarkDotNet.Attributes;
using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The embedded store's rate-limit step for a key it holds no state for (a key's first request, or its first after
/// it went idle) while <see cref="LiveKeys"/> other keys are busy within their window. The cost must not grow with
/// them: it did once there were more than 10,000 (every new key looked through all of them, under the lock).
/// </summary>
[MemoryDiagnoser]
public class StoreGrowthBenchmarks
{
    private const long WindowUs = 60_000_000;
    private static readonly long s_nowUs = new DateTimeOffset(2030, 3, 14, 12, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000;

    private MemoryStore _store = null!;
    private string[] _keys = null!;
    private int _next;

    [Params(0, 20_000)]
    public int LiveKeys { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        for (var i = 0; i < LiveKeys; i++) _store.GcraAcquireAsync($"rl:k{i}:rpm", WindowUs / 100, WindowUs, s_nowUs).GetAwaiter().GetResult();
        _keys = [.. Enumerable.Range(0, 1024).Select(i => $"rl:new{i}:rpm")];
    }

    /// <summary>A new key takes a request, then gives it back (its state goes), so the map stays at <see cref="LiveKeys"/>.</summary>
    [Benchmark]
    public async Task NewKeyAcquireThenRelease()
    {
        var key = _keys[_next++ & 1023];
        await _store.GcraAcquireAsync(key, WindowUs / 100, WindowUs, s_nowUs);
        await _store.GcraAdjustAsync(key, -WindowUs / 100, s_nowUs);
    }
}
