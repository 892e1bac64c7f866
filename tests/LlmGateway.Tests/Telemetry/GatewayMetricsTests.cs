using System.Diagnostics.Metrics;
using System.Text;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Providers.Mock;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Telemetry;

public sealed class GatewayMetricsTests : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly MetricsExposure _exposure;
    private readonly GatewayMetrics _metrics;

    public GatewayMetricsTests()
    {
        var options = new GatewayOptions();
        options.Providers["Mock"] = new ProviderOptions { Type = ProviderTypes.Mock };
        options.Models["Echo"] = new ModelOptions { Provider = "Mock", CostPer1kInput = 0.001m, CostPer1kOutput = 0.002m };
        options.Routing.TaskTypes["Coding"] = new TaskTypeOptions();
        _services = new ServiceCollection()
            .AddMetrics()
            .AddSingleton(Options.Create(options))
            .AddSingleton<IChatProviderFactory>(new MockProviderFactory(TimeProvider.System))
            .AddSingleton<ProviderRegistry>()
            .BuildServiceProvider();
        var meterFactory = _services.GetRequiredService<IMeterFactory>();
        _exposure = new MetricsExposure(meterFactory, new MetricsAccess(Options.Create(options)), new ConfigurationBuilder().Build(), _services);
        _metrics = new GatewayMetrics(meterFactory, Options.Create(options), _services, []);
    }

    public void Dispose()
    {
        _exposure.Dispose();
        _services.Dispose();
    }

    /// <summary>A finished request that reached a model: every request instrument gets a measurement.</summary>
    internal static RequestRecord Record(string model = "echo", int status = 200) => new()
    {
        RequestId = "req_1",
        StartedAt = DateTimeOffset.UnixEpoch,
        Model = model,
        Provider = "mock",
        TaskType = "coding",
        Status = status,
        Usage = new TokenUsage(10, 5, 2),
        CostUsd = 0.00002m,
        Duration = TimeSpan.FromMilliseconds(120),
        TimeToFirstToken = TimeSpan.FromMilliseconds(40),
        Overhead = TimeSpan.FromMilliseconds(0.3),
    };

    [Fact]
    public async Task Recording_a_finished_request_allocates_nothing_once_its_series_exist()
    {
        var record = Record();
        // Warm up past tiered compilation, whose one-off allocations are the runtime's, not ours.
        for (var i = 0; i < 10_000; i++) _metrics.OnRequestCompleted(record);

        // The best of three windows: a call that allocated would show in every one of them.
        var least = long.MaxValue;
        for (var window = 0; window < 3; window++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 1_000; i++) _metrics.OnRequestCompleted(record);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, least);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"Echo\",provider=\"Mock\",status=\"200\",task_type=\"Coding\"} 13000", await MetricsScrape.TextAsync(_exposure), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_request_counts_in_its_own_series_whichever_series_its_thread_recorded_last()
    {
        var echo = Record();
        var failed = Record(status: 500);
        var sameText = Record(model: new string("echo".AsSpan())); // equal text, another string
        var noModel = Record(model: "");
        var otherTask = Record();
        otherTask.TaskType = "unknown";
        var noProvider = Record();
        noProvider.Provider = "";
        foreach (var record in (RequestRecord[])[echo, echo, failed, echo, sameText, noModel, echo, otherTask, noProvider, echo])
        {
            _metrics.OnRequestCompleted(record);
        }

        var text = await MetricsScrape.TextAsync(_exposure);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"Echo\",provider=\"Mock\",status=\"200\",task_type=\"Coding\"} 6", text, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"Echo\",provider=\"Mock\",status=\"500\",task_type=\"Coding\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"none\",provider=\"Mock\",status=\"200\",task_type=\"Coding\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"Echo\",provider=\"Mock\",status=\"200\",task_type=\"other\"} 1", text, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_requests_total{otel_scope_name=\"LlmGateway\",model=\"Echo\",provider=\"none\",status=\"200\",task_type=\"Coding\"} 1", text, StringComparison.Ordinal);
        // Tokens only for requests that reached a model: eight of them on Echo and Mock, one on Echo without a provider.
        Assert.Contains("llm_gateway_tokens_total{otel_scope_name=\"LlmGateway\",direction=\"input\",model=\"Echo\",provider=\"Mock\"} 80", text, StringComparison.Ordinal);
        Assert.Contains("llm_gateway_tokens_total{otel_scope_name=\"LlmGateway\",direction=\"input\",model=\"Echo\",provider=\"none\"} 10", text, StringComparison.Ordinal);
        Assert.DoesNotContain("model=\"none\",provider=\"Mock\"} ", text.Split('\n').Where(l => l.StartsWith("llm_gateway_tokens_total", StringComparison.Ordinal)).Aggregate("", string.Concat), StringComparison.Ordinal);
    }

    [Fact]
    public void Label_values_use_the_configured_spelling_and_anything_unknown_is_other()
    {
        var labels = new MetricLabels(Options.Create(new GatewayOptions
        {
            Models = { ["GPT-4o"] = new ModelOptions() },
            Providers = { ["OpenAI"] = new ProviderOptions() },
            Routing = { DefaultTaskType = "general" },
        }).Value);

        Assert.Equal("GPT-4o", labels.Model("gpt-4O"));
        Assert.Equal("other", labels.Model("gpt-5-made-up"));
        Assert.Equal("none", labels.Model(""));
        Assert.Equal("OpenAI", labels.Provider("openai"));
        Assert.Equal("general", labels.TaskType("GENERAL"));
        Assert.Equal("other", labels.TaskType("anything a header says"));
    }

    [Theory]
    [InlineData(200, RequestOutcomes.Ok, "200")]
    [InlineData(429, RequestOutcomes.Error, "429")]
    [InlineData(502, RequestOutcomes.Error, "502")]
    [InlineData(499, RequestOutcomes.Cancelled, "499")]
    [InlineData(200, RequestOutcomes.Broken, "broken")]
    [InlineData(0, RequestOutcomes.Ok, "500")]
    public void The_status_label_is_the_http_status_sent_or_broken_for_a_stream_that_failed_midway(int status, string outcome, string expected)
    {
        var record = Record(status: status);
        record.Outcome = outcome;
        Assert.Equal(expected, MetricLabels.Status(record));
    }

    [Fact]
    public void Cache_results_outside_the_known_four_are_other()
    {
        Assert.Equal("hit", MetricLabels.CacheResult("hit"));
        Assert.Equal("bypass", MetricLabels.CacheResult("bypass"));
        Assert.Equal("other", MetricLabels.CacheResult("HIT!"));
    }
}
