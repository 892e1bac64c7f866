using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Telemetry;

/// <summary>
/// The one part of /metrics the Prometheus exporter package cannot do: the contract lists every gateway
/// family from the first scrape, with its HELP and TYPE even before it has a series, and the package (like
/// the SDK, which hands an exporter only metrics with points) writes a family only once something was
/// recorded. Counters start at 0 for the label sets known at start-up (<see cref="GatewayMetrics"/>), but the
/// request counter and the histograms have none: a histogram cannot be given a point without an observation,
/// and a request count for a status nobody has had yet would be made up. So after the package has written
/// its exposition (the text format: <see cref="MetricsExposure.ScrapeAsync"/>), the HELP and TYPE lines of
/// each gateway family it left out are added at the end; once every family has a series, nothing is added.
/// Costs one buffered copy per scrape, never anything per request.
/// </summary>
internal sealed class FirstScrapeFamilies : IDisposable
{
    private readonly MeterListener _instruments = new();
    private readonly ConcurrentDictionary<Instrument, Family> _families = new();

    /// <param name="meterFactory">This host's meter factory: a gateway meter another host made (tests run many side by side) is not this one's.</param>
    public FirstScrapeFamilies(IMeterFactory meterFactory)
    {
        // Known as they are created; never listened to, so no measurement costs anything here.
        _instruments.InstrumentPublished = (instrument, _) =>
        {
            if (instrument.Meter.Name != GatewayMetrics.MeterName) return;
            if (instrument.Meter.Scope is IMeterFactory owner && !ReferenceEquals(owner, meterFactory)) return;
            if (Family.Of(instrument) is { } family) _families.TryAdd(instrument, family);
        };
        _instruments.Start();
    }

    /// <summary>The gateway's instruments known so far, with the family each is exported as.</summary>
    internal IEnumerable<KeyValuePair<Instrument, Family>> Families => _families;

    /// <summary>The gateway family an instrument is exported as.</summary>
    internal sealed record Family(string Name, string Type, string Help)
    {
        /// <summary>
        /// The package's naming (OpenTelemetry's Prometheus rules) for the gateway's instruments, whose names
        /// are dotted lower-case words and whose units are <c>s</c>, <c>usd</c> or an annotation:
        /// dots become underscores, the unit is appended (<c>s</c> as <c>seconds</c>, annotations dropped),
        /// counters end in <c>_total</c>. FirstScrapeFamiliesTests
        /// checks this against the package's own output for every gateway instrument.
        /// </summary>
        public static Family? Of(Instrument instrument)
        {
            var type = TypeOf(instrument);
            if (type is null) return null;
            var name = instrument.Name.Replace('.', '_');
            var unit = instrument.Unit switch
            {
                null or "" => "",
                ['{', .., '}'] => "",
                "s" => "seconds",
                var other => other,
            };
            if (unit.Length > 0 && !name.EndsWith(unit, StringComparison.Ordinal)) name += "_" + unit;
            var help = string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description;
            return new(type == "counter" ? name + "_total" : name, type, help);
        }

        /// <summary>The Prometheus type the SDK's default aggregation gives an instrument.</summary>
        public static string? TypeOf(Instrument instrument)
        {
            if (!instrument.GetType().IsGenericType) return null;
            var definition = instrument.GetType().GetGenericTypeDefinition();
            if (definition == typeof(Counter<>) || definition == typeof(ObservableCounter<>)) return "counter";
            if (definition == typeof(Histogram<>)) return "histogram";
            if (definition == typeof(ObservableGauge<>) || definition == typeof(Gauge<>)
                || definition == typeof(UpDownCounter<>) || definition == typeof(ObservableUpDownCounter<>)) return "gauge";
            return null;
        }
    }

    /// <summary>
    /// Runs <paramref name="scrape"/> (the package's middleware, asked for the text format) into a buffer, then
    /// sends what it wrote with the missing families' HELP and TYPE added. <paramref name="exported"/> says whether this scrape's
    /// provider exports an instrument at all.
    /// </summary>
    public async Task ScrapeAsync(HttpContext context, RequestDelegate scrape, Func<Instrument, bool> exported)
    {
        // The package gzips when asked to; the families are added to plain text, and a scrape is small.
        context.Request.Headers.AcceptEncoding = default;
        var body = context.Features.Get<IHttpResponseBodyFeature>()!;
        using var buffer = new MemoryStream(64 * 1024);
        var buffered = new StreamResponseBodyFeature(buffer);
        context.Features.Set<IHttpResponseBodyFeature>(buffered);
        try
        {
            await scrape(context);
            await buffered.CompleteAsync();
        }
        finally
        {
            context.Features.Set(body);
        }

        var written = new ReadOnlyMemory<byte>(buffer.GetBuffer(), 0, (int)buffer.Length);
        if (context.Response.StatusCode != StatusCodes.Status200OK || written.Length == 0)
        {
            await body.Writer.WriteAsync(written, context.RequestAborted);
            return;
        }

        var text = Encoding.UTF8.GetString(written.Span);
        var missing = new StringBuilder();
        var added = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (instrument, family) in _families)
        {
            if (!exported(instrument)) continue;
            if (!added.Add(family.Name) || text.Contains("# TYPE " + family.Name + " ", StringComparison.Ordinal)) continue;
            missing.Append("# TYPE ").Append(family.Name).Append(' ').Append(family.Type).Append('\n');
            missing.Append("# HELP ").Append(family.Name).Append(' ')
                .Append(family.Help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        }
        await body.Writer.WriteAsync(written, context.RequestAborted);
        if (missing.Length > 0) await body.Writer.WriteAsync(Encoding.UTF8.GetBytes(missing.ToString()), context.RequestAborted);
    }

    public void Dispose() => _instruments.Dispose();
}
