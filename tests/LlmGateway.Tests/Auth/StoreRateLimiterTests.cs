using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Tests.Auth;

/// <summary>The limiter over the embedded store; the same arithmetic on Redis is covered by the store contract tests.</summary>
public class StoreRateLimiterTests
{
    private static StoreRateLimiter NewLimiter() => new(new MemoryStore(new StoreOptions(), TimeProvider.System));

    private static readonly DateTimeOffset s_t0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan s_minute = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_full_bucket_admits_the_limit_at_once_then_one_unit_per_window_over_limit()
    {
        var limiter = NewLimiter();
        for (var i = 0; i < 60; i++)
        {
            var r = await limiter.AcquireAsync("k", 60, s_minute, 1, s_t0);
            Assert.True(r.Allowed);
            Assert.Equal(59 - i, r.Remaining);
        }
        var refused = await limiter.AcquireAsync("k", 60, s_minute, 1, s_t0);
        Assert.False(refused.Allowed);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.RetryAfter);
        Assert.Equal(s_minute, refused.ResetAfter);
        Assert.Equal(0, refused.Remaining);

        Assert.False((await limiter.AcquireAsync("k", 60, s_minute, 1, s_t0.AddMilliseconds(999))).Allowed);
        Assert.True((await limiter.AcquireAsync("k", 60, s_minute, 1, s_t0.AddSeconds(1))).Allowed);
        Assert.False((await limiter.AcquireAsync("k", 60, s_minute, 1, s_t0.AddSeconds(1))).Allowed);
    }

    [Fact]
    public async Task A_refused_acquisition_takes_nothing_and_cost_zero_only_reads()
    {
        var limiter = NewLimiter();
        Assert.True((await limiter.AcquireAsync("k", 100, s_minute, 90, s_t0)).Allowed);
        Assert.False((await limiter.AcquireAsync("k", 100, s_minute, 20, s_t0)).Allowed);
        var state = await limiter.AcquireAsync("k", 100, s_minute, 0, s_t0);
        Assert.True(state.Allowed);
        Assert.Equal(10, state.Remaining);
        Assert.True((await limiter.AcquireAsync("k", 100, s_minute, 10, s_t0)).Allowed);
    }

    [Fact]
    public async Task Adjust_gives_back_or_charges_more_and_never_refuses()
    {
        var limiter = NewLimiter();
        await limiter.AcquireAsync("k", 1000, s_minute, 800, s_t0);
        await limiter.AdjustAsync("k", 1000, s_minute, -700, s_t0);
        Assert.Equal(900, (await limiter.AcquireAsync("k", 1000, s_minute, 0, s_t0)).Remaining);

        // More than the whole allowance: the bucket is over-full and later requests wait it off.
        await limiter.AdjustAsync("k", 1000, s_minute, 1900, s_t0);
        var over = await limiter.AcquireAsync("k", 1000, s_minute, 1, s_t0);
        Assert.False(over.Allowed);
        Assert.Equal(0, over.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(60) + TimeSpan.FromMilliseconds(60), over.RetryAfter);

        // Giving back more than was taken leaves the bucket full, not fuller.
        await limiter.AdjustAsync("k", 1000, s_minute, -1_000_000, s_t0);
        Assert.Equal(1000, (await limiter.AcquireAsync("k", 1000, s_minute, 0, s_t0)).Remaining);
    }

    [Fact]
    public async Task Keys_are_independent()
    {
        var limiter = NewLimiter();
        Assert.True((await limiter.AcquireAsync("a", 1, s_minute, 1, s_t0)).Allowed);
        Assert.False((await limiter.AcquireAsync("a", 1, s_minute, 1, s_t0)).Allowed);
        Assert.True((await limiter.AcquireAsync("b", 1, s_minute, 1, s_t0)).Allowed);
    }

    [Fact]
    public async Task Concurrent_acquisitions_never_admit_more_than_the_limit()
    {
        var limiter = NewLimiter();
        var admitted = 0;
        await Parallel.ForAsync(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, _) =>
        {
            if ((await limiter.AcquireAsync("k", 500, s_minute, 1, s_t0)).Allowed) Interlocked.Increment(ref admitted);
        });
        Assert.Equal(500, admitted);
    }
}
