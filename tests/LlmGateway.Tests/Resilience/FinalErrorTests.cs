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
    public void Providers_at_their_limits_are_unavailable_too()
    {
        var error = CandidateExecutor.FinalError([ResilienceFailures.OverLimit("a", LimitVerdict.Concurrency), ResilienceFailures.CircuitOpen("b", TimeSpan.FromSeconds(3))]);
        Assert.Equal(503, error.Status);
        Assert.Null(error.RetryAfterSeconds);
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
    public void An_upstream_429_is_a_failure_not_a_local_limit()
    {
        var error = CandidateExecutor.FinalError([ProviderHttp.Classify("a", 429, "slow down", null, null, null)]);
        Assert.Equal(502, error.Status);
    }
}
