using System.Net;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// How long the gateway waits before a retry, read off the manual clock: the test sees the timer
/// the gateway set, checks its length, and only then lets time pass. Nothing here sleeps.
/// </summary>
public sealed class RetryTimingTests : IAsyncLifetime
{
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;
    private readonly ManualTimeProvider _time = new();

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync();
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the fallback")));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);

    private static Dictionary<string, string?> Settings(FakeUpstream primary, FakeUpstream fallback) =>
        ResilienceSettings.Chain(primary, fallback)
            .With("Gateway:Resilience:MaxRetries", "3")
            .With("Gateway:Resilience:BaseDelayMs", "1000")
            .With("Gateway:Resilience:MaxDelayMs", "10000");

    [Theory]
    [InlineData("retry-after", "2", 2000)]
    [InlineData("retry-after-ms", "1500", 1500)]
    public async Task A_429_with_a_short_Retry_After_is_retried_after_exactly_that_wait(string header, string value, int waitMs)
    {
        var calls = 0;
        _primary.Handler = (http, _) =>
        {
            if (Interlocked.Increment(ref calls) > 1) return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("after the wait"));
            http.Response.Headers[header] = value;
            return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Rate limit reached.", type: "requests", code: "rate_limit_exceeded"), 429);
        };
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1"));
        await _time.WaitForTimerAsync(TimeSpan.FromMilliseconds(waitMs), pending);

        // The gateway is waiting exactly as long as the provider asked, and has not called again.
        Assert.Equal(1, _primary.Calls);
        Assert.False(pending.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(waitMs));

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("after the wait", await response.Content.ReadAsStringAsync());
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(0, _fallback.Calls);
        Assert.Equal("2", response.Headers.GetValues("x-gateway-attempts").Single());
    }

    [Fact]
    public async Task A_429_with_a_Retry_After_longer_than_MaxDelay_moves_to_the_next_candidate_at_once()
    {
        _primary.Handler = (http, _) =>
        {
            http.Response.Headers.RetryAfter = "300";
            return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Rate limit reached.", type: "requests"), 429);
        };
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        // No time passes at all: a gateway that slept 300 s here would never answer.
        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("from the fallback", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(1, _fallback.Calls);
        Assert.DoesNotContain(TimeSpan.FromSeconds(300), _time.RequestedDelays);
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-model").Single());
    }

    [Fact]
    public async Task Retries_back_off_exponentially_with_jitter()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500);
        var settings = Settings(_primary, _fallback).Without("Gateway:Models:m1:Fallbacks:0");
        await using var gateway = new ResilienceGateway(settings, _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1"));
        var waits = new List<TimeSpan>();
        // Base 1 s: the n-th wait is drawn from the upper half of 1 s * 2^n.
        foreach (var (low, high) in new[] { (500, 1000), (1000, 2000), (2000, 4000) })
        {
            var wait = await _time.WaitForTimerAsync(d => d >= TimeSpan.FromMilliseconds(low) && d < TimeSpan.FromMilliseconds(high), $"a wait in [{low}, {high}) ms", pending);
            Assert.Equal(waits.Count + 1, _primary.Calls);
            waits.Add(wait);
            _time.Advance(wait);
        }

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(4, _primary.Calls);
        Assert.Equal("4", response.Headers.GetValues("x-gateway-attempts").Single());
        Assert.Equal(3, waits.Count);
    }

    [Fact]
    public async Task The_total_timeout_cuts_a_retry_wait_short_with_504()
    {
        _primary.Handler = (http, _) =>
        {
            http.Response.Headers.RetryAfter = "8";
            return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Overloaded", type: "server_error"), 503);
        };
        var settings = Settings(_primary, _fallback)
            .Without("Gateway:Models:m1:Fallbacks:0")
            .With("Gateway:Resilience:TotalTimeoutSeconds", "5");
        await using var gateway = new ResilienceGateway(settings, _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1"));
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(8), pending);
        _time.Advance(TimeSpan.FromSeconds(5));

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("upstream_timeout", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, _primary.Calls);
    }
}
