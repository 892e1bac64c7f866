using System.Net;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>The issue's promise: one provider's bad minute is not its users' bad minute.</summary>
public sealed class UnpluggedProviderTests
{
    [Fact]
    public async Task Unplugging_a_provider_in_the_middle_of_a_load_run_costs_its_users_nothing_and_the_admin_view_says_so()
    {
        await using var fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteStreamAsync(http, ["from ", "p2"]));
        var primary = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteStreamAsync(http, ["from ", "p1"]));
        var settings = ResilienceSettings.Chain(primary, fallback)
            .With("Gateway:Resilience:MaxRetries", "1")
            .With("Gateway:Resilience:CircuitBreaker:MinimumThroughput", "5")
            .With("Gateway:Resilience:CircuitBreaker:BreakSeconds", "300");
        await using var gateway = new ResilienceGateway(settings);
        using var client = gateway.CreateClient();

        const int total = 240, workers = 8;
        var done = 0;
        var unplugged = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failures = new List<string>();
        var servedBy = new Dictionary<string, int>();
        var callsBeforeUnplug = 0;
        var callsAfterUnplug = 0;

        async Task WorkAsync()
        {
            while (Interlocked.Increment(ref done) <= total)
            {
                using var response = await client.PostAsync("/v1/chat/completions",
                    new StringContent(ResilienceGateway.Body("m1", stream: true), Encoding.UTF8, "application/json"));
                var sse = await SseClient.ReadAllAsync(response);
                lock (failures)
                {
                    if (response.StatusCode != HttpStatusCode.OK || !sse.SawDone || sse.Error is not null || sse.Events.Any(e => e.Contains("\"error\"", StringComparison.Ordinal)))
                    {
                        failures.Add($"{(int)response.StatusCode} {string.Join(" ", sse.Events)} {sse.Error?.Message}");
                    }
                    var model = response.Headers.GetValues("x-gateway-model").Single();
                    servedBy[model] = servedBy.GetValueOrDefault(model) + 1;
                }
                if (Volatile.Read(ref done) >= total / 3 && unplugged.TrySetResult())
                {
                    // Unplug p1 a third of the way in, with requests in flight: it finishes what it
                    // has started (a graceful stop) and refuses everything after. The stop takes as long
                    // as those requests do, and on a loaded machine the other workers' requests keep
                    // reaching it on their open connections meanwhile: what it served is counted once
                    // it is gone.
                    callsBeforeUnplug = primary.Calls;
                    await primary.DisposeAsync();
                    callsAfterUnplug = primary.Calls;
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(WorkAsync))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(unplugged.Task.IsCompleted);
        Assert.Empty(failures);
        Assert.Equal(total, servedBy.Values.Sum());
        Assert.True(servedBy.GetValueOrDefault("m1") >= callsBeforeUnplug - workers, $"served: {string.Join(", ", servedBy)}");
        // Once p1 was gone, every request went to p2: p1 served nothing it had not taken before it stopped.
        Assert.True(servedBy.GetValueOrDefault("m1") <= callsAfterUnplug, $"served: {string.Join(", ", servedBy)}; p1 took {callsAfterUnplug} calls in all");
        Assert.True(servedBy.GetValueOrDefault("m2") > 0, $"p2 served nothing, so nothing was unplugged in time: {string.Join(", ", servedBy)}");

        // The circuit opened once enough of the recent calls had failed (the ratio counts the good
        // calls before the unplug too), and from then on p1 cost nobody anything: at most the calls
        // already under way when it opened were retried.
        var log = gateway.Events.Log.ToList();
        var opened = log.IndexOf("circuit p1 Open");
        Assert.True(opened >= 0, string.Join(", ", log));
        Assert.InRange(log.Skip(opened).Count(e => e == "retry p1"), 0, workers);
        var p1 = await gateway.ProviderAsync("p1");
        Assert.Equal("open", p1.GetProperty("circuit").GetString());
        Assert.Equal("unavailable", p1.GetProperty("status").GetString());
        Assert.Contains("p1", p1.GetProperty("last_error").GetProperty("message").GetString());
        Assert.Equal("healthy", (await gateway.ProviderAsync("p2")).GetProperty("status").GetString());
    }
}
