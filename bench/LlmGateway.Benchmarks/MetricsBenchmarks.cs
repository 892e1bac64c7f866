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
/// What the gateway's own metrics cost per request, and what the second meter provider adds (<see cref="MetricsExposure"/>:
/// with a metrics or admin key configured every measurement goes to a public and a full provider). <see cref="Providers"/>
/// 1 is the gateway without such a key, 2 with one. <c>OnRequestCompleted</c> is the gateway's own recording of one
/// finished request (its counters in <see cref="GatewayMetrics"/>' own cells, two or three histogram measurements);
/// <c>OnRequestCompleted_AllInSdk</c> is the same recording as it was made before, every counter an SDK instrument
/// (a counter, three histograms, four counter adds), kept here as the baseline. <c>CacheLookup</c> and
/// <c>CacheLookup_InSdk</c> the same for the cache lookup counter; the last two are one SDK measurement each.
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
    private AllInSdk _sdk = null!;
    private RequestRecord _record = null!;
    private UpDownCounter<long> _openConnections = null!;
    private Connection _connection = null!;

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
        _sdk = new AllInSdk(meter);
        // HttpClient's instrument as its handlers make it, on this host's meter factory so that the exposure takes it.
        _openConnections = meterFactory.Create("System.Net.Http").CreateUpDownCounter<long>("http.client.open_connections", "{connection}",
            "Number of outbound HTTP connections that are currently active or idle on the client.");
        _connection = new Connection(_openConnections, "1.1", "http", "127.0.0.1", 8081, "127.0.0.1");
        _connection.Established();
        // The row is OpenConnectionsGauge's path: the exposure must have taken HttpClient's instrument from the SDK (the
        // same predicate decides both) and each of the cycle's tag sets must be found in the gauge's identity cache.
        // An instrument the gauge does not take (another meter, another factory) would be measured going nowhere or
        // through the SDK, and the row would still print a number.
        _connection.IdleStateChanged(idle: false);
        _connection.IdleStateChanged(idle: true);
        if (_exposure.OpenConnections is not { } gauge || !_connection.FoundByIdentity(gauge))
        {
            throw new InvalidOperationException("OpenConnections_RequestCycle would not measure OpenConnectionsGauge's identity cache");
        }
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

    [Benchmark]
    public void OnRequestCompleted_AllInSdk() => _sdk.OnRequestCompleted(_record);

    [Benchmark]
    public void CacheLookup() => _metrics.CacheLookup("miss");

    [Benchmark]
    public void CacheLookup_InSdk() => _sdk.CacheLookup("miss");

    /// <summary>Like the request counter: four tags.</summary>
    [Benchmark]
    public void Counter_Add() => _counter.Add(1, new TagList { { "model", "echo" }, { "provider", "mock" }, { "task_type", "general" }, { "status", "200" } });

    /// <summary>Like the duration histogram: two tags.</summary>
    [Benchmark]
    public void Histogram_Record() => _histogram.Record(0.12, new TagList { { "model", "echo" }, { "provider", "mock" } });

    /// <summary>
    /// HttpClient's http_client_open_connections as one call upstream moves its connection from idle to active and back
    /// (four measurements of six tags, as <c>ConnectionMetrics.IdleStateChanged</c> makes them; the dashboard reads the family).
    /// </summary>
    [Benchmark]
    public void OpenConnections_RequestCycle()
    {
        _connection.IdleStateChanged(idle: false);
        _connection.IdleStateChanged(idle: true);
    }

    /// <summary>
    /// One upstream connection's tags as HttpClient's <c>ConnectionMetrics</c> holds them (its port boxed and its peer
    /// address made once per connection) and the measurements it makes when the connection changes state.
    /// </summary>
    private sealed class Connection(UpDownCounter<long> openConnections, string protocolVersion, string scheme, string host, int port, string peerAddress)
    {
        private readonly object _port = port;

        public void Established()
        {
            var tags = Tags();
            tags.Add(State(idle: true));
            openConnections.Add(1, tags);
        }

        public void IdleStateChanged(bool idle)
        {
            var tags = Tags();
            tags.Add(State(!idle));
            openConnections.Add(-1, tags);
            tags[tags.Count - 1] = State(idle);
            openConnections.Add(1, tags);
        }

        /// <summary>Whether the gauge finds both of this connection's tag sets (idle, active) by these very objects.</summary>
        public bool FoundByIdentity(OpenConnectionsGauge gauge) =>
            gauge.FindsByIdentity([.. Tags(), State(idle: true)]) && gauge.FindsByIdentity([.. Tags(), State(idle: false)]);

        private TagList Tags() => new()
        {
            { "network.protocol.version", protocolVersion }, { "url.scheme", scheme }, { "server.address", host },
            { "server.port", _port }, { "network.peer.address", peerAddress },
        };

        private static KeyValuePair<string, object?> State(bool idle) => new("http.connection.state", idle ? "idle" : "active");
    }

    /// <summary>The gateway's recording of a request before its counters were its own (label values as MetricLabels gives them).</summary>
    private sealed class AllInSdk(Meter meter)
    {
        private readonly Counter<long> _requests = meter.CreateCounter<long>("bench.sdk.requests", "{request}");
        private readonly Histogram<double> _duration = meter.CreateHistogram("bench.sdk.request.duration", "s", null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = GatewayMetrics.DurationBuckets });
        private readonly Histogram<double> _firstToken = meter.CreateHistogram("bench.sdk.time_to_first_token", "s", null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = GatewayMetrics.FirstTokenBuckets });
        private readonly Histogram<double> _overhead = meter.CreateHistogram("bench.sdk.overhead", "s", null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = GatewayMetrics.OverheadBuckets });
        private readonly Counter<long> _tokens = meter.CreateCounter<long>("bench.sdk.tokens", "{token}");
        private readonly Counter<double> _cost = meter.CreateCounter<double>("bench.sdk.cost", "usd");
        private readonly Counter<long> _cacheRequests = meter.CreateCounter<long>("bench.sdk.cache.requests", "{request}");

        public void OnRequestCompleted(RequestRecord record)
        {
            const string model = "echo", provider = "mock";
            _requests.Add(1, new TagList { { "model", model }, { "provider", provider }, { "task_type", "general" }, { "status", "200" } });
            var byModel = new TagList { { "model", model }, { "provider", provider } };
            _duration.Record(record.Duration.TotalSeconds, byModel);
            if (record.TimeToFirstToken is { } firstToken) _firstToken.Record(firstToken.TotalSeconds, byModel);
            _overhead.Record(record.Overhead.TotalSeconds, new TagList { { "provider", provider } });
            var usage = record.Usage;
            _tokens.Add(usage.Prompt, new TagList { { "model", model }, { "provider", provider }, { "direction", "input" } });
            _tokens.Add(usage.Completion, new TagList { { "model", model }, { "provider", provider }, { "direction", "output" } });
            _tokens.Add(usage.CachedPrompt, new TagList { { "model", model }, { "provider", provider }, { "direction", "cached" } });
            _cost.Add((double)record.CostUsd, byModel);
        }

        public void CacheLookup(string result) => _cacheRequests.Add(1, new TagList { { "result", MetricLabels.CacheResult(result) } });
    }
}
