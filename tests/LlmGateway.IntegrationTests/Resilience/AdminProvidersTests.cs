using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>GET /admin/providers and POST /admin/providers/{name}/reset: what happened, visible, and never a secret.</summary>
public sealed class AdminProvidersTests : IAsyncLifetime
{
    private const string KeyVariable = "RESILIENCE_ADMIN_TESTS_P1_KEY";
    private const string ProviderKey = "sk-resilience-test-provider-key-0987654321";
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);
    private FakeUpstream _failing = null!;
    private FakeUpstream _healthy = null!;
    private FakeUpstream _idle = null!;
    private readonly ManualTimeProvider _time = new();

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyVariable, ProviderKey);
        // The upstream echoes our key back in its error, as some do: it must not get any further.
        _failing = await FakeUpstream.StartAsync((http, r) => OpenAiWire.WriteJsonAsync(http,
            OpenAiWire.Error($"Upstream exploded while using {r.Header("authorization")}", type: "server_error"), 500));
        _healthy = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("fine")));
        _idle = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("idle")));
    }

    public async Task DisposeAsync()
    {
        await _failing.DisposeAsync();
        await _healthy.DisposeAsync();
        await _idle.DisposeAsync();
    }

    private Dictionary<string, string?> Settings() =>
        ResilienceSettings.Chain(_failing, _healthy, _idle)
            .Without("Gateway:Models:m1:Fallbacks:1")
            .With("Gateway:Providers:p1:ApiKeyEnv", KeyVariable)
            .With("Gateway:Resilience:MaxRetries", "0")
            .With("Gateway:Resilience:CircuitBreaker:MinimumThroughput", "3")
            .With("Gateway:Providers:p2:MaxConcurrency", "64")
            .With("Gateway:Providers:p2:Rpm", "600");

    [Fact]
    public async Task Each_provider_shows_its_status_circuit_last_error_and_recent_calls()
    {
        await using var gateway = new ResilienceGateway(Settings(), _time);
        for (var i = 0; i < 2; i++)
        {
            using var response = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var admin = gateway.CreateAdminClient();
        var text = await admin.GetStringAsync("/admin/providers");
        Assert.DoesNotContain(ProviderKey, text);
        Assert.DoesNotContain("test-provider-key", text);
        var list = JsonDocument.Parse(text).RootElement;
        Assert.Equal("list", list.GetProperty("object").GetString());
        var byName = list.GetProperty("data").EnumerateArray().ToDictionary(p => p.GetProperty("name").GetString()!);
        Assert.Equal(["p1", "p2", "p3"], byName.Keys);

        // p1's one model answers 500: that is the deployment's trouble, not the provider's (it answered),
        // yet with its only deployment failing the provider as a whole is unavailable.
        var p1 = byName["p1"];
        Assert.Equal("openai", p1.GetProperty("type").GetString());
        Assert.Equal("unavailable", p1.GetProperty("status").GetString());
        Assert.Equal("closed", p1.GetProperty("circuit").GetString());
        Assert.Equal(JsonValueKind.Null, p1.GetProperty("last_error").ValueKind);
        Assert.Equal(2, p1.GetProperty("recent").GetProperty("requests").GetInt32());
        Assert.Equal(0, p1.GetProperty("recent").GetProperty("errors").GetInt32());
        var m1 = Assert.Single(p1.GetProperty("deployments").EnumerateArray());
        Assert.Equal("upstream-m1", m1.GetProperty("model").GetString());
        Assert.Equal("unavailable", m1.GetProperty("status").GetString()); // every recent call failed
        Assert.Equal("closed", m1.GetProperty("circuit").GetString());     // but not yet enough of them to open it
        Assert.Equal(JsonValueKind.Null, m1.GetProperty("cooldown_until").ValueKind);
        var lastError = m1.GetProperty("last_error");
        Assert.Equal(500, lastError.GetProperty("status").GetInt32());
        Assert.Contains("Upstream exploded", lastError.GetProperty("message").GetString());
        Assert.Contains("[redacted]", lastError.GetProperty("message").GetString());
        Assert.Equal(_time.GetUtcNow(), lastError.GetProperty("at").GetDateTimeOffset());
        Assert.Equal(2, m1.GetProperty("recent").GetProperty("requests").GetInt32());
        Assert.Equal(1.0, m1.GetProperty("recent").GetProperty("error_rate").GetDouble());

        var p2 = byName["p2"];
        Assert.Equal("healthy", p2.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, p2.GetProperty("last_error").ValueKind);
        Assert.Equal(2, p2.GetProperty("recent").GetProperty("requests").GetInt32());
        Assert.Equal(0, p2.GetProperty("recent").GetProperty("error_rate").GetDouble());
        Assert.True(p2.GetProperty("recent").GetProperty("latency_p95_ms").GetDouble() >= 0);
        Assert.Equal(64, p2.GetProperty("limits").GetProperty("max_concurrency").GetInt32());
        Assert.Equal(0, p2.GetProperty("limits").GetProperty("in_flight").GetInt64());
        Assert.Equal(600, p2.GetProperty("limits").GetProperty("rpm").GetInt32());

        var p3 = byName["p3"];
        Assert.Equal("unknown", p3.GetProperty("status").GetString());
        Assert.Equal(0, p3.GetProperty("recent").GetProperty("requests").GetInt32());
        Assert.Equal(0, p3.GetProperty("probe").GetProperty("interval_seconds").GetInt32());
    }

    [Fact]
    public async Task A_provider_with_some_recent_errors_is_degraded()
    {
        var calls = 0;
        _failing.Handler = (http, _) => Interlocked.Increment(ref calls) == 1
            ? OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("hiccup", type: "server_error"), 502)
            : OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        await using var gateway = new ResilienceGateway(Settings(), _time);
        for (var i = 0; i < 4; i++)
        {
            using var response = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
        }
        var p1 = await gateway.ProviderAsync("p1");
        Assert.Equal("degraded", p1.GetProperty("status").GetString());
        var m1 = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Equal("degraded", m1.GetProperty("status").GetString());
        Assert.Equal(0.25, m1.GetProperty("recent").GetProperty("error_rate").GetDouble());

        // Recent means recent: five minutes later the old calls no longer count.
        _time.Advance(TimeSpan.FromMinutes(6));
        Assert.Equal("unknown", (await gateway.ProviderAsync("p1")).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Reset_closes_an_open_circuit_so_the_provider_gets_traffic_again()
    {
        await using var gateway = new ResilienceGateway(Settings(), _time);
        for (var i = 0; i < 3; i++)
        {
            using var response = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
        }
        Assert.Equal("open", (await gateway.DeploymentAsync("p1", "upstream-m1")).GetProperty("circuit").GetString());
        _failing.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("fixed"));

        using var admin = gateway.CreateAdminClient();
        using var reset = await admin.PostAsync("/admin/providers/p1/reset", null);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        var view = JsonDocument.Parse(await reset.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("p1", view.GetProperty("name").GetString());
        Assert.Equal("closed", view.GetProperty("circuit").GetString());
        Assert.Equal("closed", view.GetProperty("deployments")[0].GetProperty("circuit").GetString());

        using var after = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
        Assert.Equal("m1", after.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(4, _failing.Calls);
    }

    [Fact]
    public async Task Admin_provider_endpoints_need_the_admin_key_and_a_known_provider()
    {
        await using var gateway = new ResilienceGateway(Settings(), _time);
        using var anonymous = gateway.CreateClient();
        using var noKey = await anonymous.GetAsync("/admin/providers");
        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        using var noKeyReset = await anonymous.PostAsync("/admin/providers/p1/reset", null);
        Assert.Equal(HttpStatusCode.Unauthorized, noKeyReset.StatusCode);

        using var admin = gateway.CreateAdminClient();
        using var unknown = await admin.PostAsync("/admin/providers/nope/reset", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        var error = JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Contains("nope", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }
}
