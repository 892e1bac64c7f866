using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace LlmGateway.Telemetry;

/// <summary>
/// HttpClient's <c>http.client.open_connections</c> (http_client_open_connections, which the dashboard reads), counted
/// here and handed to the SDK as an observable up-down counter of the same meter name, instrument name, unit,
/// description and tags, rather than taken by the SDK measurement by measurement (<see cref="MetricsExposure"/> drops
/// HttpClient's own instrument from its providers and exports this one instead).
/// <para>
/// Why: every call upstream moves its connection from idle to active and back, four measurements of six tags
/// (<c>ConnectionMetrics.IdleStateChanged</c>), and the SDK looks each one's series up by hashing every tag key and
/// value and comparing them all (<c>AggregatorStore.Update</c>; in perf of the miss path at 16 connections the largest
/// OpenTelemetry frame, above all under <c>IdleStateChanged</c>). A connection's tags are the same objects for its
/// whole life (its boxed port, its peer address string, the state literals), so here a measurement finds its series
/// by those objects' identities: a few reference comparisons and one interlocked add. A tag set seen for the first
/// time (a new connection) is looked up by value, as the SDK does, so connections whose tags are equal share a series.
/// </para>
/// <para>
/// The same series and values: the SDK exports an up-down counter as a gauge of its running sum, per tag set, keeping a
/// series at 0 once its connections are gone; an observable up-down counter is exported as a gauge of the value
/// observed, and every tag set ever seen is observed at its running sum (<c>OpenConnectionsGaugeTests</c> scrapes
/// both ways and compares). Created when HttpClient's instrument is first published, with its unit and description,
/// so the family appears when it did before (at the first connection) with the same HELP line.
/// </para>
/// <para>
/// The same bound: the SDK keeps at most <see cref="CardinalityLimit"/> tag sets of an instrument as series and adds the
/// measurements of any later tag set to one series tagged <c>otel.metric.overflow=true</c> (always so since OpenTelemetry
/// 1.10; with cumulative temporality, which the Prometheus exporter uses, a series once made is never reclaimed). So does
/// this class, the first tag sets seen keeping their series, so that peer addresses and ports that keep changing grow
/// neither the memory here nor the list every scrape observes (once per provider). The SDK bounds this instrument's
/// series too, but only after being handed every tag set ever seen at every scrape.
/// </para>
/// <para>
/// Measured (MetricsBenchmarks.OpenConnections_RequestCycle, one call's four measurements, short job on the loaded
/// 2-core machine, 2026-12-03): 396 → 185 ns with one meter provider, 1,050 → 250 ns with two (the SDK took each
/// measurement once per provider; this class once for both); no allocation either way.
/// </para>
/// </summary>
internal sealed class OpenConnectionsGauge : IDisposable
{
    public const string MeterName = "System.Net.Http";
    public const string InstrumentName = "http.client.open_connections";

    /// <summary>
    /// The SDK's default cardinality limit (<c>MeterProviderBuilderSdk.DefaultCardinalityLimit</c>; <see cref="MetricsExposure"/>
    /// sets none): tag sets kept as series of their own, the overflow series aside.
    /// </summary>
    public const int CardinalityLimit = 2000;

    /// <summary>Slots of the identity cache, in sets of <see cref="Ways"/>: a tag set goes in one set, in either of its slots.</summary>
    private const int Slots = 256;

    /// <summary>
    /// Two slots a set: a direct-mapped cache (one slot) thrashed whenever two live tag sets shared a slot (a
    /// connection's active and idle state, by chance one time in 256): every measurement then missed, allocated and took
    /// the lookup by value. Two tag sets that share a set now both stay; a third replaces the older of them.
    /// </summary>
    private const int Ways = 2;

    private readonly IMeterFactory _meterFactory;
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<SeriesKey, Series> _series = new();
    /// <summary>The series in the order they were first seen: the order the SDK creates its points in, and exports them.</summary>
    private readonly List<Series> _ordered = [];
    private readonly Seen?[] _seen = new Seen?[Slots];
    /// <summary>Per set, which of its slots a new tag set replaces next when both are taken (a race only picks the other).</summary>
    private readonly byte[] _next = new byte[Slots / Ways];
    /// <summary>The tag sets past <see cref="CardinalityLimit"/>, summed under the SDK's overflow tag; made (under the lock of <see cref="_ordered"/>) by the first of them.</summary>
    private Series? _overflow;
    private int _created;

    /// <param name="meterFactory">This host's meter factory: the observable instrument is made by it (so only this host's providers export it), and HttpClient's instruments are taken from the shared meter or from it.</param>
    public OpenConnectionsGauge(IMeterFactory meterFactory)
    {
        _meterFactory = meterFactory;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!IsHttpClients(instrument, meterFactory)) return;
            CreateObservable(instrument);
            listener.EnableMeasurementEvents(instrument, this);
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((OpenConnectionsGauge)state!).Add(value, tags));
        _listener.Start();
    }

    /// <summary>
    /// HttpClient's own instrument, from the meter every handler without a meter factory shares or from this host's
    /// factory (a meter another host's factory made is that host's, as <see cref="MetricsExposure"/> decides for every
    /// instrument); the one <see cref="MetricsExposure"/> leaves to this class.
    /// </summary>
    public static bool IsHttpClients(Instrument instrument, IMeterFactory meterFactory) =>
        instrument is UpDownCounter<long> && instrument.Name == InstrumentName && instrument.Meter.Name == MeterName
        && (instrument.Meter.Scope is null || ReferenceEquals(instrument.Meter.Scope, meterFactory));

    /// <summary>This class's instrument, once, with the unit, description and tags of HttpClient's (so the same HELP line).</summary>
    private void CreateObservable(Instrument httpClients)
    {
        if (Interlocked.Exchange(ref _created, 1) != 0) return;
        // A new instrument, published to every listener (the SDK's providers too) once this returns.
        _meterFactory.Create(MeterName).CreateObservableUpDownCounter(InstrumentName, Observe, httpClients.Unit, httpClients.Description, httpClients.Tags ?? []);
    }

    private void Add(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var set = Set(tags);
        var first = set * Ways;
        if (Cached(tags, first) is { } seen)
        {
            Interlocked.Add(ref seen.Series.Value, value);
            return;
        }
        var series = SeriesOf(tags);
        Interlocked.Add(ref series.Value, value);
        var free = Volatile.Read(ref _seen[first]) is null ? 0 : Volatile.Read(ref _seen[first + 1]) is null ? 1 : _next[set]++ & 1;
        Volatile.Write(ref _seen[first + free], new Seen([.. tags], series));
    }

    /// <summary>
    /// Whether a measurement of these very tag objects finds its series in the identity cache: what MetricsBenchmarks'
    /// setup checks, so that its row measures this class and not measurements going elsewhere (or nowhere).
    /// </summary>
    internal bool FindsByIdentity(ReadOnlySpan<KeyValuePair<string, object?>> tags) => Cached(tags, Set(tags) * Ways) is not null;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Seen? Cached(ReadOnlySpan<KeyValuePair<string, object?>> tags, int first)
    {
        for (var slot = first; slot < first + Ways; slot++)
        {
            if (Volatile.Read(ref _seen[slot]) is { } seen && seen.Is(tags)) return seen;
        }
        return null;
    }

    /// <summary>The set of a tag set by its values' identities (its keys are HttpClient's constants, compared in <see cref="Seen.Is"/>).</summary>
    private static int Set(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var hash = 0;
        foreach (var tag in tags) hash = (hash * 31) + RuntimeHelpers.GetHashCode(tag.Value);
        return (int)((uint)hash % (Slots / Ways));
    }

    /// <summary>
    /// The series of a tag set by value (keys ordinal, values by <see cref="object.Equals(object?, object?)"/>, order aside),
    /// as the SDK keys them; past <see cref="CardinalityLimit"/> series, the overflow series, and the tag set is not kept
    /// (the identity cache may hold it for a while, pointing at the overflow series).
    /// </summary>
    private Series SeriesOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        KeyValuePair<string, object?>[] sorted = [.. tags];
        Array.Sort(sorted, static (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var key = new SeriesKey(sorted);
        if (_series.TryGetValue(key, out var series)) return series;
        lock (_ordered)
        {
            if (_series.TryGetValue(key, out series)) return series;
            if (_ordered.Count >= CardinalityLimit) return _overflow ??= new Series([new("otel.metric.overflow", true)]);
            series = new Series(key.Tags);
            _ordered.Add(series);
            _series[key] = series;
            return series;
        }
    }

    /// <summary>
    /// Every tag set kept, at its running sum: a series stays once its connections are gone, as the SDK keeps it. The
    /// overflow series last: to the SDK it is then one tag set past its limit, which it counts in its own overflow point
    /// (the same tag), exported first, where it exported HttpClient's (<c>OpenConnectionsGaugeTests</c> compares them).
    /// </summary>
    private List<Measurement<long>> Observe()
    {
        lock (_ordered)
        {
            var measurements = new List<Measurement<long>>(_ordered.Count + 1);
            foreach (var series in _ordered) measurements.Add(new Measurement<long>(Volatile.Read(ref series.Value), series.Tags));
            if (_overflow is { } overflow) measurements.Add(new Measurement<long>(Volatile.Read(ref overflow.Value), overflow.Tags));
            return measurements;
        }
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>A tag set as one connection hands it over (these very key and value objects) and the series it counts in.</summary>
    private sealed class Seen(KeyValuePair<string, object?>[] tags, Series series)
    {
        public Series Series { get; } = series;

        public bool Is(ReadOnlySpan<KeyValuePair<string, object?>> other)
        {
            if (other.Length != tags.Length) return false;
            for (var i = 0; i < tags.Length; i++)
            {
                if (!ReferenceEquals(tags[i].Key, other[i].Key) || !ReferenceEquals(tags[i].Value, other[i].Value)) return false;
            }
            return true;
        }
    }

    private sealed class Series(KeyValuePair<string, object?>[] tags)
    {
        public readonly KeyValuePair<string, object?>[] Tags = tags;
        public long Value;
    }

    /// <summary>A tag set sorted by key, equal to another with the same keys and equal values.</summary>
    private readonly struct SeriesKey(KeyValuePair<string, object?>[] tags) : IEquatable<SeriesKey>
    {
        public KeyValuePair<string, object?>[] Tags { get; } = tags;

        public bool Equals(SeriesKey other)
        {
            if (Tags.Length != other.Tags.Length) return false;
            for (var i = 0; i < Tags.Length; i++)
            {
                if (!string.Equals(Tags[i].Key, other.Tags[i].Key, StringComparison.Ordinal) || !Equals(Tags[i].Value, other.Tags[i].Value)) return false;
            }
            return true;
        }

        public override bool Equals(object? obj) => obj is SeriesKey other && Equals(other);

        public override int GetHashCode()
        {
            var hash = new HashCode();
            foreach (var (key, value) in Tags)
            {
                hash.Add(key, StringComparer.Ordinal);
                hash.Add(value);
            }
            return hash.ToHashCode();
        }
    }
}
