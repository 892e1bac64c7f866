using System.Net;
using System.Net.Http.Headers;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// What /metrics shows before any traffic (every family of the contract, counters at 0 for the label
/// sets known at start-up) and to whom (series naming a gateway key only for a scrape with the metrics
/// or admin key).
/// </summary>
public sealed class MetricsExposureTests : IAsyncLifetime
{
    /// <summary>Every family of the external contract (shared CONTRACT.md), with its Prometheus type.</summary>
    private static readonly (string Name, string Type)[] s_contract =
    [
        ("llm_gateway_requests_total", "counter"),
        ("llm_gateway_request_duration_seconds", "histogram"),
        ("llm_gateway_time_to_first_token_seconds", "histogram"),
        ("llm_gateway_overhead_seconds", "histogram"),
        ("llm_gateway_tokens_total", "counter"),
        ("llm_gateway_cost_usd_total", "counter"),
        ("llm_gateway_cache_requests_total", "counter"),
        ("llm_gateway_retries_total", "counter"),
        ("llm_gateway_fallbacks_total", "counter"),
        ("llm_gateway_circuit_state", "gauge"),
        ("llm_gateway_provider_up", "gauge"),
        ("llm_gateway_budget_spent_usd", "gauge"),
        ("llm_gateway_budget_limit_usd", "gauge"),
        ("llm_gateway_inflight_requests", "gauge"),
        ("llm_gateway_store_errors_total", "counter"),
    ];

    private const string MetricsKeyEnv = "LLMGW_TEST_METRICS_KEY_EXPOSURE";
    private const string AdminKeyEnv = "LLMGW_TEST_ADMIN_KEY_EXPOSURE";
    private readonly string _metricsKey = "metrics-" + Guid.NewGuid().ToString("N");
    private readonly string _adminKey = "admin-" + Guid.NewGuid().ToString("N");
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(MetricsKeyEnv, _metricsKey);
        Environment.SetEnvironmentVariable(AdminKeyEnv, _adminKey);
        _upstream = await FakeUpstream.StartAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Dictionary<string, string?> Settings()
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(_upstream.BaseUrl, provider: "second", model: "second-model")) settings[k] = v;
        settings["Gateway:Models:test-model:Fallbacks:0"] = "second-model";
        settings["Gateway:Routing:TaskTypes:general:Models:0"] = "test-model";
        settings["Gateway:Auth:MetricsKeyEnv"] = MetricsKeyEnv;
        settings["Gateway:Auth:AdminKeyEnv"] = AdminKeyEnv;
        return settings;
    }

    [Fact]
    public async Task The_first_scrape_after_start_lists_every_contract_family_with_known_counters_at_zero_and_promtool_accepts_it()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var http = gateway.CreateClient();

        var m = await MetricsText.ScrapeAsync(http);

        var lines = m.Text.Split('\n');
        var missing = s_contract.Where(f => !lines.Contains($"# TYPE {f.Name} {f.Type}")).Select(f => f.Name).ToList();
        Assert.True(missing.Count == 0, "missing from the first scrape: " + string.Join(", ", missing) + "\n" + m.Text);
        // Counters whose label sets are known at start-up are there, at 0.
        foreach (var operation in StoreOperations.All) Assert.Equal(0, m.Value("llm_gateway_store_errors_total", ("operation", operation)));
        foreach (var result in (string[])["hit", "miss", "bypass", "off"]) Assert.Equal(0, m.Value("llm_gateway_cache_requests_total", ("result", result)));
        Assert.Equal(0, m.Value("llm_gateway_retries_total", ("provider", "up")));
        Assert.Equal(0, m.Value("llm_gateway_retries_total", ("provider", "second")));
        Assert.Equal(0, m.Value("llm_gateway_fallbacks_total", ("from_model", "test-model"), ("to_model", "second-model")));
        foreach (var direction in (string[])["input", "output", "cached"])
        {
            Assert.Equal(0, m.Value("llm_gateway_tokens_total", ("model", "second-model"), ("provider", "second"), ("direction", direction)));
        }
        Assert.Equal(0, m.Value("llm_gateway_cost_usd_total", ("model", "test-model"), ("provider", "up")));
        Assert.Equal(0, m.Value("llm_gateway_inflight_requests"));
        Assert.Equal(0, m.Value("llm_gateway_circuit_state", ("provider", "second")));

        var (exit, output) = await Promtool.RunAsync(m.Text, "check", "metrics");
        Assert.True(exit == 0, $"promtool check metrics failed ({exit}):\n{output}");
    }

    [Fact]
    public async Task A_real_prometheus_accepts_the_first_scrape_with_the_families_that_have_no_series_yet()
    {
        await using var factory = new GatewayFactory(Settings());
        await using var gateway = factory.WithWebHostBuilder(_ => { });
        gateway.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        gateway.StartServer();
        var address = new Uri(gateway.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using var http = new HttpClient { BaseAddress = address };

        // What Prometheus asks for (OpenMetrics first), and what it gets before any request: the text format,
        // the histograms listed with no series.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.TryAddWithoutValidation("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
        using var response = await http.SendAsync(request);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE llm_gateway_request_duration_seconds histogram\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("llm_gateway_request_duration_seconds_bucket", text, StringComparison.Ordinal);

        // Prometheus rejects a whole scrape it cannot parse (up is then 0).
        await using var prometheus = await PrometheusServer.StartAsync($"{address.Host}:{address.Port}", RepoFiles.Path("deploy/prometheus/alerts.yml"));
        await prometheus.WaitForAsync("up{job=\"llm-gateway\"}", v => v == 1, "a successful scrape of the fresh gateway");
        await prometheus.WaitForAsync("count(llm_gateway_cache_requests_total == 0)", v => v == 4, "the cache counters at 0");
        // No OpenMetrics _created series, which Prometheus 2.x would store beside every counter and histogram.
        Assert.Empty(await prometheus.QueryAsync("{__name__=~\".+_created\"}"));
    }

    [Fact]
    public async Task Series_naming_a_key_are_shown_only_to_a_scrape_with_the_metrics_or_admin_key()
    {
        BudgetMetric[] rows = [new("global", "daily", 1.5, 10), new("key:team-secretive", "daily", 2.25, 5)];
        await using var gateway = new GatewayFactory(Settings());
        await using var app = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IBudgetMetricsSource>(new Budgets(rows))));
        using var http = app.CreateClient();

        var open = await MetricsText.ScrapeAsync(http);
        var withMetricsKey = await ScrapeWithAsync(http, _metricsKey);
        var withAdminKey = await ScrapeWithAsync(http, _adminKey);
        using var wrongKey = await SendWithAsync(http, "not-a-key");

        Assert.Equal(1.5, open.Value("llm_gateway_budget_spent_usd", ("scope", "global"), ("window", "daily")));
        Assert.DoesNotContain("team-secretive", open.Text, StringComparison.Ordinal);
        Assert.Contains("# TYPE llm_gateway_budget_spent_usd gauge", open.Text, StringComparison.Ordinal);
        foreach (var full in new[] { withMetricsKey, withAdminKey })
        {
            Assert.Equal(2.25, full.Value("llm_gateway_budget_spent_usd", ("scope", "key:team-secretive"), ("window", "daily")));
            Assert.Equal(5, full.Value("llm_gateway_budget_limit_usd", ("scope", "key:team-secretive"), ("window", "daily")));
            Assert.Equal(1.5, full.Value("llm_gateway_budget_spent_usd", ("scope", "global"), ("window", "daily")));
        }
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        Assert.DoesNotContain("team-secretive", await wrongKey.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The next open scrape, right after an authenticated one, still leaves them out.
        var openAgain = await MetricsText.ScrapeAsync(http);
        Assert.DoesNotContain("team-secretive", openAgain.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_public_and_authenticated_scrapes_each_see_only_what_their_key_allows()
    {
        BudgetMetric[] rows = [new("global", "daily", 1.5, 10), new("key:team-secretive", "daily", 2.25, 5)];
        await using var gateway = new GatewayFactory(Settings());
        await using var app = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IBudgetMetricsSource>(new Budgets(rows))));
        using var http = app.CreateClient();

        // Interleaved and at once: a scrape never gets another scrape's collection or a cached answer.
        var scrapes = await Task.WhenAll(Enumerable.Range(0, 24).Select(async i =>
            (Authenticated: i % 2 == 1, Metrics: i % 2 == 1 ? await ScrapeWithAsync(http, _metricsKey) : await MetricsText.ScrapeAsync(http))));

        foreach (var (authenticated, m) in scrapes)
        {
            Assert.Equal(1.5, m.Value("llm_gateway_budget_spent_usd", ("scope", "global"), ("window", "daily")));
            Assert.Equal(authenticated, m.Text.Contains("team-secretive", StringComparison.Ordinal));
        }
    }

    private static async Task<HttpResponseMessage> SendWithAsync(HttpClient http, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await http.SendAsync(request);
    }

    private static async Task<MetricsText> ScrapeWithAsync(HttpClient http, string key)
    {
        using var response = await SendWithAsync(http, key);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return MetricsText.Parse(await response.Content.ReadAsStringAsync());
    }

    private sealed class Budgets(BudgetMetric[] rows) : IBudgetMetricsSource
    {
        public IReadOnlyList<BudgetMetric> GetBudgets() => rows;
    }
}
