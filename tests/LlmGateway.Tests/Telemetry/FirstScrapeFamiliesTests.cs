using System.Diagnostics.Metrics;
using LlmGateway.Batches;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Providers.Mock;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Telemetry;

/// <summary>
/// The families the exporter package leaves out until they have a series, added to its exposition; and the
/// names they are added under, checked against the names the package itself gives the same instruments.
/// </summary>
public sealed class FirstScrapeFamiliesTests : IDisposable
{
    /// <summary>What Prometheus 2.x sends: OpenMetrics first.</summary>
    private const string PrometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    private readonly string _metricsKeyEnv = "LLMGW_TEST_METRICS_KEY_" + Guid.NewGuid().ToString("N");
    private readonly string _metricsKey = "metrics-" + Guid.NewGuid().ToString("N");
    private readonly ServiceProvider _services;
    private readonly MetricsExposure _exposure;
    private readonly GatewayMetrics _metrics;

    public FirstScrapeFamiliesTests()
    {
        Environment.SetEnvironmentVariable(_metricsKeyEnv, _metricsKey);
        var options = new GatewayOptions();
        options.Auth.MetricsKeyEnv = _metricsKeyEnv;
        options.Providers["mock"] = new ProviderOptions { Type = ProviderTypes.Mock };
        options.Models["echo"] = new ModelOptions { Provider = "mock", Fallbacks = ["echo"] };
        _services = new ServiceCollection()
            .AddMetrics()
            .AddSingleton(Options.Create(options))
            .AddSingleton<IChatProviderFactory>(new MockProviderFactory(TimeProvider.System))
            .AddSingleton<ProviderRegistry>()
            .AddSingleton<IBudgetMetricsSource>(new Budgets())
            .AddSingleton<IProviderHealthSource>(new Health())
            .BuildServiceProvider();
        var meterFactory = _services.GetRequiredService<IMeterFactory>();
        _exposure = new MetricsExposure(meterFactory, new MetricsAccess(Options.Create(options)), new ConfigurationBuilder().Build(), _services);
        _metrics = new GatewayMetrics(meterFactory, Options.Create(options), _services, [new KnownLabelValues(GatewayMetrics.StoreErrorsInstrument, "operation", ["budget_read"])]);
        new BatchMetrics(meterFactory).Item(BatchMetrics.Succeeded);
    }

    public void Dispose()
    {
        _exposure.Dispose();
        _services.Dispose();
        Environment.SetEnvironmentVariable(_metricsKeyEnv, null);
    }

    [Fact]
    public async Task Before_any_request_the_families_without_series_are_listed_in_the_text_format_even_when_openmetrics_is_preferred()
    {
        var text = await MetricsScrape.TextAsync(_exposure, PrometheusAccept);

        foreach (var histogram in (string[])["llm_gateway_request_duration_seconds", "llm_gateway_time_to_first_token_seconds", "llm_gateway_overhead_seconds"])
        {
            Assert.Contains($"\n# TYPE {histogram} histogram\n# HELP {histogram} ", text, StringComparison.Ordinal);
            Assert.DoesNotContain(histogram + "_bucket", text, StringComparison.Ordinal);
        }
        Assert.Contains("\n# TYPE llm_gateway_requests_total counter\n# HELP llm_gateway_requests_total Chat completion requests", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\nllm_gateway_requests_total", text, StringComparison.Ordinal);
        // Families that have series are the package's, never listed twice.
        Assert.Equal(1, Occurrences(text, "# TYPE llm_gateway_cache_requests_total counter"));
        // The text format: no OpenMetrics end marker, no _created series.
        Assert.DoesNotContain("# EOF", text, StringComparison.Ordinal);
        Assert.DoesNotContain("_created", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_gateway_instrument_is_added_under_the_name_the_exporter_gives_it_once_it_has_a_series()
    {
        // A series on every gateway instrument: the exposition is then the package's alone.
        _metrics.OnRequestCompleted(GatewayMetricsTests.Record());
        _metrics.Retry("mock", "echo");

        foreach (var bearer in new[] { null, _metricsKey })
        {
            var exposition = await MetricsScrape.TextAsync(_exposure, bearer: bearer);
            var lines = exposition.Split('\n');
            var families = _exposure.Families.Families.Select(f => f.Value).DistinctBy(f => f.Name).ToList();
            Assert.True(families.Count >= 19, $"only {families.Count} gateway instruments known");
            foreach (var family in families)
            {
                Assert.Contains($"# TYPE {family.Name} {family.Type}", lines);
                // A series under that name: the package wrote the family, so its name and the one added agree.
                var series = family.Name + (family.Type == "histogram" ? "_bucket{" : "{");
                Assert.True(lines.Any(l => l.StartsWith(series, StringComparison.Ordinal)), $"no series {series}… in:\n{exposition}");
            }
            Assert.Equal(bearer is not null, exposition.Contains("key:team-a", StringComparison.Ordinal));
        }
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    private sealed class Budgets : IBudgetMetricsSource
    {
        public IReadOnlyList<BudgetMetric> GetBudgets() => [new("global", "daily", 1, 10), new("key:team-a", "daily", 2, 5)];
    }

    private sealed class Health : IProviderHealthSource
    {
        public IReadOnlyList<ProviderHealthSample> SampleHealth() => [new("mock", null, true, 0), new("mock", "echo", true, 0)];
    }
}
