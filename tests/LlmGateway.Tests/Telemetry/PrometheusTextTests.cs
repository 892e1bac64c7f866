using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using LlmGateway.Telemetry;
using OpenTelemetry.Metrics;

namespace LlmGateway.Tests.Telemetry;

/// <summary>
/// The text exposition renderer, fed by the real OpenTelemetry SDK: each test records on a meter of its
/// own and reads what a scrape renders.
/// </summary>
public sealed class PrometheusTextTests : IDisposable
{
    private readonly Meter _meter = new("test." + Guid.NewGuid().ToString("N"));
    private readonly PrometheusScraper _scraper;

    public PrometheusTextTests() => _scraper = new PrometheusScraper(null, _meter.Name);

    public void Dispose()
    {
        _scraper.Dispose();
        _meter.Dispose();
    }

    private string Scrape() => Encoding.UTF8.GetString(_scraper.Scrape() ?? throw new InvalidOperationException("collection failed"));

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void A_counter_gets_help_type_and_the_total_suffix_and_its_unit_annotation_is_dropped()
    {
        var counter = _meter.CreateCounter<long>("demo.requests", "{request}", "Requests served.");
        counter.Add(3, new TagList { { "model", "gpt-4o" } });
        counter.Add(2, new TagList { { "model", "gpt-4o" } });

        Assert.Equal(
        [
            "# HELP demo_requests_total Requests served.",
            "# TYPE demo_requests_total counter",
            "demo_requests_total{model=\"gpt-4o\"} 5",
        ], Lines(Scrape()));
    }

    [Fact]
    public void Label_values_escape_backslash_quote_and_newline_and_label_names_are_sanitized()
    {
        var counter = _meter.CreateCounter<long>("demo.escapes");
        counter.Add(1, new TagList { { "http.request.method", "a\\b\"c\nd" }, { "9lives", "x" }, { "__reserved", "y" } });

        var series = Lines(Scrape())[2];
        Assert.Equal("""demo_escapes_total{_9lives="x",_reserved="y",http_request_method="a\\b\"c\nd"} 1""", series);
    }

    [Fact]
    public void Help_text_escapes_backslash_and_newline_and_falls_back_to_the_instrument_name()
    {
        _meter.CreateCounter<long>("demo.help", null, "first line\nsecond \\ line").Add(1);
        _meter.CreateCounter<long>("demo.nohelp").Add(1);

        var lines = Lines(Scrape());
        Assert.Contains("# HELP demo_help_total first line\\nsecond \\\\ line", lines);
        Assert.Contains("# HELP demo_nohelp_total demo.nohelp", lines);
    }

    [Fact]
    public void A_histogram_has_cumulative_buckets_up_to_inf_then_sum_and_count()
    {
        var histogram = _meter.CreateHistogram("demo.latency", "s", "Latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.5, 1, 5] });
        foreach (var v in new[] { 0.2, 0.7, 0.9, 3, 30 }) histogram.Record(v, new TagList { { "provider", "p" } });

        Assert.Equal(
        [
            "# HELP demo_latency_seconds Latency.",
            "# TYPE demo_latency_seconds histogram",
            "demo_latency_seconds_bucket{provider=\"p\",le=\"0.5\"} 1",
            "demo_latency_seconds_bucket{provider=\"p\",le=\"1\"} 3",
            "demo_latency_seconds_bucket{provider=\"p\",le=\"5\"} 4",
            "demo_latency_seconds_bucket{provider=\"p\",le=\"+Inf\"} 5",
            "demo_latency_seconds_sum{provider=\"p\"} 34.8",
            "demo_latency_seconds_count{provider=\"p\"} 5",
        ], Lines(Scrape()));
    }

    [Fact]
    public void Histogram_values_stay_cumulative_across_scrapes()
    {
        var histogram = _meter.CreateHistogram("demo.size", "By", null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [10] });
        histogram.Record(5);
        Scrape();
        histogram.Record(50);

        var lines = Lines(Scrape());
        Assert.Contains("demo_size_bytes_bucket{le=\"10\"} 1", lines);
        Assert.Contains("demo_size_bytes_bucket{le=\"+Inf\"} 2", lines);
        Assert.Contains("demo_size_bytes_count 2", lines);
    }

    [Fact]
    public void Up_down_counters_and_gauges_are_gauges_without_total_and_special_values_use_go_syntax()
    {
        var inflight = _meter.CreateUpDownCounter<long>("demo.inflight", "{request}");
        inflight.Add(3);
        inflight.Add(-1);
        _meter.CreateObservableGauge("demo.share", () => new[]
        {
            new Measurement<double>(double.PositiveInfinity, new KeyValuePair<string, object?>("k", "inf")),
            new Measurement<double>(double.NaN, new KeyValuePair<string, object?>("k", "nan")),
            new Measurement<double>(1e-7, new KeyValuePair<string, object?>("k", "small")),
        }, "1");

        var lines = Lines(Scrape());
        Assert.Contains("# TYPE demo_inflight gauge", lines);
        Assert.Contains("demo_inflight 2", lines);
        Assert.Contains("# TYPE demo_share_ratio gauge", lines);
        Assert.Contains("demo_share_ratio{k=\"inf\"} +Inf", lines);
        Assert.Contains("demo_share_ratio{k=\"nan\"} NaN", lines);
        Assert.Contains("demo_share_ratio{k=\"small\"} 1E-07", lines);
    }

    [Fact]
    public void A_counter_gets_its_unit_before_total()
    {
        _meter.CreateCounter<double>("demo.cost", "USD").Add(0.25);
        _meter.CreateCounter<double>("demo.busy", "s").Add(1.5);

        var lines = Lines(Scrape());
        Assert.Contains("demo_cost_usd_total 0.25", lines);
        Assert.Contains("demo_busy_seconds_total 1.5", lines);
    }

    [Theory]
    [InlineData("demo.duration.seconds", "s", MetricType.DoubleSum, "demo_duration_seconds_total")]
    [InlineData("demo.rate", "By/s", MetricType.DoubleSum, "demo_rate_bytes_per_second_total")]
    [InlineData("demo.events", "{event}/s", MetricType.DoubleSum, "demo_events_per_second_total")]
    [InlineData("demo.things_total", "ms", MetricType.LongSum, "demo_things_milliseconds_total")]
    [InlineData("demo.things_total", null, MetricType.LongGauge, "demo_things_total")]
    [InlineData("demo.share", "1", MetricType.DoubleGauge, "demo_share_ratio")]
    [InlineData("demo.shares", "1", MetricType.LongSum, "demo_shares_total")]
    [InlineData("demo.odd", "furlong", MetricType.LongSumNonMonotonic, "demo_odd_furlong")]
    [InlineData("3d.metric-name", null, MetricType.LongSum, "_3d_metric_name_total")]
    [InlineData("demo..double__underscore", null, MetricType.LongSum, "demo_double_underscore_total")]
    [InlineData("demo:recorded.rule", null, MetricType.Histogram, "demo:recorded_rule")]
    public void Family_names_are_sanitized_with_the_unit_spelled_out(string instrument, string? unit, MetricType type, string expected)
    {
        Assert.Equal(expected, PrometheusText.FamilyName(instrument, unit, type));
    }

    [Fact]
    public void A_gauge_named_like_a_histogram_series_gets_a_value_suffix()
    {
        _meter.CreateObservableUpDownCounter("demo.assembly.count", () => 7, "{assembly}");

        Assert.Contains("demo_assembly_count_value 7", Lines(Scrape()));
    }

    [Fact]
    public void Two_instruments_with_the_same_prometheus_name_render_one_family_not_a_duplicate()
    {
        _meter.CreateCounter<long>("demo.clash").Add(1);
        _meter.CreateCounter<long>("demo_clash").Add(2);

        var lines = Lines(Scrape());
        Assert.Single(lines, l => l == "# TYPE demo_clash_total counter");
        Assert.Single(lines, l => l.StartsWith("demo_clash_total ", StringComparison.Ordinal));
    }

    [Fact]
    public void Tags_that_sanitize_to_the_same_label_become_one_label_with_both_values()
    {
        _meter.CreateCounter<long>("demo.merge").Add(1, new TagList { { "a.b", "x" }, { "a_b", "y" } });

        Assert.Contains("demo_merge_total{a_b=\"x;y\"} 1", Lines(Scrape()));
    }

    [Fact]
    public void A_histogram_tag_named_le_does_not_collide_with_the_bucket_bound()
    {
        _meter.CreateHistogram("demo.le", null, null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1] })
            .Record(0.5, new TagList { { "le", "mine" } });

        Assert.Contains("demo_le_bucket{le_=\"mine\",le=\"1\"} 1", Lines(Scrape()));
    }

    [Fact]
    public void Instruments_nothing_recorded_on_are_left_out()
    {
        _meter.CreateCounter<long>("demo.unused");
        _meter.CreateCounter<long>("demo.used").Add(1);

        var text = Scrape();
        Assert.DoesNotContain("demo_unused", text, StringComparison.Ordinal);
        Assert.Contains("demo_used_total 1", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Label_values_of_other_types_are_rendered_invariantly()
    {
        _meter.CreateCounter<long>("demo.types").Add(1, new TagList { { "b", true }, { "d", 0.5 }, { "i", 42 } });

        Assert.Contains("demo_types_total{b=\"true\",d=\"0.5\",i=\"42\"} 1", Lines(Scrape()));
    }
}
