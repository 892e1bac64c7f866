using System.Diagnostics;
using System.Net;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// /metrics of a real gateway in front of a real OpenAI-format upstream on loopback, read back as numbers.
/// Each test has a gateway of its own, and a gateway renders only its own llm_gateway_* series, so
/// exact counts hold while other tests run alongside.
/// </summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstream.StartAsync();

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Dictionary<string, string?> Settings()
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Gateway:Routing:TaskTypes:general:Models:0"] = "test-model";
        settings["Gateway:Routing:TaskTypes:summarize:Models:0"] = "test-model";
        return settings;
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string body, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers) request.Headers.Add(name, value);
        return http.SendAsync(request);
    }

    [Fact]
    public async Task Requests_tokens_cost_and_latencies_are_counted_from_each_request_record()
    {
        _upstream.Handler = async (http, received) =>
        {
            if (received.Json.TryGetProperty("stream", out var s) && s.GetBoolean())
            {
                OpenAiWire.StartSse(http);
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "streamed"));
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.UsageChunk(prompt: 100, completion: 10, cached: 40));
                await OpenAiWire.WriteEventAsync(http, "[DONE]");
                return;
            }
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("plain", prompt: 11, completion: 7));
        };
        await using var gateway = new GatewayFactory(Settings());
        var chat = gateway.ChatClient("test-model");

        await chat.CompleteChatAsync([new UserChatMessage("one")]);
        await chat.CompleteChatAsync([new UserChatMessage("two")]);
        await foreach (var _ in chat.CompleteChatStreamingAsync([new UserChatMessage("three")]))
        {
        }
        using var http = gateway.CreateClient();
        using (var bad = await PostAsync(http, "{not json"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }
        using (var unknown = await PostAsync(http, """{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}"""))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        var m = await MetricsText.ScrapeAsync(http);
        (string, string)[] ok = [("model", "test-model"), ("provider", "up"), ("task_type", "general"), ("status", "200")];
        Assert.Equal(3, m.Value("llm_gateway_requests_total", ok));
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "none"), ("provider", "none"), ("status", "400")));
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "none"), ("status", "404")));

        (string, string)[] byModel = [("model", "test-model"), ("provider", "up")];
        Assert.Equal(11 + 11 + 100, m.Value("llm_gateway_tokens_total", [.. byModel, ("direction", "input")]));
        Assert.Equal(7 + 7 + 10, m.Value("llm_gateway_tokens_total", [.. byModel, ("direction", "output")]));
        Assert.Equal(40, m.Value("llm_gateway_tokens_total", [.. byModel, ("direction", "cached")]));
        // (122 input at 0.001 + 24 output at 0.002) per 1000 tokens; no cached price, so cached tokens cost as input.
        Assert.Equal(0.00017, m.Value("llm_gateway_cost_usd_total", byModel), 12);

        // Only requests that reached a model have latencies: the 400 and the 404 don't.
        Assert.Equal(3, m.Value("llm_gateway_request_duration_seconds_count", byModel));
        Assert.Equal(3, m.Value("llm_gateway_request_duration_seconds_bucket", [.. byModel, ("le", "+Inf")]));
        Assert.Equal(1, m.Value("llm_gateway_time_to_first_token_seconds_count", byModel));
        Assert.Equal(3, m.Value("llm_gateway_overhead_seconds_count", ("provider", "up")));
        Assert.True(m.Value("llm_gateway_overhead_seconds_sum", ("provider", "up")) <= m.Value("llm_gateway_request_duration_seconds_sum", byModel));
        Assert.Equal(0, m.Value("llm_gateway_inflight_requests"));
        Assert.Equal(1, m.Value("llm_gateway_provider_up", ("provider", "up")));
        Assert.Equal(0, m.Value("llm_gateway_circuit_state", ("provider", "up")));
    }

    [Fact]
    public async Task Failures_are_counted_by_status_and_a_stream_broken_midway_as_broken()
    {
        _upstream.Handler = async (http, received) =>
        {
            if (!received.Json.TryGetProperty("stream", out var s) || !s.GetBoolean())
            {
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), status: 500);
                return;
            }
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            // Ends without a finish_reason or [DONE]: the answer was cut off after it started.
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "half an ans"));
        };
        var settings = Settings();
        settings["Gateway:Resilience:MaxRetries"] = "0"; // one failed attempt, one 502
        var grace = new ManualTimeProvider();
        await using var gateway = new GatewayFactory(settings) { TestServices = s => s.Hold(grace) };
        using var http = gateway.CreateClient();

        using (var failed = await PostAsync(http, """{"model":"test-model","messages":[{"role":"user","content":"x"}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent("""{"model":"test-model","stream":true,"messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json") })
        using (var broken = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, broken.StatusCode);
            var read = await BrokenStream.ReadAsync(broken, grace);
            Assert.Contains(read.Events, e => e.Contains("\"error\"", StringComparison.Ordinal));
            Assert.False(read.SawDone);
        }

        // The client sees the aborted connection before the gateway has recorded the broken request.
        var m = await WaitForAsync(http, m => m.ValueOrNull("llm_gateway_requests_total", ("model", "test-model"), ("status", "broken")) is not null);
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "test-model"), ("status", "502")));
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "test-model"), ("status", "broken")));
        Assert.Null(m.ValueOrNull("llm_gateway_requests_total", ("model", "test-model"), ("status", "200")));
    }

    [Fact]
    public async Task Names_from_clients_never_become_label_values_only_configured_names_do()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        await using var gateway = new GatewayFactory(Settings());
        using var http = gateway.CreateClient();
        var secretish = "zz-" + Guid.NewGuid().ToString("N");

        (await PostAsync(http, """{"model":"TEST-Model","messages":[{"role":"user","content":"x"}]}""", ("X-Task-Type", secretish))).Dispose();
        (await PostAsync(http, """{"model":"test-model","messages":[{"role":"user","content":"x"}]}""", ("X-Task-Type", "SUMMARIZE"))).Dispose();
        (await PostAsync(http, $$"""{"model":"{{secretish}}","messages":[{"role":"user","content":"x"}]}""")).Dispose();

        var m = await MetricsText.ScrapeAsync(http);
        // The router answers an unknown task type with the default one, so the client's name never gets this far.
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "test-model"), ("task_type", "general"), ("status", "200")));
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "test-model"), ("task_type", "summarize"), ("status", "200")));
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", "none"), ("status", "404")));
        Assert.DoesNotContain(secretish, m.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("TEST-Model", m.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("SUMMARIZE", m.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_inflight_gauge_counts_a_stream_while_it_is_being_answered()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "first"));
            await release.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };
        await using var gateway = new GatewayFactory(Settings());
        using var http = gateway.CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"test-model","stream":true,"messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var body = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await body.ReadLineAsync() is { } line && !line.Contains("first", StringComparison.Ordinal))
        {
        }

        Assert.Equal(1, (await MetricsText.ScrapeAsync(http)).Value("llm_gateway_inflight_requests"));
        release.SetResult();
        Assert.Contains("[DONE]", await body.ReadToEndAsync(), StringComparison.Ordinal);
        // The request is recorded once the handler returns, after the last byte.
        var m = await WaitForAsync(http, m => m.ValueOrNull("llm_gateway_requests_total", ("status", "200")) == 1);
        Assert.Equal(0, m.Value("llm_gateway_inflight_requests"));
    }

    [Fact]
    public async Task Gateway_events_feed_retries_fallbacks_circuits_provider_health_cache_and_store_errors()
    {
        var settings = Settings();
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(_upstream.BaseUrl, provider: "second", model: "second-model")) settings[k] = v;
        await using var gateway = new GatewayFactory(settings);
        using var http = gateway.CreateClient();
        var events = gateway.Services.GetRequiredService<IGatewayEvents>();
        Assert.IsType<GatewayMetrics>(events);

        events.Retry("up", "upstream-model");
        events.Retry("up", "upstream-model");
        events.Fallback("test-model", "second-model");
        events.CircuitStateChanged("second", CircuitState.Open);
        events.CacheLookup("hit");
        events.CacheLookup("miss");
        events.CacheLookup("miss");
        events.CacheLookup("something-new");
        events.StoreError("budget_settle");

        var m = await MetricsText.ScrapeAsync(http);
        Assert.Equal(2, m.Value("llm_gateway_retries_total", ("provider", "up"), ("deployment", "upstream-model")));
        Assert.Equal(1, m.Value("llm_gateway_fallbacks_total", ("from_model", "test-model"), ("to_model", "second-model")));
        Assert.Equal(2, m.Value("llm_gateway_circuit_state", ("provider", "second")));
        Assert.Equal(0, m.Value("llm_gateway_circuit_state", ("provider", "up")));
        // Neither provider has been called or probed: unknown in /admin/providers, and unknown is not up.
        Assert.Equal(0, m.Value("llm_gateway_provider_up", ("provider", "second")));
        Assert.Equal(0, m.Value("llm_gateway_provider_up", ("provider", "up")));
        Assert.Equal(0, m.Value("llm_gateway_deployment_up", ("provider", "up"), ("deployment", "upstream-model")));
        Assert.Equal(0, m.Value("llm_gateway_deployment_state", ("provider", "up"), ("deployment", "upstream-model")));
        Assert.Equal(1, m.Value("llm_gateway_cache_requests_total", ("result", "hit")));
        Assert.Equal(2, m.Value("llm_gateway_cache_requests_total", ("result", "miss")));
        Assert.Equal(1, m.Value("llm_gateway_cache_requests_total", ("result", "other")));
        Assert.Equal(1, m.Value("llm_gateway_store_errors_total", ("operation", "budget_settle")));
    }

    [Fact]
    public async Task Budget_gauges_report_what_the_budget_source_says_at_each_scrape()
    {
        var budgets = new FixedBudgets([new("global", "daily", 4.5, 10), new("provider:up", "monthly", 120, 100)]);
        await using var gateway = new GatewayFactory(Settings());
        await using var withSources = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IBudgetMetricsSource>(budgets)));
        using var http = withSources.CreateClient();

        var m = await MetricsText.ScrapeAsync(http);
        Assert.Equal(4.5, m.Value("llm_gateway_budget_spent_usd", ("scope", "global"), ("window", "daily")));
        Assert.Equal(10, m.Value("llm_gateway_budget_limit_usd", ("scope", "global"), ("window", "daily")));
        Assert.Equal(120, m.Value("llm_gateway_budget_spent_usd", ("scope", "provider:up"), ("window", "monthly")));

        // Gauges are read at each scrape: the next one sees the source's new state.
        budgets.Rows = [new("global", "daily", 9.25, 10)];
        m = await MetricsText.ScrapeAsync(http);
        Assert.Equal(9.25, m.Value("llm_gateway_budget_spent_usd", ("scope", "global"), ("window", "daily")));
        Assert.Null(m.ValueOrNull("llm_gateway_budget_spent_usd", ("scope", "provider:up")));
    }

    [Fact]
    public async Task A_budget_source_that_raises_gateway_events_itself_makes_no_dependency_cycle()
    {
        await using var gateway = new GatewayFactory(Settings());
        await using var withSource = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IBudgetMetricsSource, BudgetsThatReportStoreErrors>()));
        using var http = withSource.CreateClient();

        await MetricsText.ScrapeAsync(http);
        var m = await MetricsText.ScrapeAsync(http);
        Assert.Equal(2, m.Value("llm_gateway_budget_limit_usd", ("scope", "global"), ("window", "daily")));
        Assert.True(m.Value("llm_gateway_store_errors_total", ("operation", "budget_read")) >= 2);
    }

    [Fact]
    public async Task Promtool_accepts_the_real_metrics_output_including_escaped_label_values()
    {
        // A configured model name with a quote, a backslash and a dot: legal in config, and a label value to escape.
        const string odd = "we\"ird\\model.v2";
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl, model: odd);
        await using var gateway = new GatewayFactory(settings);
        await gateway.ChatClient(odd).CompleteChatAsync([new UserChatMessage("x")]);
        using var http = gateway.CreateClient();
        (await PostAsync(http, "{}")).Dispose();

        var m = await MetricsText.ScrapeAsync(http);
        Assert.Contains("model=\"we\\\"ird\\\\model.v2\"", m.Text, StringComparison.Ordinal);
        Assert.Equal(1, m.Value("llm_gateway_requests_total", ("model", odd), ("status", "200")));
        // The in-box meters are there too: ASP.NET Core, Kestrel, HttpClient (the call upstream) and the runtime.
        Assert.NotEmpty(m.Find("http_server_request_duration_seconds_count"));
        Assert.NotEmpty(m.Find("http_client_request_duration_seconds_count"));
        Assert.NotEmpty(m.Find("dotnet_gc_heap_total_allocated_bytes_total"));

        var (exit, output) = await Promtool.RunAsync(m.Text, "check", "metrics");
        Assert.True(exit == 0, $"promtool check metrics failed ({exit}):\n{output}");
    }

    [Fact]
    public async Task Built_in_instruments_measured_on_every_request_that_nothing_reads_are_left_out_and_the_dashboards_stay()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        await using var gateway = new GatewayFactory(Settings());
        await gateway.ChatClient("test-model").CompleteChatAsync([new UserChatMessage("x")]);
        using var http = gateway.CreateClient();

        var m = await MetricsText.ScrapeAsync(http);
        // Two measurements per request each (+1, -1), read by no panel or alert; llm_gateway_inflight_requests stays.
        Assert.DoesNotContain("http_server_active_requests", m.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("http_client_active_requests", m.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("aspnetcore_routing_match_attempts", m.Text, StringComparison.Ordinal);
        Assert.Contains("# TYPE llm_gateway_inflight_requests gauge", m.Text, StringComparison.Ordinal);
        // What deploy/grafana's ASP.NET Core and HttpClient panels read.
        Assert.NotEmpty(m.Find("http_server_request_duration_seconds_count"));
        Assert.NotEmpty(m.Find("http_client_request_duration_seconds_bucket"));
        Assert.NotEmpty(m.Find("http_client_open_connections"));
        // Counted by OpenConnectionsGauge, not by the SDK from HttpClient's instrument: one family all the same.
        Assert.Single(m.Text.Split('\n'), l => l == "# TYPE http_client_open_connections gauge");
    }

    [Fact]
    public async Task Chat_completions_count_under_their_route_in_the_request_duration_whether_routing_or_its_shortcut_matched_them()
    {
        // The first request is matched by routing, the next ones by the shortcut that remembers its answer
        // (RouteShortcut), and another spelling of the path by routing again: all are the same route.
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        await using var gateway = new GatewayFactory(Settings());
        using var http = gateway.CreateClient();
        const string body = """{"model":"test-model","messages":[{"role":"user","content":"x"}]}""";
        for (var i = 0; i < 3; i++)
        {
            using var response = await PostAsync(http, body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        using (var other = await http.PostAsync("/V1/Chat/Completions", new StringContent(body, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        }

        var route = ("http_route", "/v1/chat/completions");
        var m = await WaitForAsync(http, m => m.ValueOrNull("http_server_request_duration_seconds_count", route, ("http_response_status_code", "200")) == 4);
        Assert.Equal(4, m.Value("http_server_request_duration_seconds_count", route, ("http_request_method", "POST"), ("http_response_status_code", "200")));
        Assert.Equal(4, m.Value("llm_gateway_requests_total", ("model", "test-model"), ("status", "200")));
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds; at the deadline the test fails with the last scrape.</summary>
    private static async Task<MetricsText> WaitForAsync(HttpClient http, Func<MetricsText, bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var m = await MetricsText.ScrapeAsync(http);
            if (condition(m)) return m;
            if (deadline.Elapsed > TimeSpan.FromSeconds(10)) Assert.Fail($"The metrics did not reach the expected state within 10 s; last scrape:\n{m.Text}");
            await Task.Delay(20);
        }
    }

    private sealed class FixedBudgets(BudgetMetric[] rows) : IBudgetMetricsSource
    {
        public BudgetMetric[] Rows { get; set; } = rows;
        public IReadOnlyList<BudgetMetric> GetBudgets() => Rows;
    }

    /// <summary>A budget source like the store's: it raises gateway events itself.</summary>
    private sealed class BudgetsThatReportStoreErrors(IGatewayEvents events) : IBudgetMetricsSource
    {
        public IReadOnlyList<BudgetMetric> GetBudgets()
        {
            events.StoreError("budget_read");
            return [new("global", "daily", 1, 2)];
        }
    }
}
