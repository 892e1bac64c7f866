using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;
using YamlDotNet.RepresentationModel;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// The shipped Grafana dashboard and alert rules, proven against a real Prometheus scraping a real
/// gateway on Kestrel: every PromQL expression they hold returns data.
/// </summary>
public sealed class PrometheusDashboardTests : IAsyncLifetime
{
    private const string DashboardFile = "deploy/grafana/dashboards/llm-gateway.json";
    private const string AlertsFile = "deploy/prometheus/alerts.yml";

    private FakeUpstream _failing = null!;
    private FakeUpstream _working = null!;

    public async Task InitializeAsync()
    {
        _failing = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), status: 500));
        _working = await FakeUpstream.StartAsync(async (http, received) =>
        {
            if (received.Json.TryGetProperty("stream", out var s) && s.GetBoolean())
            {
                await OpenAiWire.WriteStreamAsync(http, ["streamed ", "answer"], prompt: 30, completion: 12);
                return;
            }
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer", prompt: 25, completion: 9));
        });
    }

    public async Task DisposeAsync()
    {
        await _failing.DisposeAsync();
        await _working.DisposeAsync();
    }

    [Fact]
    public async Task Every_dashboard_and_alert_query_returns_data_from_a_real_prometheus_scraping_the_gateway()
    {
        var settings = GatewayFactory.OpenAiSettings(_failing.BaseUrl, provider: "failing", model: "first-model");
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(_working.BaseUrl, provider: "working", model: "second-model")) settings[k] = v;
        settings["Gateway:Models:first-model:Fallbacks:0"] = "second-model";
        // The failing provider must keep failing as a 502 (not be skipped by an open circuit) for the error panels.
        settings["Gateway:Resilience:CircuitBreaker:MinimumThroughput"] = "1000";
        // Budgets are another capability's: a fixed source stands in for the store, one scope over 80 %, one spent.
        BudgetMetric[] budgets = [new("global", "daily", 90, 100), new("provider:working", "monthly", 20, 400), new("key:team-a", "daily", 1, 0), new("key:team-b", "daily", 5, 5)];
        // Key series are only on an authenticated scrape: Prometheus presents the metrics key, as deploy/prometheus shows how.
        const string MetricsKeyEnv = "LLMGW_TEST_METRICS_KEY_DASHBOARD";
        var metricsKey = "metrics-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(MetricsKeyEnv, metricsKey);
        settings["Gateway:Auth:MetricsKeyEnv"] = MetricsKeyEnv;

        await using var factory = new GatewayFactory(settings);
        // Provider health is the resilience capability's: a settable source stands in, so the test can take every provider down.
        var providerHealth = new SettableHealth
        {
            Rows = [new("failing", null, true, 0), new("working", null, true, 0), new("failing", "upstream-model", true, 0), new("working", "upstream-model", true, 0)],
        };
        var gateway = factory.WithWebHostBuilder(b => b.ConfigureServices(s =>
        {
            s.AddSingleton<IBudgetMetricsSource>(new FixedBudgets(budgets));
            s.AddSingleton<IProviderHealthSource>(providerHealth);
        }));
        gateway.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        gateway.StartServer();
        var address = new Uri(gateway.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using var http = new HttpClient { BaseAddress = address };
        var events = gateway.Services.GetRequiredService<IGatewayEvents>();

        await using var prometheus = await PrometheusServer.StartAsync($"{address.Host}:{address.Port}", RepoFiles.Path(AlertsFile), bearerToken: metricsKey);

        // Two waves of traffic with a scrape between them, so every counter and histogram grows inside
        // the rate window and ratios and quantiles come out as numbers, not NaN.
        await SendWaveAsync(http, events);
        await prometheus.WaitForAsync("sum(llm_gateway_requests_total)", v => v == RequestsPerWave, "the first wave to be scraped");
        await SendWaveAsync(http, events);
        // Then trouble: an open circuit, and no provider up.
        events.CircuitStateChanged("failing", CircuitState.Open);
        providerHealth.Rows = [new("failing", null, false, 2), new("working", null, false, 0), new("failing", "upstream-model", false, 2), new("working", "upstream-model", false, 3)];
        await prometheus.WaitForAsync("sum(llm_gateway_requests_total)", v => v == 2 * RequestsPerWave, "the second wave to be scraped");
        await prometheus.WaitForAsync("sum(llm_gateway_provider_up)", v => v == 0, "the provider states to be scraped");

        var failures = new List<string>();
        var dashboard = JsonDocument.Parse(RepoFiles.Read(DashboardFile)).RootElement;
        var queries = DashboardQueries(dashboard);
        Assert.True(queries.Count >= 20, $"only {queries.Count} queries found in the dashboard");
        foreach (var (title, expr) in queries)
        {
            await CheckReturnsDataAsync(prometheus, $"panel '{title}'", Substitute(expr), failures);
        }
        foreach (var variable in dashboard.GetProperty("templating").GetProperty("list").EnumerateArray())
        {
            // label_values(metric, label), as Grafana asks it of Prometheus.
            var definition = variable.GetProperty("definition").GetString()!;
            var inner = definition["label_values(".Length..^1].Split(',', StringSplitOptions.TrimEntries);
            var values = await prometheus.LabelValuesAsync(inner[1], inner[0]);
            if (values.Count == 0) failures.Add($"variable '{variable.GetProperty("name").GetString()}': {definition} has no values");
        }

        var alerts = AlertRules();
        Assert.Contains(alerts, a => a.Name == "LlmGatewayDown");
        foreach (var (name, expr) in alerts.Where(a => a.Name != "LlmGatewayDown"))
        {
            await CheckReturnsDataAsync(prometheus, $"alert {name}", expr, failures);
        }
        // Prometheus loaded the shipped rule file itself and evaluates every rule without error.
        await prometheus.WaitForAsync("count(ALERTS)", v => v >= 1, "the alert rules to be evaluated");
        foreach (var (name, health, error) in await prometheus.RulesAsync())
        {
            if (health != "ok") failures.Add($"rule {name} is '{health}': {error}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));

        // The one alert that needs the gateway gone: stop it and watch the scrape fail.
        await gateway.DisposeAsync();
        await prometheus.WaitForAsync("up{job=\"llm-gateway\"}", v => v == 0, "a failed scrape of the stopped gateway");
        var down = await prometheus.QueryAsync(alerts.Single(a => a.Name == "LlmGatewayDown").Expr);
        Assert.NotEmpty(down);
    }

    private const int RequestsPerWave = 9;

    /// <summary>Answers, streams, fallbacks and failures through the real chat path; the events the capabilities not in this branch raise.</summary>
    private static async Task SendWaveAsync(HttpClient http, IGatewayEvents events)
    {
        var sdk = new ChatClient("second-model", new System.ClientModel.ApiKeyCredential("k"), new OpenAI.OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
        });
        for (var i = 0; i < 3; i++) await sdk.CompleteChatAsync([new UserChatMessage("hello")]);
        for (var i = 0; i < 2; i++)
        {
            await foreach (var _ in sdk.CompleteChatStreamingAsync([new UserChatMessage("stream")]))
            {
            }
        }
        for (var i = 0; i < 2; i++)
        {
            // first-model fails upstream and falls back to second-model.
            using var fallback = await PostAsync(http, "first-model");
            Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        }
        for (var i = 0; i < 2; i++)
        {
            using var failed = await PostAsync(http, "first-model", noFallback: true);
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        }

        // Retries, cache lookups and store errors come from the resilience, cache and store capabilities,
        // merged separately; the gateway's own event sink is fed the way they feed it.
        events.Retry("failing", "upstream-model");
        events.Fallback("first-model", "second-model");
        events.CacheLookup("hit");
        events.CacheLookup("hit");
        events.CacheLookup("miss");
        events.StoreError("budget_settle");
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string model, bool noFallback = false)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        if (noFallback) request.Headers.Add("X-No-Fallback", "true");
        return http.SendAsync(request);
    }

    private static async Task CheckReturnsDataAsync(PrometheusServer prometheus, string what, string promql, List<string> failures)
    {
        var result = await prometheus.QueryAsync(promql);
        if (result.Count == 0) failures.Add($"{what}: no data for {promql}");
        else if (result.TrueForAll(r => double.IsNaN(r.Value))) failures.Add($"{what}: only NaN for {promql}");
    }

    /// <summary>
    /// Grafana's variables as the dashboard's defaults resolve them: All is ".*" for $model and $provider, and
    /// $__rate_interval is at least four scrape intervals (here 1 s, so 1m is more than enough and covers both waves).
    /// </summary>
    private static string Substitute(string expr)
    {
        var result = expr.Replace("$__rate_interval", "1m", StringComparison.Ordinal)
            .Replace("$model", ".*", StringComparison.Ordinal)
            .Replace("$provider", ".*", StringComparison.Ordinal);
        Assert.DoesNotContain("$", result, StringComparison.Ordinal);
        return result;
    }

    private static List<(string Title, string Expr)> DashboardQueries(JsonElement dashboard)
    {
        var queries = new List<(string, string)>();
        void Walk(JsonElement panels)
        {
            foreach (var panel in panels.EnumerateArray())
            {
                if (panel.TryGetProperty("targets", out var targets))
                {
                    foreach (var t in targets.EnumerateArray()) queries.Add((panel.GetProperty("title").GetString()!, t.GetProperty("expr").GetString()!));
                }
                if (panel.TryGetProperty("panels", out var nested)) Walk(nested);
            }
        }
        Walk(dashboard.GetProperty("panels"));
        return queries;
    }

    private static List<(string Name, string Expr)> AlertRules()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(RepoFiles.Read(AlertsFile)));
        var rules = new List<(string, string)>();
        foreach (YamlMappingNode group in (YamlSequenceNode)((YamlMappingNode)yaml.Documents[0].RootNode)["groups"])
        {
            foreach (YamlMappingNode rule in (YamlSequenceNode)group["rules"])
            {
                rules.Add((((YamlScalarNode)rule["alert"]).Value!, ((YamlScalarNode)rule["expr"]).Value!));
            }
        }
        return rules;
    }

    private sealed class FixedBudgets(BudgetMetric[] rows) : IBudgetMetricsSource
    {
        public IReadOnlyList<BudgetMetric> GetBudgets() => rows;
    }

    private sealed class SettableHealth : IProviderHealthSource
    {
        public volatile ProviderHealthSample[] Rows = [];
        public IReadOnlyList<ProviderHealthSample> SampleHealth() => Rows;
    }
}
