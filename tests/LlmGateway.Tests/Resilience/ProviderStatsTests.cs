using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Resilience;

public class ProviderStatsTests
{
    [Fact]
    public void Recent_requests_count_every_call_in_the_window_however_many()
    {
        var time = new FakeTimeProvider();
        var stats = new ProviderStats(time);
        // 10,000 calls over 100 s: a ring of the last 256 would say 256.
        for (var i = 0; i < 10_000; i++)
        {
            if (i % 100 == 0) time.Advance(TimeSpan.FromSeconds(1));
            if (i % 10 == 0) stats.RecordFailure("boom", 500);
            else stats.RecordSuccess(TimeSpan.FromMilliseconds(i % 100));
        }

        var snapshot = stats.Snapshot(ResilienceDefaults.RecentWindow);
        Assert.Equal(10_000, snapshot.Requests);
        Assert.Equal(1_000, snapshot.Errors);
        Assert.Equal(0.1, snapshot.ErrorRate);
        Assert.InRange(snapshot.LatencyP95Ms, 90, 99);
    }

    [Fact]
    public void Calls_older_than_the_window_fall_out_second_by_second()
    {
        var time = new FakeTimeProvider();
        var stats = new ProviderStats(time);
        stats.RecordSuccess(TimeSpan.FromMilliseconds(5));
        time.Advance(TimeSpan.FromSeconds(200));
        stats.RecordSuccess(TimeSpan.FromMilliseconds(5));
        stats.RecordAnswered();

        Assert.Equal(3, stats.Snapshot(ResilienceDefaults.RecentWindow).Requests);
        time.Advance(TimeSpan.FromSeconds(101));
        Assert.Equal(2, stats.Snapshot(ResilienceDefaults.RecentWindow).Requests);
        time.Advance(TimeSpan.FromSeconds(200));
        Assert.Equal(0, stats.Snapshot(ResilienceDefaults.RecentWindow).Requests);
    }
}

public class DeploymentHealthUnitTests
{
    private static ProviderResilience Provider(FakeTimeProvider time) =>
        new("p", new ProviderOptions { Type = "openai", BaseUrl = "http://127.0.0.1:9" }, new ResilienceOptions { CooldownSeconds = 5 }, time, new LlmGateway.Telemetry.NullGatewayEvents());

    [Fact]
    public void A_429_cools_one_deployment_down_for_its_Retry_After_and_counts_against_no_circuit()
    {
        var time = new FakeTimeProvider();
        using var provider = Provider(time);
        var limited = provider.Deployment("m-limited");
        var sibling = provider.Deployment("m-ok");

        for (var i = 0; i < 50; i++)
        {
            Assert.Null(provider.TryEnter(limited, out var entry));
            provider.Failed(entry, ProviderHttp.Classify("p", 429, "slow down", null, null, TimeSpan.FromSeconds(2)));
            var skipped = provider.TryEnter(limited, out _);
            Assert.Equal(FailureCause.RateLimited, skipped!.Cause);
            Assert.Equal(TimeSpan.FromSeconds(2), skipped.RetryAfter);
            Assert.Null(provider.TryEnter(sibling, out var ok));
            provider.Succeeded(ok, TimeSpan.FromMilliseconds(10));
            time.Advance(TimeSpan.FromSeconds(2));
        }

        Assert.Equal(CircuitState.Closed, provider.Breaker.State);
        Assert.Equal(CircuitState.Closed, limited.Breaker.State);
    }

    [Fact]
    public void Five_hundreds_open_the_deployments_circuit_and_refused_connections_the_providers()
    {
        var time = new FakeTimeProvider();
        using var provider = Provider(time);
        var bad = provider.Deployment("m-bad");
        var other = provider.Deployment("m-other");
        for (var i = 0; i < 5; i++)
        {
            Assert.Null(provider.TryEnter(bad, out var entry));
            provider.Failed(entry, ProviderHttp.Classify("p", 500, "boom", null, null, null));
        }
        Assert.Equal(CircuitState.Open, bad.Breaker.State);
        Assert.Equal(CircuitState.Closed, provider.Breaker.State);
        Assert.Null(provider.TryEnter(other, out _));

        var refused = ProviderHttp.FromException("p", new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (127.0.0.1:9)"));
        Assert.True(refused.IsProviderWide);
        for (var i = 0; i < 5; i++)
        {
            Assert.Null(provider.TryEnter(other, out var entry));
            provider.Failed(entry, refused);
        }
        Assert.Equal(CircuitState.Open, provider.Breaker.State);
        Assert.Equal(FailureCause.CircuitOpen, provider.TryEnter(provider.Deployment("m-third"), out _)!.Cause);
    }

    [Fact]
    public void A_connection_broken_mid_answer_is_the_deployments_failure_not_the_providers()
    {
        var broken = ProviderHttp.FromException("p", new HttpRequestException(HttpRequestError.ResponseEnded, "The response ended prematurely."));
        Assert.False(broken.IsProviderWide);
        Assert.False(ProviderHttp.FromException("p", new IOException("reset")).IsProviderWide);
        Assert.True(ProviderHttp.Classify("p", 401, "bad key", null, null, null).IsProviderWide);
        Assert.False(ProviderHttp.Classify("p", 404, "no such model", null, null, null).IsProviderWide);
    }
}
