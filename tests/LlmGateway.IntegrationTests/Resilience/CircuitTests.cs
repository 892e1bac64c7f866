using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// A deployment's circuit (the provider serving one upstream model), end to end on the manual clock:
/// it opens on that model's 5xx, keeps traffic away without a call while open, lets one probe through
/// after the break, and closes when the probe succeeds. The provider's own circuit stays closed: one
/// model's trouble is not the provider's.
/// </summary>
public sealed class CircuitTests : IAsyncLifetime
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;
    private readonly ManualTimeProvider _time = new();

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync(Fail);
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the fallback")));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    private static Task Fail(HttpContext http, ReceivedRequest _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("The server is on fire.", type: "server_error"), 500);

    private static Task Answer(HttpContext http, ReceivedRequest _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("primary is back"));

    private static Dictionary<string, string?> Settings(FakeUpstream primary, FakeUpstream fallback) =>
        ResilienceSettings.Chain(primary, fallback)
            .With("Gateway:Resilience:MaxRetries", "0")
            .With("Gateway:Resilience:CircuitBreaker:MinimumThroughput", "2")
            .With("Gateway:Resilience:CircuitBreaker:FailureRatio", "0.5")
            .With("Gateway:Resilience:CircuitBreaker:SamplingSeconds", "30")
            .With("Gateway:Resilience:CircuitBreaker:BreakSeconds", "10");

    private static async Task<HttpResponseMessage> SendAsync(ResilienceGateway gateway, string model = "m1", bool noFallback = false)
    {
        var response = await gateway.PostAsync(ResilienceGateway.Body(model), r =>
        {
            if (noFallback) r.Headers.Add("X-No-Fallback", "true");
        }).WaitAsync(s_guard);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static string Header(HttpResponseMessage response, string name) => response.Headers.GetValues(name).Single();

    private static async Task<string> DeploymentCircuitAsync(ResilienceGateway gateway) =>
        (await gateway.DeploymentAsync("p1", "upstream-m1")).GetProperty("circuit").GetString()!;

    private static async Task AssertProviderCircuitClosedAsync(ResilienceGateway gateway)
    {
        Assert.DoesNotContain(gateway.Events.Log, e => e.StartsWith("circuit p1", StringComparison.Ordinal));
        Assert.Equal("closed", (await gateway.ProviderAsync("p1")).GetProperty("circuit").GetString());
    }

    private async Task OpenCircuitAsync(ResilienceGateway gateway)
    {
        for (var i = 0; i < 2; i++)
        {
            using var response = await SendAsync(gateway);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("m2", Header(response, "x-gateway-model"));
        }
        Assert.Equal(2, _primary.Calls);
        Assert.Equal("open", await DeploymentCircuitAsync(gateway));
        await AssertProviderCircuitClosedAsync(gateway);
    }

    [Fact]
    public async Task The_circuit_opens_skips_the_provider_while_open_and_closes_after_a_successful_probe()
    {
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);
        await OpenCircuitAsync(gateway);

        // Open: the provider is not called at all; the fallback answers on the first attempt.
        using (var skipped = await SendAsync(gateway))
        {
            Assert.Equal(HttpStatusCode.OK, skipped.StatusCode);
            Assert.Equal("m2", Header(skipped, "x-gateway-model"));
            Assert.Equal("1", Header(skipped, "x-gateway-attempts"));
        }
        Assert.Equal(2, _primary.Calls);
        var view = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Equal("open", view.GetProperty("circuit").GetString());
        Assert.Equal("unavailable", view.GetProperty("status").GetString());
        Assert.Equal(10, view.GetProperty("circuit_retry_in_seconds").GetDouble());
        // Its only deployment known to be unavailable: so is the provider, though its own circuit is closed.
        Assert.Equal("unavailable", (await gateway.ProviderAsync("p1")).GetProperty("status").GetString());

        // The provider recovers; after the break one probe goes through and closes the circuit.
        _primary.Handler = Answer;
        _time.Advance(TimeSpan.FromSeconds(9));
        using (var stillOpen = await SendAsync(gateway)) Assert.Equal("m2", Header(stillOpen, "x-gateway-model"));
        Assert.Equal(2, _primary.Calls);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("half_open", await DeploymentCircuitAsync(gateway));

        using (var probe = await SendAsync(gateway))
        {
            Assert.Equal("m1", Header(probe, "x-gateway-model"));
            Assert.Contains("primary is back", await probe.Content.ReadAsStringAsync());
        }
        Assert.Equal(3, _primary.Calls);
        Assert.Equal("closed", await DeploymentCircuitAsync(gateway));
        await AssertProviderCircuitClosedAsync(gateway);

        using (var after = await SendAsync(gateway)) Assert.Equal("m1", Header(after, "x-gateway-model"));
        Assert.Equal(4, _primary.Calls);
    }

    [Fact]
    public async Task A_failed_probe_opens_the_circuit_for_another_break()
    {
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);
        await OpenCircuitAsync(gateway);

        _time.Advance(TimeSpan.FromSeconds(10));
        using (var probe = await SendAsync(gateway)) Assert.Equal("m2", Header(probe, "x-gateway-model"));
        Assert.Equal(3, _primary.Calls);
        Assert.Equal("open", await DeploymentCircuitAsync(gateway));
        Assert.Equal(10, (await gateway.DeploymentAsync("p1", "upstream-m1")).GetProperty("circuit_retry_in_seconds").GetDouble());

        _time.Advance(TimeSpan.FromSeconds(9));
        using (var skipped = await SendAsync(gateway)) Assert.Equal("m2", Header(skipped, "x-gateway-model"));
        Assert.Equal(3, _primary.Calls);
    }

    [Fact]
    public async Task With_every_circuit_open_the_client_gets_503_no_healthy_provider_without_a_call()
    {
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);
        await OpenCircuitAsync(gateway);
        _time.Advance(TimeSpan.FromSeconds(4));

        // Whether the router or the executor turns it away (both consult the circuit), the client
        // hears the same: 503 with the time until the probe as Retry-After. Nothing was called for
        // this request, so the gateway leaves retrying to the client (no x-should-retry).
        using var response = await SendAsync(gateway, noFallback: true);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("6", Header(response, "Retry-After"));
        Assert.False(response.Headers.Contains("x-should-retry"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("no_healthy_provider", error.GetProperty("code").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.Contains("p1", error.GetProperty("message").GetString());
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(6, gateway.Services.GetRequiredService<IProviderHealth>().RemainingBreak("p1", "upstream-m1").TotalSeconds);
    }

    [Fact]
    public async Task Bad_requests_from_the_client_do_not_open_the_circuit()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Invalid 'n'.", code: "invalid_value", param: "n"), 400);
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        for (var i = 0; i < 5; i++)
        {
            using var response = await SendAsync(gateway);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        Assert.Equal(5, _primary.Calls);
        Assert.DoesNotContain(gateway.Events.Log, e => e.StartsWith("circuit", StringComparison.Ordinal));
        var view = await gateway.ProviderAsync("p1");
        Assert.Equal("closed", view.GetProperty("circuit").GetString());
        Assert.Equal(0, view.GetProperty("recent").GetProperty("errors").GetInt32());
    }

    [Fact]
    public async Task Streams_that_break_after_they_started_count_against_the_circuit()
    {
        var cut = new SemaphoreSlim(0);
        _primary.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "partial"));
            await cut.WaitAsync(s_guard, http.RequestAborted);
            http.Abort();
        };
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);
            var sse = await SseClient.ReadAllAsync(response, onEvent: e =>
            {
                if (e.Contains("partial", StringComparison.Ordinal)) cut.Release();
            });
            Assert.False(sse.SawDone);
        }

        Assert.Equal("open", await DeploymentCircuitAsync(gateway));
        using var next = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);
        Assert.Equal("m2", next.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(2, _primary.Calls);
    }
}
