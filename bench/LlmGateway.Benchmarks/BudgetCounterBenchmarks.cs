using BenchmarkDotNet.Attributes;
using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The embedded store's part of a request's budget step (reserve, then settle, on a day's and a month's global
/// counter) with what a busy hour leaves in the counters: <see cref="PassThroughMarkers"/> pass-through calls
/// settled in the last hour, each remembered for <see cref="Settlement.MarkerLifetime"/> so a resent settlement
/// counts once. The cost must not grow with them: it did (every use looked through every marker), which made
/// each request slower with every priced pass-through call of the last hour.
/// </summary>
[MemoryDiagnoser]
public class BudgetCounterBenchmarks
{
    private static readonly DateTimeOffset Start = new(2030, 3, 14, 12, 0, 0, TimeSpan.Zero);
    private static readonly CounterLimit[] s_counters =
    [
        new("budget:global:day", long.MaxValue / 4, Start + TimeSpan.FromDays(1)),
        new("budget:global:month", long.MaxValue / 4, Start + TimeSpan.FromDays(30)),
    ];
    private static readonly CounterRef[] s_refs = [s_counters[0].Ref, s_counters[1].Ref];

    private MemoryStore _store = null!;
    private string[] _ids = null!;
    private int _next;

    [Params(0, 100_000)]
    public int PassThroughMarkers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        for (var i = 0; i < PassThroughMarkers; i++)
        {
            _store.SettleAsync(s_refs, [new Settlement(new Reservation($"pt-{i}", 0), 10, Held: false)], Start).GetAwaiter().GetResult();
        }
        _ids = [.. Enumerable.Range(0, 1024).Select(i => $"req-{i}")];
    }

    [Benchmark]
    public async Task<CounterState[]> ReserveThenSettle()
    {
        var id = _ids[_next++ & 1023];
        var now = Start + TimeSpan.FromSeconds(1);
        await _store.ReserveAsync(s_counters, id, 100, now + TimeSpan.FromMinutes(5), now);
        return await _store.SettleAsync(s_refs, [new Settlement(new Reservation(id, 100), 60)], now);
    }
}
