using System.ClientModel;
using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;
using Microsoft.AspNetCore.Http;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// Health per deployment (provider + upstream model), end to end on real Kestrel fakes and the manual
/// clock: a rate-limited model answers 429 with Retry-After and cools down alone while its siblings on
/// the same provider keep answering; an overloaded one answers 503; an unreachable provider goes down
/// as a whole.
/// </summary>
public sealed class DeploymentHealthTests : IAsyncLifetime
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);
    private readonly ManualTimeProvider _time = new();
    private FakeUpstream _upstream = null!;
    private int _limitedCalls;
    private int _siblingCalls;

    /// <summary>What upstream-limited answers: a 429, with this Retry-After when set.</summary>
    private string? _retryAfter = "30";

    public async Task InitializeAsync()
    {
        // One OpenAI-compatible provider, three models: upstream-limited is always rate-limited, the others answer.
        _upstream = await FakeUpstream.StartAsync((http, received) =>
        {
            if (received.Json.GetProperty("model").GetString() == "upstream-limited")
            {
                Interlocked.Increment(ref _limitedCalls);
                if (_retryAfter is not null) http.Response.Headers.RetryAfter = _retryAfter;
                return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Rate limit reached for requests.", type: "requests", code: "rate_limit_exceeded"), 429);
            }
            Interlocked.Increment(ref _siblingCalls);
            return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("sibling answers"));
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Dictionary<string, string?> Settings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Serilog:MinimumLevel:Default"] = "Warning",
            ["Gateway:Providers:p1:Type"] = "openai",
            ["Gateway:Providers:p1:BaseUrl"] = _upstream.BaseUrl + "/v1",
            // A provider circuit this sensitive would open at once if 429s counted against it.
            ["Gateway:Resilience:CircuitBreaker:MinimumThroughput"] = "2",
            ["Gateway:Resilience:CircuitBreaker:FailureRatio"] = "0.5",
        };
        foreach (var model in new[] { "limited", "a", "b" })
        {
            settings[$"Gateway:Models:{model}:Provider"] = "p1";
            settings[$"Gateway:Models:{model}:UpstreamModel"] = $"upstream-{model}";
        }
        return settings;
    }

    private static async Task<HttpResponseMessage> SendAsync(ResilienceGateway gateway, string model, bool stream = false)
    {
        var response = await gateway.PostAsync(ResilienceGateway.Body(model, stream)).WaitAsync(s_guard);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : null;

    private static JsonElement Error(HttpResponseMessage response) =>
        JsonDocument.Parse(response.Content.ReadAsStringAsync().Result).RootElement.GetProperty("error");

    [Fact]
    public async Task A_rate_limited_model_answers_429_with_retry_after_and_its_siblings_keep_answering_through_dozens_of_429s()
    {
        await using var gateway = new ResilienceGateway(Settings(), _time);

        for (var round = 0; round < 24; round++)
        {
            // Each round the cooldown is over, so the deployment is called again and says 429 again.
            _time.Advance(TimeSpan.FromSeconds(31));
            using (var limited = await SendAsync(gateway, "limited"))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
                var error = Error(limited);
                Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
                Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
                // Retry-After 30 s is over MaxDelayMs (10 s): no wait, no retry, the upstream's own wait passed on.
                Assert.Equal("30", Header(limited, "Retry-After"));
                Assert.Equal("false", Header(limited, "x-should-retry"));
                Assert.Equal("1", Header(limited, "x-gateway-attempts"));
            }
            foreach (var sibling in new[] { "a", "b" })
            {
                using var ok = await SendAsync(gateway, sibling);
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
                Assert.Equal(sibling, Header(ok, "x-gateway-model"));
            }
        }
        Assert.Equal(24, _limitedCalls);
        Assert.Equal(48, _siblingCalls);

        // While it cools down, the deployment is not called at all: the client hears 429 with the time left.
        _time.Advance(TimeSpan.FromSeconds(10));
        using (var cooling = await SendAsync(gateway, "limited"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, cooling.StatusCode);
            Assert.Equal("rate_limit_exceeded", Error(cooling).GetProperty("code").GetString());
            Assert.Equal("20", Header(cooling, "Retry-After"));
            Assert.Null(Header(cooling, "x-should-retry")); // nothing was tried for this one: the client may come back
            Assert.Equal("0", Header(cooling, "x-gateway-attempts"));
        }
        Assert.Equal(24, _limitedCalls);

        // The provider is fine; one deployment cools down; its circuit and the provider's never opened.
        var p1 = await gateway.ProviderAsync("p1");
        Assert.Equal("closed", p1.GetProperty("circuit").GetString());
        Assert.Equal("degraded", p1.GetProperty("status").GetString());
        Assert.DoesNotContain(gateway.Events.Log, e => e.StartsWith("circuit", StringComparison.Ordinal));
        var limitedView = await gateway.DeploymentAsync("p1", "upstream-limited");
        Assert.Equal("unavailable", limitedView.GetProperty("status").GetString());
        Assert.Equal("closed", limitedView.GetProperty("circuit").GetString());
        Assert.Equal("rate_limited", limitedView.GetProperty("cooldown_reason").GetString());
        Assert.Equal(_time.GetUtcNow().AddSeconds(20), limitedView.GetProperty("cooldown_until").GetDateTimeOffset());
        Assert.Equal(429, limitedView.GetProperty("last_error").GetProperty("status").GetInt32());
        Assert.Equal("healthy", (await gateway.DeploymentAsync("p1", "upstream-a")).GetProperty("status").GetString());

        using var http = gateway.CreateClient();
        var metrics = await MetricsText.ScrapeAsync(http);
        Assert.Equal(3, metrics.Value("llm_gateway_deployment_state", ("provider", "p1"), ("deployment", "upstream-limited")));
        Assert.Equal(0, metrics.Value("llm_gateway_deployment_up", ("provider", "p1"), ("deployment", "upstream-limited")));
        Assert.Equal(1, metrics.Value("llm_gateway_deployment_up", ("provider", "p1"), ("deployment", "upstream-a")));
        Assert.Equal(1, metrics.Value("llm_gateway_provider_up", ("provider", "p1")));
        Assert.Equal(0, metrics.Value("llm_gateway_circuit_state", ("provider", "p1")));

        // Once the cooldown is over it is tried again.
        _time.Advance(TimeSpan.FromSeconds(20));
        using (var again = await SendAsync(gateway, "limited")) Assert.Equal("1", Header(again, "x-gateway-attempts"));
        Assert.Equal(25, _limitedCalls);
    }

    [Fact]
    public async Task A_429_without_retry_after_cools_the_deployment_down_for_the_configured_time_and_falls_back_at_once()
    {
        _retryAfter = null;
        var settings = Settings().With("Gateway:Resilience:CooldownSeconds", "7").With("Gateway:Models:limited:Fallbacks:0", "a");
        await using var gateway = new ResilienceGateway(settings, _time);

        using (var fellBack = await SendAsync(gateway, "limited"))
        {
            Assert.Equal(HttpStatusCode.OK, fellBack.StatusCode);
            Assert.Equal("a", Header(fellBack, "x-gateway-model"));
        }
        Assert.Equal(1, _limitedCalls); // no wait for a guessed cooldown, no retry: the sibling answered now

        using var alone = await gateway.PostAsync(ResilienceGateway.Body("limited"), r => r.Headers.Add("X-No-Fallback", "true")).WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.TooManyRequests, alone.StatusCode);
        Assert.Equal("7", Header(alone, "Retry-After"));
        Assert.Equal(1, _limitedCalls);
        Assert.Equal(_time.GetUtcNow().AddSeconds(7), (await gateway.DeploymentAsync("p1", "upstream-limited")).GetProperty("cooldown_until").GetDateTimeOffset());
    }

    [Fact]
    public async Task Through_the_official_sdk_a_429_is_a_rate_limit_error_after_exactly_the_gateways_own_calls()
    {
        await using var gateway = new ResilienceGateway(Settings(), _time);
        var client = gateway.ChatClient("limited");

        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(429, e.Status);
        var raw = e.GetRawResponse()!;
        Assert.Equal("30", raw.Headers.HeaderValue("Retry-After"));
        // OpenAI's Node and Python SDKs read x-should-retry: false before their own 429 rule; the .NET
        // SDK's ClientRetryPolicy does not, and is set to no retries here, so the count below is the gateway's alone.
        Assert.Equal("false", raw.Headers.HeaderValue("x-should-retry"));
        Assert.Contains("rate_limit_exceeded", raw.Content.ToString());
        Assert.Equal(1, _limitedCalls);
    }

    [Fact]
    public async Task An_unreachable_provider_is_down_as_a_whole_and_its_other_models_are_skipped_until_its_break_ends()
    {
        // A port nothing listens on: connection refused, the evidence that says the whole provider is out.
        var refused = await FakeUpstream.StartAsync();
        var url = refused.BaseUrl;
        await refused.DisposeAsync();
        var settings = Settings().With("Gateway:Providers:p1:BaseUrl", url + "/v1").With("Gateway:Resilience:MaxRetries", "0");
        await using var gateway = new ResilienceGateway(settings, _time);

        using (var first = await SendAsync(gateway, "a"))
        {
            Assert.Equal(HttpStatusCode.BadGateway, first.StatusCode);
            Assert.Equal("upstream_error", Error(first).GetProperty("code").GetString());
            Assert.Equal("false", Header(first, "x-should-retry"));
        }
        var p1 = await gateway.ProviderAsync("p1");
        Assert.Equal("unavailable", p1.GetProperty("status").GetString());
        Assert.Contains("unreachable", p1.GetProperty("last_error").GetProperty("message").GetString());
        using var http = gateway.CreateClient();
        Assert.Equal(0, (await MetricsText.ScrapeAsync(http)).Value("llm_gateway_provider_up", ("provider", "p1")));

        using (var second = await SendAsync(gateway, "b")) Assert.Equal(HttpStatusCode.BadGateway, second.StatusCode);
        Assert.Contains("circuit p1 Open", gateway.Events.Log);

        // Every model of the provider now waits out the provider's break, without a call: 503 with Retry-After.
        using var skipped = await SendAsync(gateway, "limited");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, skipped.StatusCode);
        Assert.Equal("no_healthy_provider", Error(skipped).GetProperty("code").GetString());
        Assert.Equal("30", Header(skipped, "Retry-After"));
        Assert.Equal(0, _limitedCalls + _siblingCalls);
    }

    [Fact]
    public async Task Every_status_carries_the_request_id_and_the_gateway_headers()
    {
        var timeoutUpstream = await FakeUpstream.StartAsync(async (http, _) => await Task.Delay(Timeout.Infinite, http.RequestAborted));
        var failing = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500));
        try
        {
            var settings = Settings()
                .With("Gateway:Resilience:MaxRetries", "0")
                .With("Gateway:Resilience:AttemptTimeoutSeconds", "5")
                .With("Gateway:Providers:slow:Type", "openai").With("Gateway:Providers:slow:BaseUrl", timeoutUpstream.BaseUrl + "/v1")
                .With("Gateway:Models:slow:Provider", "slow").With("Gateway:Models:slow:UpstreamModel", "upstream-slow")
                .With("Gateway:Providers:bad:Type", "openai").With("Gateway:Providers:bad:BaseUrl", failing.BaseUrl + "/v1")
                .With("Gateway:Models:bad:Provider", "bad").With("Gateway:Models:bad:UpstreamModel", "upstream-bad");
            await using var gateway = new ResilienceGateway(settings, _time);

            using var ok = await SendAsync(gateway, "a");
            using var rateLimited = await SendAsync(gateway, "limited");
            using var upstreamError = await SendAsync(gateway, "bad");
            var pending = SendAsync(gateway, "slow");
            await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
            _time.Advance(TimeSpan.FromSeconds(5));
            using var timedOut = await pending;
            using var cooling = await SendAsync(gateway, "limited");
            using var unknown = await SendAsync(gateway, "no-such-model");

            foreach (var (response, status) in new[] { (ok, 200), (rateLimited, 429), (upstreamError, 502), (timedOut, 504), (cooling, 429), (unknown, 404) })
            {
                Assert.Equal(status, (int)response.StatusCode);
                Assert.StartsWith("req_", Header(response, "x-request-id"));
                Assert.NotNull(Header(response, "x-gateway-overhead-ms"));
                Assert.NotNull(Header(response, "x-gateway-attempts"));
                // The route's headers as far as the request got: a task type once routed, a model once one was called.
                if (status != 404) Assert.NotNull(Header(response, "x-gateway-task-type"));
                if (Header(response, "x-gateway-attempts") != "0") Assert.NotNull(Header(response, "x-gateway-model"));
            }
            Assert.Equal("upstream_timeout", Error(timedOut).GetProperty("code").GetString());
            Assert.Equal("false", Header(timedOut, "x-should-retry"));
            Assert.Equal("false", Header(upstreamError, "x-should-retry"));
        }
        finally
        {
            await timeoutUpstream.DisposeAsync();
            await failing.DisposeAsync();
        }
    }
}
