using System.Diagnostics;
using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using LlmGateway.Configuration;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Providers.Mock;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LlmGateway.Benchmarks;

/// <summary>
/// What the second meter provider costs per request (<see cref="MetricsExposure"/>: with a metrics or admin
/// key configured every measurement goes to a public and a full provider). <see cref="Providers"/> 1 is the
/// gateway without such a key, 2 with one. <c>OnRequestCompleted</c> is the gateway's own recording of one
/// finished request (a counter, three histograms, four counter adds); the other two are one measurement each.
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private const string KeyEnv = "LLMGW_BENCH_METRICS_KEY";

    private ServiceProvider _services = null!;
    private MetricsExposure _exposure = null!;
    private GatewayMetrics _metrics = null!;
    private Counter<long> _counter = null!;
    private Histogram<double> _histogram = null!;
    private RequestRecord _record = null!;

    [Params(1, 2)]
    public int Providers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Environment.SetEnvironmentVariable(KeyEnv, Providers == 2 ? "bench-metrics-key" : null);
        var options = new GatewayOptions();
        options.Auth.MetricsKeyEnv = KeyEnv;
        options.Auth.AdminKeyEnv = "";
        options.Providers["mock"] = new ProviderOptions { Type = ProviderTypes.Mock };
        options.Models["echo"] = new ModelOptions { Provider = "mock" };
        _services = new ServiceCollection()
            .AddMetrics()
            .AddSingleton(Options.Create(options))
            .AddSingleton<IChatProviderFactory>(new MockProviderFactory(TimeProvider.System))
            .AddSingleton<ProviderRegistry>()
            .BuildServiceProvider();
        var meterFactory = _services.GetRequiredService<IMeterFactory>();
        _exposure = new MetricsExposure(meterFactory, new MetricsAccess(Options.Create(options)), new ConfigurationBuilder().Build(), _services);
        if ((_exposure.Full is null ? 1 : 2) != Providers) throw new InvalidOperationException("the exposure has the wrong number of providers");
        _metrics = new GatewayMetrics(meterFactory, Options.Create(options), _services, []);
        var meter = meterFactory.Create(GatewayMetrics.MeterName);
        _counter = meter.CreateCounter<long>("bench.counter");
        _histogram = meter.CreateHistogram<double>("bench.histogram", "s");
        _record = new RequestRecord
        {
            RequestId = "req_1",
            StartedAt = DateTimeOffset.UnixEpoch,
            Model = "echo",
            Provider = "mock",
            TaskType = "general",
            Status = 200,
            Usage = new TokenUsage(10, 5, 2),
            CostUsd = 0.00002m,
            Duration = TimeSpan.FromMilliseconds(120),
            TimeToFirstToken = TimeSpan.FromMilliseconds(40),
            Overhead = TimeSpan.FromMilliseconds(0.3),
        };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _exposure.Dispose();
        _services.Dispose();
        Environment.SetEnvironmentVariable(KeyEnv, null);
    }

    [Benchmark]
    public void OnRequestCompleted() => _metrics.OnRequestCompleted(_record);

    /// <summary>Like the request counter: four tags.</summary>
    [Benchmark]
    public void Counter_Add() => _counter.Add(1, new TagList { { "model", "echo" }, { "provider", "mock" }, { "task_type", "general" }, { "status", "200" } });

    /// <summary>Like the duration histogram: two tags.</summary>
    [Benchmark]
    public void Histogram_Record() => _histogram.Record(0.12, new TagList { { "model", "echo" }, { "provider", "mock" } });
}
