using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>The optional active probe: an idle provider gets a known status from a cheap models call.</summary>
public sealed class ProbeTests : IAsyncLifetime
{
    private const string KeyVariable = "RESILIENCE_PROBE_TESTS_KEY";
    private const string ProviderKey = "sk-probe-test-key-1234567890";
    private FakeUpstream _probed = null!;
    private FakeUpstream _unprobed = null!;
    private readonly ManualTimeProvider _time = new();

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, ProviderKey);
        _probed = await FakeUpstream.StartAsync(Models);
        _unprobed = await FakeUpstream.StartAsync(Models);
    }

    public async Task DisposeAsync()
    {
        await _probed.DisposeAsync();
        await _unprobed.DisposeAsync();
    }

    private static Task Models(Microsoft.AspNetCore.Http.HttpContext http, ReceivedRequest _) =>
        OpenAiWire.WriteJsonAsync(http, """{"object":"list","data":[{"id":"upstream-m1","object":"model","created":1700000000,"owned_by":"test"}]}""");

    private static async Task WaitForCallsAsync(FakeUpstream upstream, int calls)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (upstream.Calls < calls)
        {
            Assert.True(DateTime.UtcNow < deadline, $"expected {calls} probe calls, saw {upstream.Calls}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_probed_idle_provider_has_a_known_status_that_follows_its_probes()
    {
        var settings = ResilienceSettings.Chain(_probed, _unprobed)
            .With("Gateway:Providers:p1:ApiKeyEnv", KeyVariable)
            .With("Gateway:Providers:p1:ProbeIntervalSeconds", "30")
            .With("Gateway:Resilience:FirstTokenTimeoutSeconds", "5"); // a probe's own timeout: not to be mistaken for the interval
        await using var gateway = new ResilienceGateway(settings, _time);
        using var warm = gateway.CreateClient(); // starts the host, and with it the prober

        // One probe at start: GET {BaseUrl}/models with the provider's own key.
        await WaitForCallsAsync(_probed, 1);
        var probe = Assert.Single(_probed.Requests);
        Assert.Equal("GET", probe.Method);
        Assert.Equal("/v1/models", probe.Path);
        Assert.Equal($"Bearer {ProviderKey}", probe.Header("authorization"));
        await gateway.WaitForStatusAsync("p1", "healthy");
        Assert.Equal("unknown", (await gateway.ProviderAsync("p2")).GetProperty("status").GetString());

        // The provider goes down: the next probe, one interval later, says so.
        _probed.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Service Unavailable", type: "server_error"), 503);
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(30));
        await WaitForCallsAsync(_probed, 2);
        var p1 = await gateway.WaitForStatusAsync("p1", "unavailable");
        Assert.Equal(503, p1.GetProperty("last_error").GetProperty("status").GetInt32());
        Assert.False(p1.GetProperty("probe").GetProperty("ok").GetBoolean());
        Assert.Equal(30, p1.GetProperty("probe").GetProperty("interval_seconds").GetInt32());
        Assert.Equal("closed", p1.GetProperty("circuit").GetString()); // a probe informs; it never trips the circuit

        // And back: up again, though with a failure among its recent probes it shows as degraded for a while.
        _probed.Handler = Models;
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(30));
        p1 = await gateway.WaitForStatusAsync("p1", "degraded");
        Assert.True(p1.GetProperty("probe").GetProperty("ok").GetBoolean());

        Assert.Equal(0, _unprobed.Calls); // ProbeIntervalSeconds defaults to 0: off
    }
}
