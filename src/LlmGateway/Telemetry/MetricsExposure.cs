using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace LlmGateway.Telemetry;

/// <summary>
/// The meter providers behind <c>GET /metrics</c>, each with OpenTelemetry.Exporter.Prometheus.AspNetCore's
/// exporter: the gateway's meter and the meters the OpenTelemetry instrumentation packages enable (ASP.NET
/// Core and Kestrel, HttpClient, the runtime).
/// <para>
/// Two providers when a metrics or admin key is configured, because the exporter renders everything its
/// provider collects while the contract shows series naming a gateway key (key ids and their spend) only
/// to an authenticated scrape: the public provider leaves out the instruments tagged
/// <see cref="AuthenticatedScrape"/>, the full one those tagged <see cref="PublicScrape"/>. Every other
/// instrument goes to both, so each measurement is taken twice (MetricsBenchmarks measures it). With no
/// key configured no scrape can be authenticated, and the public provider is the only one.
/// </para>
/// <para>
/// HttpClient's http.client.open_connections is the exception: <see cref="OpenConnectionsGauge"/> counts it once, for
/// both providers, and hands them the same series as an observable instrument (it says why).
/// </para>
/// </summary>
public sealed class MetricsExposure : IDisposable
{
    /// <summary>The instrument tag (never exported: the SDK exports meter tags, not instrument tags) that says which scrape an instrument is for.</summary>
    public const string ScrapeTag = "llm_gateway.scrape";

    /// <summary>On an authenticated scrape only: the instrument observes series that name a gateway key.</summary>
    public static readonly KeyValuePair<string, object?> AuthenticatedScrape = new(ScrapeTag, "authenticated");

    /// <summary>On a public scrape only: the same family as an <see cref="AuthenticatedScrape"/> instrument, with the key series left out.</summary>
    public static readonly KeyValuePair<string, object?> PublicScrape = new(ScrapeTag, "public");

    /// <summary>
    /// Built-in instruments the instrumentation packages enable that would add measurements to every request and
    /// that no contract name, dashboard panel or alert reads (deploy/grafana, deploy/prometheus): routing's match
    /// attempts (http_server_request_duration_seconds already tells requests by route and status); the
    /// in-flight gauges of ASP.NET Core and HttpClient, each two measurements per request, +1 and -1
    /// (llm_gateway_inflight_requests counts the requests that matter, and kestrel_active_connections and
    /// http_client_open_connections, which the dashboard shows, the load); and the memory pool's rented and pooled
    /// bytes, which move with every buffer Kestrel rents and returns (its allocated and evicted bytes, which move
    /// only when the pool grows or shrinks, stay). A dropped instrument is never subscribed to, so ASP.NET Core and
    /// HttpClient, which check <c>Instrument.Enabled</c>, skip the measurement altogether.
    /// <para>
    /// The in-flight gauges were 4 of the 19 measurements a miss made (the gateway's 9, ASP.NET Core's 3, HttpClient's 7
    /// of which 4 are http_client_open_connections moving a connection between idle and active, which the dashboard
    /// reads). Measured (perf, the bench's miss path at 16 connections, 2026-12-02, together with
    /// <see cref="HostingLogGate"/>): OpenTelemetry SDK samples per request down about a fifth, as the count says.
    /// </para>
    /// </summary>
    private static readonly HashSet<(string Meter, string Instrument)> s_perRequestBuiltIns =
    [
        ("Microsoft.AspNetCore.Routing", "aspnetcore.routing.match_attempts"),
        ("Microsoft.AspNetCore.Hosting", "http.server.active_requests"),
        ("System.Net.Http", "http.client.active_requests"),
        ("Microsoft.AspNetCore.MemoryPool", "aspnetcore.memory_pool.rented"),
        ("Microsoft.AspNetCore.MemoryPool", "aspnetcore.memory_pool.pooled"),
    ];

    private readonly MetricsAccess _access;
    private readonly FirstScrapeFamilies _families;
    private readonly OpenConnectionsGauge? _openConnections;
    private readonly RequestDelegate _publicScrape;
    private readonly RequestDelegate? _fullScrape;

    public MetricsExposure(IMeterFactory meterFactory, MetricsAccess access, IConfiguration configuration, IServiceProvider services)
        : this(meterFactory, access, configuration, services, countOpenConnections: true)
    {
    }

    /// <param name="countOpenConnections">
    /// HttpClient's http.client.open_connections counted by <see cref="OpenConnectionsGauge"/> (always, but in the test that
    /// compares it with the SDK's own count).
    /// </param>
    internal MetricsExposure(IMeterFactory meterFactory, MetricsAccess access, IConfiguration configuration, IServiceProvider services, bool countOpenConnections)
    {
        _access = access;
        _families = new FirstScrapeFamilies(meterFactory);
        // Before the providers: HttpClient's instrument may already be published, and they must find it left to the gauge.
        _openConnections = countOpenConnections ? new OpenConnectionsGauge(meterFactory) : null;
        Public = Build(meterFactory, configuration, authenticated: false, _openConnections is not null);
        Full = access.AcceptsKeys ? Build(meterFactory, configuration, authenticated: true, _openConnections is not null) : null;
        _publicScrape = ScrapePipeline(services, Public);
        _fullScrape = Full is null ? null : ScrapePipeline(services, Full);
    }

    /// <summary>The gauge counting HttpClient's open connections, for the benchmark that checks its row measures it.</summary>
    internal OpenConnectionsGauge? OpenConnections => _openConnections;

    /// <summary>The gateway's families, for the test that checks their names against the package's.</summary>
    internal FirstScrapeFamilies Families => _families;

    /// <summary>Everything but the series that name a gateway key.</summary>
    internal MeterProvider Public { get; }

    /// <summary>Everything, key series included; null when no metrics or admin key is configured.</summary>
    internal MeterProvider? Full { get; }

    /// <summary>
    /// <c>GET /metrics</c>: the package's scrape of the provider the presented key allows, a 401 for a key that
    /// is neither the metrics key nor the admin key (so a misconfigured scrape is noticed rather than quietly
    /// given less).
    /// </summary>
    public Task ScrapeAsync(HttpContext context)
    {
        var level = _access.Decide(context.Request);
        if (level == MetricsAccessLevel.Refused)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("The key presented for /metrics is neither the metrics key nor the admin key.\n");
        }
        // The text format 0.0.4, whatever the Accept header prefers (Prometheus 2.x asks for OpenMetrics first):
        // it is what the contract names, and in OpenMetrics every counter and histogram series has a _created
        // twin, which Prometheus 2.x stores as one more series of its own.
        context.Request.Headers.Accept = default;
        var full = level == MetricsAccessLevel.Full;
        var excluded = full ? PublicScrape.Value : AuthenticatedScrape.Value;
        return _families.ScrapeAsync(context, full ? _fullScrape! : _publicScrape, instrument => !Equals(ScrapeOf(instrument), excluded));
    }

    /// <summary>The package's scrape middleware for one provider, as a pipeline of its own.</summary>
    private static RequestDelegate ScrapePipeline(IServiceProvider services, MeterProvider provider) =>
        new ApplicationBuilder(services)
            .UseOpenTelemetryPrometheusScrapingEndpoint(provider, predicate: _ => true, path: null, configureBranchedPipeline: null, optionsName: null)
            .Build();

    private static MeterProvider Build(IMeterFactory meterFactory, IConfiguration configuration, bool authenticated, bool openConnectionsCounted)
    {
        var excluded = authenticated ? PublicScrape.Value : AuthenticatedScrape.Value;
        return Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(resource => GatewayResource.Configure(resource, configuration))
            .AddMeter(GatewayMetrics.MeterName)
            // On .NET 10 these enable the built-in meters: Microsoft.AspNetCore.* (requests, Kestrel's
            // connections), System.Net.Http and System.Net.NameResolution (the calls to providers), System.Runtime.
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation()
            .AddRuntimeInstrumentation()
            .AddView(instrument =>
            {
                // Meters made by another host's IMeterFactory in the same process (only ever the case in tests,
                // where many gateways run side by side) are not this gateway's: their series stay out.
                if (instrument.Meter.Scope is IMeterFactory owner && !ReferenceEquals(owner, meterFactory)) return MetricStreamConfiguration.Drop;
                if (ScrapeOf(instrument) is { } scrape && Equals(scrape, excluded)) return MetricStreamConfiguration.Drop;
                if (s_perRequestBuiltIns.Contains((instrument.Meter.Name, instrument.Name))) return MetricStreamConfiguration.Drop;
                // Exported from OpenConnectionsGauge's instrument instead: the same series, without the SDK's lookup per measurement.
                if (openConnectionsCounted && OpenConnectionsGauge.IsHttpClients(instrument, meterFactory)) return MetricStreamConfiguration.Drop;
                // _count, _sum and _bucket belong to histograms: a gauge named so (the runtime's dotnet.assembly.count,
                // dotnet.timer.count, dotnet.process.cpu.count) reads as part of one, and promtool rejects it.
                // The package keeps such names; they get _value, as /metrics has always shown them.
                if (FirstScrapeFamilies.Family.TypeOf(instrument) == "gauge"
                    && (instrument.Name.EndsWith(".count", StringComparison.Ordinal) || instrument.Name.EndsWith(".sum", StringComparison.Ordinal) || instrument.Name.EndsWith(".bucket", StringComparison.Ordinal)))
                {
                    return new MetricStreamConfiguration { Name = instrument.Name + ".value" };
                }
                return null;
            })
            .AddPrometheusExporter(o =>
            {
                // A scrape reads the values of its moment; never a response cached for an earlier scrape.
                o.ScrapeResponseCacheDurationMilliseconds = 0;
            })
            .Build();
    }

    private static object? ScrapeOf(Instrument instrument)
    {
        if (instrument.Tags is null) return null;
        foreach (var tag in instrument.Tags)
        {
            if (tag.Key == ScrapeTag) return tag.Value;
        }
        return null;
    }

    public void Dispose()
    {
        Full?.Dispose();
        Public.Dispose();
        _openConnections?.Dispose();
        _families.Dispose();
    }
}
