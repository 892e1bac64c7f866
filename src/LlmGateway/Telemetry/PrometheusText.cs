using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace LlmGateway.Telemetry;

/// <summary>
/// Renders OpenTelemetry metrics in Prometheus' text exposition format 0.0.4, following the
/// OpenTelemetry-to-Prometheus naming rules: dots and other invalid characters become underscores,
/// the unit becomes a suffix (<c>s</c> → <c>_seconds</c>, <c>By</c> → <c>_bytes</c>, <c>{request}</c> → nothing),
/// monotonic sums are counters ending in <c>_total</c>, up-down sums and gauges are gauges, and explicit-bucket
/// histograms get cumulative <c>_bucket{le=…}</c> series up to <c>+Inf</c>, <c>_sum</c> and <c>_count</c>.
/// </summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly ConcurrentDictionary<string, string> s_labelNames = new(StringComparer.Ordinal);

    private enum Family
    {
        Counter,
        Gauge,
        Histogram,
    }

    /// <summary>
    /// Appends one metric family. <paramref name="taken"/> holds the series names already written in this
    /// exposition: a metric whose name would repeat one (two instruments that sanitize to the same name) is
    /// left out rather than written as a duplicate family, which Prometheus would reject whole. Without
    /// <paramref name="keySeries"/>, series that name a gateway key (a <c>scope</c> of <c>key:&lt;id&gt;</c>)
    /// are left out: key ids and their spend are for an authenticated scrape only.
    /// </summary>
    public static void WriteMetric(StringBuilder text, Metric metric, HashSet<string> taken, bool keySeries = true)
    {
        // Exponential histograms have no text-format equivalent; no instrument or view here makes one.
        if (FamilyOf(metric.MetricType) is not { } family) return;
        var name = FamilyName(metric.Name, metric.Unit, metric.MetricType);
        if (!Claim(taken, name, family)) return;

        WriteHeader(text, name, string.IsNullOrEmpty(metric.Description) ? metric.Name : metric.Description, family);

        var labels = new List<KeyValuePair<string, string>>(8);
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            if (!keySeries && NamesAKey(point.Tags)) continue;
            CollectLabels(point.Tags, labels, family == Family.Histogram);
            switch (metric.MetricType)
            {
                case MetricType.LongSum:
                case MetricType.LongSumNonMonotonic:
                    WriteSample(text, name, null, labels, null, point.GetSumLong());
                    break;
                case MetricType.DoubleSum:
                case MetricType.DoubleSumNonMonotonic:
                    WriteSample(text, name, null, labels, null, point.GetSumDouble());
                    break;
                case MetricType.LongGauge:
                    WriteSample(text, name, null, labels, null, point.GetGaugeLastValueLong());
                    break;
                case MetricType.DoubleGauge:
                    WriteSample(text, name, null, labels, null, point.GetGaugeLastValueDouble());
                    break;
                case MetricType.Histogram:
                    var cumulative = 0L;
                    foreach (var bucket in point.GetHistogramBuckets())
                    {
                        cumulative += bucket.BucketCount;
                        WriteSample(text, name, "_bucket", labels, bucket.ExplicitBound, cumulative);
                    }
                    WriteSample(text, name, "_sum", labels, null, point.GetHistogramSum());
                    WriteSample(text, name, "_count", labels, null, point.GetHistogramCount());
                    break;
            }
        }

        // A family with no series yet (an instrument nothing has recorded on) keeps its HELP and TYPE lines:
        // every family is listed from the first scrape, with its series once there are any.
    }

    /// <summary>
    /// The HELP and TYPE lines of an instrument that has no series yet (the SDK hands over only metrics with
    /// points), unless its family is already written: every family is listed from the first scrape.
    /// </summary>
    public static void WriteEmptyFamily(StringBuilder text, System.Diagnostics.Metrics.Instrument instrument, HashSet<string> taken)
    {
        if (TypeOf(instrument) is not { } type || FamilyOf(type) is not { } family) return;
        var name = FamilyName(instrument.Name, instrument.Unit, type);
        if (!Claim(taken, name, family)) return;
        WriteHeader(text, name, string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description, family);
    }

    private static void WriteHeader(StringBuilder text, string name, string help, Family family)
    {
        text.Append("# HELP ").Append(name).Append(' ');
        AppendHelp(text, help);
        text.Append("\n# TYPE ").Append(name).Append(family switch
        {
            Family.Counter => " counter\n",
            Family.Gauge => " gauge\n",
            _ => " histogram\n",
        });
    }

    /// <summary>The metric type the SDK gives an instrument with the default aggregation.</summary>
    private static MetricType? TypeOf(System.Diagnostics.Metrics.Instrument instrument)
    {
        var generic = instrument.GetType();
        if (!generic.IsGenericType) return null;
        var definition = generic.GetGenericTypeDefinition();
        var floating = generic.GetGenericArguments()[0] == typeof(double) || generic.GetGenericArguments()[0] == typeof(float);
        if (definition == typeof(System.Diagnostics.Metrics.Counter<>) || definition == typeof(System.Diagnostics.Metrics.ObservableCounter<>))
            return floating ? MetricType.DoubleSum : MetricType.LongSum;
        if (definition == typeof(System.Diagnostics.Metrics.UpDownCounter<>) || definition == typeof(System.Diagnostics.Metrics.ObservableUpDownCounter<>))
            return floating ? MetricType.DoubleSumNonMonotonic : MetricType.LongSumNonMonotonic;
        if (definition == typeof(System.Diagnostics.Metrics.ObservableGauge<>) || definition == typeof(System.Diagnostics.Metrics.Gauge<>))
            return floating ? MetricType.DoubleGauge : MetricType.LongGauge;
        if (definition == typeof(System.Diagnostics.Metrics.Histogram<>)) return MetricType.Histogram;
        return null;
    }

    private static bool NamesAKey(ReadOnlyTagCollection tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "scope" && tag.Value is string scope && scope.StartsWith("key:", StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>Reserves the family's series names; false when one of them is already written.</summary>
    private static bool Claim(HashSet<string> taken, string name, Family family)
    {
        if (family != Family.Histogram) return taken.Add(name);
        string[] names = [name, name + "_bucket", name + "_sum", name + "_count"];
        foreach (var n in names)
        {
            if (taken.Contains(n)) return false;
        }
        foreach (var n in names) taken.Add(n);
        return true;
    }

    private static Family? FamilyOf(MetricType type) => type switch
    {
        MetricType.LongSum or MetricType.DoubleSum => Family.Counter,
        MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic or MetricType.LongGauge or MetricType.DoubleGauge => Family.Gauge,
        MetricType.Histogram => Family.Histogram,
        _ => null,
    };

    /// <summary>
    /// The Prometheus family name of an instrument: sanitized, with the unit appended unless the name
    /// already ends with it, and <c>_total</c> last for counters (<c>_value</c> for a gauge whose name
    /// ends like a histogram's series).
    /// </summary>
    public static string FamilyName(string instrument, string? unit, MetricType type)
    {
        var family = FamilyOf(type);
        var name = Sanitize(instrument, allowColon: true);
        const string Total = "_total";
        if (family == Family.Counter && name.EndsWith(Total, StringComparison.Ordinal) && name.Length > Total.Length) name = name[..^Total.Length];
        var suffix = UnitSuffix(unit, family == Family.Gauge);
        if (suffix.Length > 0 && name != suffix && !name.EndsWith("_" + suffix, StringComparison.Ordinal)) name += "_" + suffix;
        if (family == Family.Counter) return name + Total;
        // _count, _sum and _bucket belong to histograms and summaries: a gauge named so (the runtime's
        // dotnet.assembly.count) would read as part of one, and promtool rejects it.
        if (family == Family.Gauge && (name.EndsWith("_count", StringComparison.Ordinal) || name.EndsWith("_sum", StringComparison.Ordinal) || name.EndsWith("_bucket", StringComparison.Ordinal)))
        {
            name += "_value";
        }
        return name;
    }

    /// <summary>The unit as a name suffix: UCUM units spelled out, <c>{annotations}</c> dropped, <c>a/b</c> as <c>a_per_b</c>.</summary>
    public static string UnitSuffix(string? unit, bool isGauge)
    {
        if (string.IsNullOrWhiteSpace(unit)) return "";
        if (unit == "1") return isGauge ? "ratio" : "";
        var plain = StripAnnotations(unit);
        var slash = plain.IndexOf('/');
        if (slash < 0) return UnitWord(plain, s_units);
        var numerator = UnitWord(plain[..slash], s_units);
        var denominator = UnitWord(plain[(slash + 1)..], s_perUnits);
        if (denominator.Length == 0) return numerator;
        return numerator.Length == 0 ? "per_" + denominator : numerator + "_per_" + denominator;
    }

    private static readonly Dictionary<string, string> s_units = new(StringComparer.Ordinal)
    {
        ["d"] = "days", ["h"] = "hours", ["min"] = "minutes", ["s"] = "seconds", ["ms"] = "milliseconds",
        ["us"] = "microseconds", ["ns"] = "nanoseconds",
        ["By"] = "bytes", ["KiBy"] = "kibibytes", ["MiBy"] = "mebibytes", ["GiBy"] = "gibibytes", ["TiBy"] = "tebibytes",
        ["KBy"] = "kilobytes", ["MBy"] = "megabytes", ["GBy"] = "gigabytes", ["TBy"] = "terabytes",
        ["m"] = "meters", ["V"] = "volts", ["A"] = "amperes", ["J"] = "joules", ["W"] = "watts", ["g"] = "grams",
        ["Cel"] = "celsius", ["Hz"] = "hertz", ["%"] = "percent", ["USD"] = "usd",
    };

    private static readonly Dictionary<string, string> s_perUnits = new(StringComparer.Ordinal)
    {
        ["s"] = "second", ["m"] = "minute", ["h"] = "hour", ["d"] = "day", ["w"] = "week", ["mo"] = "month", ["y"] = "year",
    };

    private static string UnitWord(string unit, Dictionary<string, string> known)
    {
        unit = unit.Trim();
        if (unit.Length == 0) return "";
        return known.TryGetValue(unit, out var word) ? word : Sanitize(unit, allowColon: false).Trim('_');
    }

    private static string StripAnnotations(string unit)
    {
        if (unit.IndexOf('{') < 0) return unit;
        var sb = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{') depth++;
            else if (c == '}' && depth > 0) depth--;
            else if (depth == 0) sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>
    /// A valid metric name (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>) or label name (no colons): every other
    /// character becomes an underscore, runs of underscores collapse to one, a leading digit gets one in front.
    /// </summary>
    public static string Sanitize(string name, bool allowColon)
    {
        if (IsValid(name, allowColon)) return name;
        var sb = new StringBuilder(name.Length + 1);
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) sb.Append('_');
        foreach (var c in name)
        {
            var ok = char.IsAsciiLetterOrDigit(c) || (allowColon && c == ':');
            if (ok) sb.Append(c);
            else if (sb.Length == 0 || sb[^1] != '_') sb.Append('_');
        }
        return sb.ToString();
    }

    private static bool IsValid(string name, bool allowColon)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0])) return false;
        var previousUnderscore = false;
        foreach (var c in name)
        {
            if (c == '_')
            {
                if (previousUnderscore) return false;
                previousUnderscore = true;
                continue;
            }
            previousUnderscore = false;
            if (!char.IsAsciiLetterOrDigit(c) && !(allowColon && c == ':')) return false;
        }
        return true;
    }

    /// <summary>
    /// Label names as Prometheus accepts them: sanitized, never starting with the reserved <c>__</c>. Two tags
    /// that sanitize to the same name (<c>a.b</c> and <c>a_b</c>) become one label with both values joined by
    /// <c>;</c>, as the OpenTelemetry specification says, so no series carries a label twice.
    /// </summary>
    private static void CollectLabels(ReadOnlyTagCollection tags, List<KeyValuePair<string, string>> labels, bool histogram)
    {
        labels.Clear();
        foreach (var tag in tags)
        {
            var name = LabelName(tag.Key);
            if (histogram && name == "le") name = "le_"; // le belongs to the bucket bound
            var value = LabelValue(tag.Value);
            var merged = false;
            for (var i = 0; i < labels.Count; i++)
            {
                if (labels[i].Key != name) continue;
                labels[i] = new(name, labels[i].Value + ";" + value);
                merged = true;
                break;
            }
            if (!merged) labels.Add(new(name, value));
        }
    }

    private static string LabelName(string key) => s_labelNames.GetOrAdd(key, static k =>
    {
        var name = Sanitize(k, allowColon: false);
        return name.StartsWith("__", StringComparison.Ordinal) ? name[1..] : name;
    });

    private static string LabelValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => FormatDouble(d),
        float f => FormatDouble(f),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void WriteSample(StringBuilder text, string name, string? suffix, List<KeyValuePair<string, string>> labels, double? le, double value)
    {
        WriteSeries(text, name, suffix, labels, le);
        text.Append(FormatDouble(value)).Append('\n');
    }

    private static void WriteSample(StringBuilder text, string name, string? suffix, List<KeyValuePair<string, string>> labels, double? le, long value)
    {
        WriteSeries(text, name, suffix, labels, le);
        text.Append(CultureInfo.InvariantCulture, $"{value}").Append('\n');
    }

    private static void WriteSeries(StringBuilder text, string name, string? suffix, List<KeyValuePair<string, string>> labels, double? le)
    {
        text.Append(name).Append(suffix);
        if (labels.Count > 0 || le is not null)
        {
            text.Append('{');
            for (var i = 0; i < labels.Count; i++)
            {
                if (i > 0) text.Append(',');
                text.Append(labels[i].Key).Append("=\"");
                AppendLabelValue(text, labels[i].Value);
                text.Append('"');
            }
            if (le is { } bound)
            {
                if (labels.Count > 0) text.Append(',');
                text.Append("le=\"").Append(FormatDouble(bound)).Append('"');
            }
            text.Append('}');
        }
        text.Append(' ');
    }

    /// <summary>Go's float syntax, which Prometheus parses: +Inf, -Inf, NaN, otherwise the shortest round-trip form.</summary>
    public static string FormatDouble(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Label values escape backslash, double quote and line feed.</summary>
    private static void AppendLabelValue(StringBuilder text, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '"': text.Append("\\\""); break;
                case '\n': text.Append("\\n"); break;
                default: text.Append(c); break;
            }
        }
    }

    /// <summary>HELP text escapes backslash and line feed (quotes stay as they are).</summary>
    private static void AppendHelp(StringBuilder text, string help)
    {
        foreach (var c in help)
        {
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                default: text.Append(c); break;
            }
        }
    }
}
