using LlmGateway.Configuration;
using LlmGateway.Routing;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Routing;

public class LatencyTrackerTests
{
    private static LatencyTracker Tracker()
    {
        var options = new GatewayOptions();
        options.Models["m"] = new ModelOptions { Provider = "p" };
        return new LatencyTracker(Options.Create(options));
    }

    private static RequestRecord Record(string model = "m", int durationMs = 1000, int? ttftMs = null, string outcome = RequestOutcomes.Ok,
        int status = 200, int fallbacks = 0, string cache = "miss") => new()
    {
        RequestId = "req_test",
        StartedAt = DateTimeOffset.UnixEpoch,
        Model = model,
        Outcome = outcome,
        Status = status,
        Fallbacks = fallbacks,
        CacheResult = cache,
        Duration = TimeSpan.FromMilliseconds(durationMs),
        TimeToFirstToken = ttftMs is { } t ? TimeSpan.FromMilliseconds(t) : null,
    };

    [Fact]
    public void Nothing_observed_is_unknown()
    {
        var estimate = Tracker().Get("m");
        Assert.Equal(new LatencyEstimate(null, null, 0), estimate);
        Assert.Null(estimate.For(stream: false));
    }

    [Fact]
    public void Samples_are_averaged_with_more_weight_on_the_newest()
    {
        var tracker = Tracker();
        tracker.OnRequestCompleted(Record(durationMs: 1000, ttftMs: 200));
        tracker.OnRequestCompleted(Record(durationMs: 2000));
        var estimate = tracker.Get("M");

        // 1000 + 0.3 * (2000 - 1000); the second (non-streamed) answer leaves the first-token time alone.
        Assert.Equal(1300, estimate.DurationMs!.Value, 6);
        Assert.Equal(200, estimate.TimeToFirstTokenMs!.Value, 6);
        Assert.Equal(2, estimate.Samples);
    }

    [Fact]
    public void A_change_in_speed_shows_within_a_few_requests()
    {
        var tracker = Tracker();
        for (var i = 0; i < 10; i++) tracker.OnRequestCompleted(Record(durationMs: 100));
        for (var i = 0; i < 6; i++) tracker.OnRequestCompleted(Record(durationMs: 2000));
        Assert.True(tracker.Get("m").DurationMs > 1500);
    }

    [Theory]
    [InlineData(RequestOutcomes.Error, 502, 0, "miss")]
    [InlineData(RequestOutcomes.Broken, 200, 0, "miss")]
    [InlineData(RequestOutcomes.Cancelled, 499, 0, "miss")]
    [InlineData(RequestOutcomes.Ok, 200, 1, "miss")]
    [InlineData(RequestOutcomes.Ok, 200, 0, "hit")]
    public void Only_clean_answers_of_one_model_count(string outcome, int status, int fallbacks, string cache)
    {
        var tracker = Tracker();
        tracker.OnRequestCompleted(Record(outcome: outcome, status: status, fallbacks: fallbacks, cache: cache));
        Assert.Equal(0, tracker.Get("m").Samples);
    }

    [Fact]
    public void Unknown_models_are_ignored()
    {
        var tracker = Tracker();
        tracker.OnRequestCompleted(Record(model: "not-configured"));
        tracker.OnRequestCompleted(Record(model: ""));
        Assert.Equal(default, tracker.Get("not-configured"));
    }
}
