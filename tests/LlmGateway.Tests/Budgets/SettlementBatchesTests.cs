using LlmGateway.Budgets;
using LlmGateway.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmGateway.Tests.Budgets;

/// <summary>The group commit of settlements bound for a remote store, on a store whose answers the test releases.</summary>
public class SettlementBatchesTests
{
    private static readonly DateTimeOffset s_end = new(2026, 12, 4, 0, 0, 0, TimeSpan.Zero);

    private static AttemptCounters Counters(string scope) =>
        new([new ScopeCounter(scope, BudgetScopes.Daily, 1m, s_end, new CounterLimit($"budget:{scope}:d", 1_000_000_000, s_end))]);

    private static Settlement Settlement(string id, long spent = 5) => new(new Reservation(id, 10), spent);

    /// <summary>Every store call, each answered when the test says.</summary>
    private sealed class HeldStore
    {
        public List<(CounterRef[] Refs, Settlement[] Settlements, TaskCompletionSource<CounterState[]> Answer)> Calls { get; } = [];

        public Task<CounterState[]> SettleAsync(CounterRef[] refs, IReadOnlyList<Settlement> settlements)
        {
            var answer = new TaskCompletionSource<CounterState[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (Calls) Calls.Add((refs, [.. settlements], answer));
            return answer.Task;
        }

        public int Count
        {
            get
            {
                lock (Calls) return Calls.Count;
            }
        }
    }

    private sealed class Outcomes
    {
        public List<(AttemptCounters Counters, CounterState[] States)> Settled { get; } = [];
        public List<(AttemptCounters Counters, Settlement Settlement)> Kept { get; } = [];

        public SettlementBatches Batches(Func<CounterRef[], IReadOnlyList<Settlement>, Task<CounterState[]>> settle) => new(settle,
            (c, s) =>
            {
                lock (this) Settled.Add((c, s));
                return ValueTask.CompletedTask;
            },
            (c, s) =>
            {
                lock (this) Kept.Add((c, s));
                return ValueTask.CompletedTask;
            },
            NullLogger.Instance);
    }

    /// <summary>Batches on a <see cref="HeldStore"/>, with what they hand back.</summary>
    private static (HeldStore Store, Outcomes Outcomes, SettlementBatches Batches) OnHeldStore()
    {
        var store = new HeldStore();
        var outcomes = new Outcomes();
        return (store, outcomes, outcomes.Batches((r, s) => store.SettleAsync(r, s)));
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("Timed out waiting for: " + what);
            await Task.Delay(5);
        }
    }

    [Fact]
    public void One_at_a_time_each_settlement_goes_at_once()
    {
        var (store, _, batches) = OnHeldStore();
        var a = Counters("global");

        batches.Add(a, Settlement("r1"));

        // Sent on the caller's thread, before Add returned: no timer, no window.
        Assert.Equal(1, store.Count);
        Assert.Equal(["r1"], store.Calls[0].Settlements.Select(s => s.Reservation.Id));
        Assert.Equal(0, batches.Pending);
    }

    [Fact]
    public async Task Settlements_that_end_while_a_batch_is_out_go_together_one_call_per_counter_set()
    {
        var (store, outcomes, batches) = OnHeldStore();
        var a = Counters("global");
        var b = Counters("key:team");

        batches.Add(a, Settlement("r1"));
        batches.Add(a, Settlement("r2"));
        batches.Add(b, Settlement("r3"));
        batches.Add(a, Settlement("r4"));

        Assert.Equal(1, store.Count);
        Assert.Equal(3, batches.Pending);

        store.Calls[0].Answer.SetResult([new CounterState(5, 30)]);
        await UntilAsync(() => store.Count == 3, "the next batch sent");

        var next = store.Calls.Skip(1).ToList();
        Assert.Equal(["r2", "r4"], next.Single(c => c.Refs[0].Key == "budget:global:d").Settlements.Select(s => s.Reservation.Id));
        Assert.Equal(["r3"], next.Single(c => c.Refs[0].Key == "budget:key:team:d").Settlements.Select(s => s.Reservation.Id));
        Assert.Equal(0, batches.Pending);

        foreach (var call in next) call.Answer.SetResult([new CounterState(20, 0)]);
        await UntilAsync(() => outcomes.Settled.Count == 3, "every group's answer handed back");
        Assert.Equal(2, outcomes.Settled.Count(s => ReferenceEquals(s.Counters, a)));
        Assert.Empty(outcomes.Kept);
    }

    [Fact]
    public async Task What_the_store_does_not_take_comes_back_to_be_kept_and_the_next_batch_still_goes()
    {
        var store = new HeldStore();
        var outcomes = new Outcomes();
        var calls = 0;
        var batches = outcomes.Batches((r, s) => ++calls switch
        {
            1 => store.SettleAsync(r, s),
            2 => throw new StoreUnavailableException("budget_settle", "timed out"), // refused before a call (the breaker)
            _ => Task.FromException<CounterState[]>(new InvalidOperationException("a script error")),
        });
        var a = Counters("global");
        var b = Counters("key:team");

        batches.Add(a, Settlement("r1"));
        batches.Add(a, Settlement("r2"));
        batches.Add(b, Settlement("r3"));
        store.Calls[0].Answer.SetException(new StoreUnavailableException("budget_settle", "timed out"));

        await UntilAsync(() => outcomes.Kept.Count == 3, "every settlement handed back");
        Assert.Equal(["r1", "r2", "r3"], outcomes.Kept.Select(k => k.Settlement.Reservation.Id).Order());
        Assert.Empty(outcomes.Settled);

        // Nothing stuck: the sender was let go.
        calls = 0;
        batches.Add(a, Settlement("r5"));
        Assert.Equal(2, store.Count);
        store.Calls[1].Answer.SetResult([new CounterState(5, 0)]);
        await UntilAsync(() => outcomes.Settled.Count == 1, "the next settlement settled");
    }

    [Fact]
    public async Task DrainAsync_waits_for_the_batch_out_and_sends_what_is_queued()
    {
        var (store, outcomes, batches) = OnHeldStore();
        var a = Counters("global");

        batches.Add(a, Settlement("r1"));
        batches.Add(a, Settlement("r2"));
        var drained = batches.DrainAsync();
        await Task.Delay(50);
        Assert.False(drained.IsCompleted);

        store.Calls[0].Answer.SetResult([new CounterState(5, 10)]);
        await UntilAsync(() => store.Count == 2, "the queued settlement sent");
        Assert.False(drained.IsCompleted);
        store.Calls[1].Answer.SetResult([new CounterState(10, 0)]);

        await drained.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, outcomes.Settled.Count);
        Assert.Equal(0, batches.Pending);
    }

    [Fact]
    public async Task Many_threads_adding_at_once_lose_no_settlement_and_leave_none_waiting()
    {
        var outcomes = new Outcomes();
        var sent = new System.Collections.Concurrent.ConcurrentBag<string>();
        var batches = outcomes.Batches(async (r, s) =>
        {
            await Task.Yield();
            foreach (var x in s) sent.Add(x.Reservation.Id);
            return [new CounterState(1, 0)];
        });
        var a = Counters("global");

        await Parallel.ForEachAsync(Enumerable.Range(0, 2000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, (i, _) =>
        {
            batches.Add(a, Settlement("r" + i));
            return ValueTask.CompletedTask;
        });
        // Without a drain: a settlement queued just as the sender let go must still go by itself, not wait for the next one.
        await UntilAsync(() => sent.Count == 2000, "every settlement sent");
        Assert.Equal(2000, sent.Distinct().Count());
        Assert.Equal(0, batches.Pending);
    }
}
