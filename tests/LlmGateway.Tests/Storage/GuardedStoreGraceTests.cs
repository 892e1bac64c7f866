using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Storage;

/// <summary>
/// The store guard's start-up grace (issue 16 item 7): a cold-start burst of slow calls on a new
/// connection must not trip the breaker; the same burst once the grace is over must. On the fake clock:
/// the calls never answer, and the test moves time past their timeout.
/// </summary>
public class GuardedStoreGraceTests
{
    private readonly FakeTimeProvider _clock = new();
    private readonly SilentStore _inner = new();
    private readonly StoreOptions _options = new() { TimeoutMs = 250, FailuresToBreak = 3, BreakSeconds = 5, StartupGraceSeconds = 10 };

    private GuardedStore Guard() => new(_inner, _options, new NullGatewayEvents(), NullLogger<GuardedStore>.Instance, _clock);

    /// <summary>Starts <paramref name="count"/> calls, then moves the clock past <paramref name="timeout"/>: each fails with a timeout.</summary>
    private async Task TimeOutBurstAsync(GuardedStore guard, int count, TimeSpan timeout)
    {
        var calls = Enumerable.Range(0, count).Select(i => guard.GetAsync($"k{i}")).ToList();
        _clock.Advance(timeout + TimeSpan.FromMilliseconds(1));
        foreach (var call in calls)
        {
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => call);
            Assert.IsType<TimeoutException>(e.InnerException);
        }
    }

    [Fact]
    public async Task A_burst_of_timeouts_in_the_start_up_grace_leaves_the_breaker_closed_and_calls_get_the_longer_timeout()
    {
        var guard = Guard();

        var early = guard.GetAsync("slow");
        _clock.Advance(TimeSpan.FromMilliseconds(300)); // past TimeoutMs, within the grace timeout
        Assert.False(early.IsCompleted);
        _clock.Advance(guard.GraceTimeout);
        await Assert.ThrowsAsync<StoreUnavailableException>(() => early);

        await TimeOutBurstAsync(guard, 16, guard.GraceTimeout);

        Assert.True(guard.IsAvailable);
    }

    [Fact]
    public async Task After_the_grace_the_same_burst_trips_the_breaker()
    {
        var guard = Guard();
        await TimeOutBurstAsync(guard, 1, guard.GraceTimeout); // the first call starts the grace
        _clock.Advance(TimeSpan.FromSeconds(10));

        await TimeOutBurstAsync(guard, 3, TimeSpan.FromMilliseconds(250));

        Assert.False(guard.IsAvailable);
    }

    [Fact]
    public async Task The_grace_starts_when_the_store_first_connects_not_when_the_gateway_starts()
    {
        _inner.Connected = false;
        var guard = Guard();
        _clock.Advance(TimeSpan.FromMinutes(2)); // Redis was down at start-up
        _inner.Connected = true;

        await TimeOutBurstAsync(guard, 16, guard.GraceTimeout);

        Assert.True(guard.IsAvailable);
    }

    [Fact]
    public async Task Errors_other_than_timeouts_count_toward_the_breaker_even_in_the_grace()
    {
        _inner.Fail = true;
        var guard = Guard();

        for (var i = 0; i < 3; i++) await Assert.ThrowsAsync<StoreUnavailableException>(() => guard.GetAsync("k"));

        Assert.False(guard.IsAvailable);
    }

    /// <summary>A connected store that never answers a cache read (or refuses it at once with <see cref="Fail"/>).</summary>
    private sealed class SilentStore : IGatewayStore
    {
        public bool Connected { get; set; } = true;
        public bool Fail { get; set; }
        public string Kind => "silent";
        public bool IsAvailable => Connected;

        public Task<byte[]?> GetAsync(string key) =>
            Fail ? Task.FromException<byte[]?>(new InvalidOperationException("refused")) : new TaskCompletionSource<byte[]?>().Task;

        public Task SetAsync(string key, byte[] value, TimeSpan ttl) => throw new NotSupportedException();
        public Task<bool> SetIfUnchangedAsync(string key, byte[]? expected, byte[] value, TimeSpan ttl) => throw new NotSupportedException();
        public Task<bool> DeleteAsync(string key) => throw new NotSupportedException();
        public Task<long> DeleteByPrefixAsync(string prefix) => throw new NotSupportedException();
        public Task<ReserveResult> ReserveAsync(IReadOnlyList<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now) => throw new NotSupportedException();
        public Task<CounterState[]> SettleAsync(IReadOnlyList<CounterRef> counters, IReadOnlyList<Settlement> settlements, DateTimeOffset now) => throw new NotSupportedException();
        public Task<CounterState[]> ReadCountersAsync(IReadOnlyList<CounterRef> counters, DateTimeOffset now) => throw new NotSupportedException();
        public Task RenewReservationAsync(IReadOnlyList<CounterRef> counters, Reservation reservation, DateTimeOffset expiresAt) => throw new NotSupportedException();
        public Task<bool> TryMarkOnceAsync(string key, TimeSpan ttl) => throw new NotSupportedException();
        public Task AppendLedgerAsync(IReadOnlyList<byte[]> records) => throw new NotSupportedException();
        public Task<IReadOnlyList<LedgerRecord>> ReadLedgerAsync(long fromUnixMs, string? afterId, int count) => throw new NotSupportedException();
        public Task<bool> AddRecordAsync(string id, string hash, byte[] record) => throw new NotSupportedException();
        public Task<byte[]?> FindRecordByHashAsync(string hash) => throw new NotSupportedException();
        public Task<IReadOnlyList<byte[]>> ListRecordsAsync() => throw new NotSupportedException();
        public Task<bool> DeleteRecordAsync(string id) => throw new NotSupportedException();
        public Task<GcraResult> GcraAcquireAsync(string key, long occupiesUs, long windowUs, long nowUs) => throw new NotSupportedException();
        public Task GcraAdjustAsync(string key, long deltaUs, long nowUs) => throw new NotSupportedException();
        public Task PingAsync() => throw new NotSupportedException();
    }
}
