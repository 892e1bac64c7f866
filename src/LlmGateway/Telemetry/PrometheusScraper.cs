using System.Diagnostics.Metrics;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace LlmGateway.Telemetry;

/// <summary>
/// The gateway's OpenTelemetry MeterProvider with a pull reader: each <c>GET /metrics</c> collects the
/// current cumulative values and renders them as Prometheus text (<see cref="PrometheusText"/>).
/// <para>
/// OpenTelemetry.Exporter.Prometheus.AspNetCore (1.20.1-beta.1) now restores but is not used yet; what it
/// would have to match first: a scrape decides per request whether series naming a gateway key are shown
/// (the package collects once for concurrent scrapes and may serve a cached response); every family is
/// listed from the first scrape, histograms included (the package, like the SDK, writes only metrics with
/// points); the contract's names and units, not yet checked against the package's own unit and
/// <c>_total</c> rules (it also adds <c>otel_scope_*</c> labels and <c>target_info</c>). Rendering here is
/// per scrape, never per request.
/// </para>
/// </summary>
public sealed class PrometheusScraper : IDisposable
{
    /// <summary>The meters rendered at /metrics: the gateway's own and the runtime's in-box ones.</summary>
    private static readonly string[] s_meters =
    [
        GatewayMetrics.MeterName,
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "System.Net.Http",
        "System.Runtime",
    ];

    private const int CollectTimeoutMilliseconds = 10_000;

    private readonly Lock _lock = new();
    private readonly TextExporter _exporter = new();
    private readonly MeterProvider _provider;
    private readonly MeterListener _instruments = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Instrument, byte> _gatewayInstruments = new();

    public PrometheusScraper(IMeterFactory meterFactory)
        : this(meterFactory, s_meters)
    {
    }

    /// <summary>A scraper of the given meters only (the renderer's tests use meters of their own).</summary>
    internal PrometheusScraper(IMeterFactory? meterFactory, params string[] meters)
    {
        _provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(meters)
            // Meters made by another host's IMeterFactory in the same process (only ever the case in tests,
            // where many gateways run side by side) are not this gateway's: their series stay out.
            .AddView(instrument => instrument.Meter.Scope is IMeterFactory owner && !ReferenceEquals(owner, meterFactory)
                ? MetricStreamConfiguration.Drop
                : null)
            .AddReader(new BaseExportingMetricReader(_exporter))
            .Build();

        // The gateway's own instruments, known as they are created (never listened to: no measurement cost),
        // so a family with nothing recorded yet still has its HELP and TYPE on the first scrape.
        _instruments.InstrumentPublished = (instrument, _) =>
        {
            if (instrument.Meter.Name == GatewayMetrics.MeterName && meters.Contains(GatewayMetrics.MeterName)
                && (instrument.Meter.Scope is not IMeterFactory owner || ReferenceEquals(owner, meterFactory)))
            {
                _gatewayInstruments.TryAdd(instrument, 0);
            }
        };
        _instruments.Start();
    }

    /// <summary>
    /// Collects and renders every metric; null when collection failed or timed out. Series naming a gateway
    /// key only with <paramref name="keySeries"/> (an authenticated scrape).
    /// </summary>
    public byte[]? Scrape(bool keySeries = true)
    {
        // One scrape at a time: the exporter renders into one buffer during Collect().
        lock (_lock)
        {
            _exporter.Begin(keySeries);
            // The reader gives a pull exporter its Collect, which opens the pull scope collection needs.
            if (_exporter.Collect?.Invoke(CollectTimeoutMilliseconds) != true) return null;
            foreach (var instrument in _gatewayInstruments.Keys) _exporter.WriteEmptyFamily(instrument);
            return Encoding.UTF8.GetBytes(_exporter.Text.ToString());
        }
    }

    public void Dispose()
    {
        _instruments.Dispose();
        _provider.Dispose();
    }

    /// <summary>Renders the batch a collection hands over; the points are only valid during Export.</summary>
    [ExportModes(ExportModes.Pull)]
    private sealed class TextExporter : BaseExporter<Metric>, IPullMetricExporter
    {
        private readonly HashSet<string> _taken = new(StringComparer.Ordinal);

        public StringBuilder Text { get; } = new(32 * 1024);

        public Func<int, bool>? Collect { get; set; }

        private bool _keySeries;

        public void Begin(bool keySeries)
        {
            Text.Clear();
            _taken.Clear();
            _keySeries = keySeries;
        }

        public void WriteEmptyFamily(Instrument instrument) => PrometheusText.WriteEmptyFamily(Text, instrument, _taken);

        public override ExportResult Export(in Batch<Metric> batch)
        {
            foreach (var metric in batch)
            {
                PrometheusText.WriteMetric(Text, metric, _taken, _keySeries);
            }
            return ExportResult.Success;
        }
    }
}
