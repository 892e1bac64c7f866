using LlmGateway.Configuration;
using LlmGateway.Storage;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Storage;

/// <summary>
/// The embedded store over a long run: what it remembers per key, per counter and per mark leaves once it is of no
/// use, and looking for what to drop costs no more than what was added since the last look (not the whole map for
/// every new entry).
/// </summary>
public class MemoryStoreGrowthTests
{
    private static readonly DateTimeOffset Start = new(2030, 3, 14, 12, 0, 0, TimeSpan.Zero);

    private static long Micros(DateTimeOffset t) => (t - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;

    [Fact]
    public async Task Once_marks_whose_time_has_passed_are_dropped_so_the_map_does_not_grow_with_the_days()
    {
        var time = new FakeTimeProvider(Start);
        var store = new MemoryStore(new StoreOptions(), time);
        // A budget alert's mark lives as long as its counter's window: a day's worth of them, day after day.
        for (var day = 0; day < 30; day++)
        {
            for (var i = 0; i < 500; i++) Assert.True(await store.TryMarkOnceAsync($"alert:budget:key:k{i}:d:{day}:0.8", TimeSpan.FromDays(1)));
            time.Advance(TimeSpan.FromDays(1));
        }
        // At most the last sweep's survivors doubled, plus the threshold: not 15,000.
        Assert.InRange(store.OnceHeld, 500, 2 * 1024 + 500);

        // A mark still live survives a sweep and keeps refusing; one past its time is given again.
        Assert.True(await store.TryMarkOnceAsync("live", TimeSpan.FromDays(10)));
        for (var i = 0; i < 3000; i++) await store.TryMarkOnceAsync($"filler-{i}", TimeSpan.FromMilliseconds(1));
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 3000; i++) await store.TryMarkOnceAsync($"more-{i}", TimeSpan.FromMilliseconds(1));
        Assert.False(await store.TryMarkOnceAsync("live", TimeSpan.FromDays(10)));
        Assert.InRange(store.OnceHeld, 1, 2 * 3002 + 1024);
        time.Advance(TimeSpan.FromDays(11));
        Assert.True(await store.TryMarkOnceAsync("live", TimeSpan.FromDays(10)));
    }

    [Fact]
    public async Task Rate_limit_states_are_not_all_looked_through_for_every_new_key_when_many_are_live()
    {
        var store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        var now = Micros(Start);
        var window = TimeSpan.FromMinutes(1).Ticks / TimeSpan.TicksPerMicrosecond;
        // 15,000 keys each busy for the next minute: more live states than the sweep threshold.
        for (var i = 0; i < 15_000; i++) Assert.True((await store.GcraAcquireAsync($"rl:k{i}:rpm", window / 100, window, now)).Allowed);
        var (held, sweepsBefore) = store.TatsHeld();
        Assert.Equal(15_000, held);

        // 5,000 more keys arrive while all of those are still live: each used to cost a look through all 15,000+.
        for (var i = 0; i < 5_000; i++) await store.GcraAcquireAsync($"rl:new{i}:rpm", window / 100, window, now + i);
        var (heldAfter, sweepsAfter) = store.TatsHeld();
        Assert.Equal(20_000, heldAfter);
        Assert.InRange(sweepsAfter - sweepsBefore, 0, 1);

        // Once they are idle, the next sweep drops them, and a key's state is what it was.
        var later = now + 2 * window;
        for (var i = 0; i < 30_000; i++) await store.GcraAcquireAsync($"rl:late{i}:rpm", window / 100, window, later);
        Assert.InRange(store.TatsHeld().Tats, 30_000, 40_000);
        Assert.True((await store.GcraAcquireAsync("rl:late0:rpm", window / 100, window, later)).TatUs > later + window / 100);
    }

    [Fact]
    public async Task Counters_of_past_windows_are_dropped_without_a_look_through_all_counters_for_each_new_one()
    {
        var store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        var dayEnd = Start + TimeSpan.FromDays(1);
        // A day's first request of each of 2,000 keys with a daily limit makes that key's counter.
        for (var i = 0; i < 2_000; i++)
        {
            var granted = await store.ReserveAsync([new CounterLimit($"budget:key:k{i}:d:1", 1_000, dayEnd)], $"r{i}", 10, Start + TimeSpan.FromMinutes(5), Start + TimeSpan.FromSeconds(i));
            Assert.True(granted.Granted);
        }
        Assert.Equal((2_000, 0), store.CountersHeld());

        // The next day's counters: the first one past the old ones' end drops them all, in one look.
        var nextEnd = dayEnd + TimeSpan.FromDays(1);
        for (var i = 0; i < 2_000; i++)
        {
            await store.ReserveAsync([new CounterLimit($"budget:key:k{i}:d:2", 1_000, nextEnd)], $"s{i}", 10, dayEnd + TimeSpan.FromMinutes(5), dayEnd + TimeSpan.FromSeconds(i));
        }
        Assert.Equal((2_000, 1), store.CountersHeld());
        Assert.Equal([new CounterState(0, 10)], await store.ReadCountersAsync([new CounterRef("budget:key:k7:d:2", nextEnd)], dayEnd + TimeSpan.FromMinutes(1)));
        Assert.Equal([default(CounterState)], await store.ReadCountersAsync([new CounterRef("budget:key:k7:d:1", dayEnd)], dayEnd + TimeSpan.FromMinutes(1)));
    }
}
