using LlmGateway.Providers;
using LlmGateway.Resilience;

namespace LlmGateway.Tests.Resilience;

/// <summary>When every candidate failed, the client's status says which way.</summary>
public class FinalErrorTests
{
    private static ProviderFailure Upstream(int status) => new(ProviderFailure.KindForStatus(status), FailureCause.UpstreamStatus, "p", $"returned {status}", status);

    [Fact]
    public void All_timed_out_is_504_upstream_timeout()
    {
        var error = CandidateExecutor.FinalError([ProviderFailure.Timeout("a", "x"), ProviderFailure.Timeout("b", "y")]);
        Assert.Equal(504, error.Status);
        Assert.Equal("upstream_timeout", error.Code);
    }

    [Fact]
    public void All_circuits_open_is_503_no_healthy_provider_with_the_earliest_retry()
    {
        var error = CandidateExecutor.FinalError([
            ResilienceFailures.CircuitOpen("a", TimeSpan.FromSeconds(12.2)),
            ResilienceFailures.CircuitOpen("b", TimeSpan.FromSeconds(4.5)),
        ]);
        Assert.Equal(503, error.Status);
        Assert.Equal("no_healthy_provider", error.Code);
        Assert.Equal(5, error.RetryAfterSeconds);
    }

    [Fact]
    public void Providers_at_their_limits_are_unavailable_too_and_say_when_to_come_back()
    {
        var error = CandidateExecutor.FinalError([
            ResilienceFailures.OverLimit("a", LimitVerdict.Concurrency, TimeSpan.FromSeconds(1)),
            ResilienceFailures.CircuitOpen("b", TimeSpan.FromSeconds(3)),
        ]);
        Assert.Equal(503, error.Status);
        Assert.Equal("no_healthy_provider", error.Code);
        Assert.Equal(1, error.RetryAfterSeconds);
    }

    [Fact]
    public void Anything_mixed_is_502_upstream_error_naming_every_failure()
    {
        var error = CandidateExecutor.FinalError([Upstream(500), ProviderFailure.Timeout("b", "x"), ResilienceFailures.CircuitOpen("c", TimeSpan.Zero)]);
        Assert.Equal(502, error.Status);
        Assert.Equal("upstream_error", error.Code);
        Assert.Contains("returned 500", error.Message);
        Assert.Contains("timed out", error.Message);
        Assert.Contains("circuit is open", error.Message);
    }

    [Fact]
    public void Every_candidate_rate_limited_upstream_is_429_rate_limit_exceeded_with_the_soonest_retry()
    {
        var error = CandidateExecutor.FinalError([
            ProviderHttp.Classify("a", 429, "slow down", null, null, TimeSpan.FromSeconds(20)),
            ProviderHttp.Classify("b", 429, "slow down", null, null, TimeSpan.FromMilliseconds(2500)),
        ]);
        Assert.Equal(429, error.Status);
        Assert.Equal("rate_limit_error", error.Type);
        Assert.Equal("rate_limit_exceeded", error.Code);
        Assert.Equal(3, error.RetryAfterSeconds);
    }

    [Fact]
    public void A_429_without_retry_after_is_still_429_and_leaves_the_wait_to_the_client()
    {
        var error = CandidateExecutor.FinalError([ProviderHttp.Classify("a", 429, "slow down", null, null, null)]);
        Assert.Equal(429, error.Status);
        Assert.Null(error.RetryAfterSeconds);
    }

    [Fact]
    public void Overloaded_529_is_503_with_retry_after_not_502()
    {
        var error = CandidateExecutor.FinalError([ProviderHttp.Classify("a", 529, "Overloaded", "overloaded_error", null, TimeSpan.FromSeconds(7))]);
        Assert.Equal(503, error.Status);
        Assert.Equal("no_healthy_provider", error.Code);
        Assert.Equal(7, error.RetryAfterSeconds);
    }

    [Fact]
    public void Rate_limited_and_overloaded_together_are_unavailable_503()
    {
        var error = CandidateExecutor.FinalError([
            ProviderHttp.Classify("a", 429, "slow down", null, null, TimeSpan.FromSeconds(9)),
            ProviderHttp.Classify("b", 529, "Overloaded", "overloaded_error", null, TimeSpan.FromSeconds(4)),
        ]);
        Assert.Equal(503, error.Status);
        Assert.Equal(4, error.RetryAfterSeconds);
    }

    [Fact]
    public void A_quota_429_is_billing_not_load_and_is_an_upstream_error()
    {
        var error = CandidateExecutor.FinalError([ProviderHttp.Classify("a", 429, "You exceeded your current quota", "insufficient_quota", "insufficient_quota", null)]);
        Assert.Equal(502, error.Status);
    }

    [Fact]
    public void Upstream_5xx_is_502_whatever_its_retry_after()
    {
        var error = CandidateExecutor.FinalError([ProviderHttp.Classify("a", 503, "busy", null, null, TimeSpan.FromSeconds(3)), Upstream(500)]);
        Assert.Equal(502, error.Status);
        Assert.Equal("upstream_error", error.Code);
    }
}
