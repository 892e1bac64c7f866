using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Tests.Storage;

/// <summary>
/// The embedded store's budget counters over a long run: what they remember (a marker per pass-through call, a
/// reservation per call in flight) leaves on time, so a counter does not grow with its history.
/// </summary>
public class MemoryBudgetCounterTests
{
    private static readonly DateTimeOffset Start = new(2030, 3, 14, 12, 0, 0, TimeSpan.Zero);
    private static readonly CounterLimit Daily = new("budget:g:d", long.MaxValue / 4, Start + TimeSpan.FromDays(1));

    private static Settlement PassThrough(string id, long spent) => new(new Reservation(id, 0), spent, Held: false);

    [Fact]
    public async Task Markers_of_pass_through_spend_are_forgotten_after_their_lifetime_and_count_once_until_then()
    {
        var store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        for (var i = 0; i < 1000; i++)
        {
            await store.SettleAsync([Daily.Ref], [PassThrough($"pt-{i}", 10)], Start + TimeSpan.FromMilliseconds(i));
        }
        Assert.Equal((0, 0, 1000), store.Held(Daily.Key));

        // Sent again within the lifetime (a settlement flushed twice): counted once.
        var resent = await store.SettleAsync([Daily.Ref], [PassThrough("pt-999", 10)], Start + Settlement.MarkerLifetime - TimeSpan.FromSeconds(1));
        Assert.Equal(10_000, resent[0].Spent);
        Assert.Equal((0, 0, 1000), store.Held(Daily.Key));

        // Half of them past their lifetime: exactly those are gone, at the next use of the counter.
        await store.ReadCountersAsync([Daily.Ref], Start + Settlement.MarkerLifetime + TimeSpan.FromMilliseconds(499));
        Assert.Equal((0, 0, 500), store.Held(Daily.Key));
        await store.ReadCountersAsync([Daily.Ref], Start + Settlement.MarkerLifetime + TimeSpan.FromSeconds(1));
        Assert.Equal((0, 0, 0), store.Held(Daily.Key));
        Assert.Equal([new CounterState(10_000, 0)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromHours(2)));
    }

    [Fact]
    public async Task Reservations_expire_on_time_whichever_order_they_were_made_and_renewed_in()
    {
        var store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        var expiresAt = new Dictionary<string, TimeSpan>
        {
            ["late"] = TimeSpan.FromMinutes(5), ["early"] = TimeSpan.FromMinutes(1), ["middle"] = TimeSpan.FromMinutes(3),
        };
        foreach (var (id, after) in expiresAt) await store.ReserveAsync([Daily], id, 100, Start + after, Start);
        // "early" renewed past the others: the earliest expiry is now "middle"'s.
        await store.RenewReservationAsync([Daily.Ref], new Reservation("early", 100), Start + TimeSpan.FromMinutes(10));

        Assert.Equal([new CounterState(0, 300)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(2)));
        Assert.Equal([new CounterState(0, 200)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(3)));
        Assert.Equal([new CounterState(0, 100)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(6)));
        Assert.Equal((1, 2, 0), store.Held(Daily.Key));
        Assert.Equal([new CounterState(0, 0)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(10)));

        // A reservation made after the others expired is held again, and expires in its turn.
        await store.ReserveAsync([Daily], "next", 40, Start + TimeSpan.FromMinutes(12), Start + TimeSpan.FromMinutes(11));
        Assert.Equal([new CounterState(0, 40)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(11)));
        Assert.Equal([new CounterState(0, 0)], await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(12)));
    }

    [Fact]
    public async Task A_reservation_that_expired_and_then_settled_is_counted_once_and_its_marker_does_not_outlive_it()
    {
        var store = new MemoryStore(new StoreOptions(), TimeProvider.System);
        await store.ReserveAsync([Daily], "slow", 100, Start + TimeSpan.FromMinutes(1), Start);
        await store.ReadCountersAsync([Daily.Ref], Start + TimeSpan.FromMinutes(2));
        Assert.Equal((0, 1, 0), store.Held(Daily.Key));

        var settled = await store.SettleAsync([Daily.Ref], [new Settlement(new Reservation("slow", 100), 70)], Start + TimeSpan.FromMinutes(3));
        var again = await store.SettleAsync([Daily.Ref], [new Settlement(new Reservation("slow", 100), 70)], Start + TimeSpan.FromMinutes(4));
        Assert.Equal(new CounterState(70, 0), settled[0]);
        Assert.Equal(new CounterState(70, 0), again[0]);
        Assert.Equal((0, 0, 0), store.Held(Daily.Key));
    }
}
