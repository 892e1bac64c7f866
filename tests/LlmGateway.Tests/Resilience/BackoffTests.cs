using LlmGateway.Configuration;
using LlmGateway.Resilience;

namespace LlmGateway.Tests.Resilience;

public class BackoffTests
{
    private static readonly ResilienceOptions s_options = new() { BaseDelayMs = 200, MaxDelayMs = 10_000 };

    [Theory]
    [InlineData(0, 100, 200)]
    [InlineData(1, 200, 400)]
    [InlineData(2, 400, 800)]
    [InlineData(5, 3_200, 6_400)]
    public void The_wait_doubles_per_retry_and_lies_in_the_upper_half_of_its_ceiling(int retry, double low, double high)
    {
        var lowest = Backoff.RetryDelay(retry, s_options, null, 0.0)!.Value.TotalMilliseconds;
        var middle = Backoff.RetryDelay(retry, s_options, null, 0.5)!.Value.TotalMilliseconds;
        var highest = Backoff.RetryDelay(retry, s_options, null, 0.999_999)!.Value.TotalMilliseconds;
        Assert.Equal(low, lowest, 3);
        Assert.Equal((low + high) / 2, middle, 3);
        Assert.InRange(highest, high - 0.01, high);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(40)]
    [InlineData(int.MaxValue)]
    public void The_wait_never_exceeds_MaxDelay_however_many_retries(int retry)
    {
        for (var r = 0.0; r < 1; r += 0.125)
        {
            var wait = Backoff.RetryDelay(retry, s_options, null, r)!.Value;
            Assert.InRange(wait.TotalMilliseconds, 5_000, 10_000);
        }
    }

    [Fact]
    public void Random_draws_spread_the_waits_of_many_clients()
    {
        var random = new Random(42);
        var waits = Enumerable.Range(0, 200).Select(_ => Backoff.RetryDelay(3, s_options, null, random.NextDouble())!.Value.TotalMilliseconds).ToList();
        Assert.All(waits, w => Assert.InRange(w, 800, 1_600));
        Assert.True(waits.Distinct().Count() > 150, "jitter should make nearly every wait different");
    }

    [Fact]
    public void A_Retry_After_within_MaxDelay_is_taken_as_given()
    {
        Assert.Equal(TimeSpan.FromSeconds(3), Backoff.RetryDelay(0, s_options, TimeSpan.FromSeconds(3), 0.9));
        Assert.Equal(TimeSpan.FromMilliseconds(10_000), Backoff.RetryDelay(4, s_options, TimeSpan.FromMilliseconds(10_000), 0.1));
        Assert.Equal(TimeSpan.Zero, Backoff.RetryDelay(0, s_options, TimeSpan.FromSeconds(-5), 0.5));
    }

    [Fact]
    public void A_Retry_After_longer_than_MaxDelay_means_do_not_wait_for_this_provider()
    {
        Assert.Null(Backoff.RetryDelay(0, s_options, TimeSpan.FromMilliseconds(10_001), 0.5));
        Assert.Null(Backoff.RetryDelay(0, s_options, TimeSpan.FromMinutes(2), 0.5));
    }

    [Fact]
    public void A_zero_base_delay_retries_at_once()
    {
        var options = new ResilienceOptions { BaseDelayMs = 0, MaxDelayMs = 0 };
        Assert.Equal(TimeSpan.Zero, Backoff.RetryDelay(3, options, null, 0.7));
    }
}
