using System.Diagnostics;
using System.Globalization;
using System.Text;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Json;
using Serilog.Parsing;

namespace LlmGateway.Tests.Telemetry;

/// <summary>
/// The gateway's log lines are parsed by operators: <see cref="JsonLogLineFormatter"/> must write exactly the bytes
/// Serilog's <c>JsonFormatter(renderMessage: true)</c> writes (encoded as UTF-8), for every event. Each test formats
/// events both ways and compares the bytes, and checks which path the formatter took, so that a formatter that
/// handed everything to Serilog would fail the tests that expect its own path.
/// </summary>
public class JsonLogLineFormatterTests
{
    private static readonly MessageTemplateParser s_parser = new();

    private sealed class Capture : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];
        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }

    /// <summary>Formats each event with both formatters; the bytes must be equal, one event at a time and all in one buffer.</summary>
    private static void AssertSameAsSerilog(IReadOnlyList<LogEvent> events, int expectedFallbacks)
    {
        var serilog = new JsonFormatter(renderMessage: true);
        var formatter = new JsonLogLineFormatter();
        var all = new LogLineBuffer(16);
        var expectedAll = new MemoryStream();
        foreach (var e in events)
        {
            var text = new StringWriter(CultureInfo.InvariantCulture);
            serilog.Format(e, text);
            var expected = Encoding.UTF8.GetBytes(text.ToString());

            var one = new LogLineBuffer(16);
            formatter.Format(e, one);
            Assert.True(expected.AsSpan().SequenceEqual(one.WrittenSpan),
                $"differs from Serilog's line:\nSerilog: {text}\nours:    {Encoding.UTF8.GetString(one.WrittenSpan)}");

            formatter.Format(e, all);
            expectedAll.Write(expected);
        }
        // Appending to a buffer that holds other lines (and taking back a half-written line on a fallback) leaves
        // exactly the lines, in order.
        Assert.True(expectedAll.ToArray().AsSpan().SequenceEqual(all.WrittenSpan), "the lines written into one buffer differ");
        Assert.Equal(2L * expectedFallbacks, formatter.Fallbacks);
    }

    private static LogEvent Event(string template, params (string Name, LogEventPropertyValue Value)[] properties) =>
        new(new DateTimeOffset(2026, 12, 2, 8, 15, 30, 123, TimeSpan.Zero).AddTicks(4567), LogEventLevel.Information, null,
            s_parser.Parse(template), properties.Select(p => new LogEventProperty(p.Name, p.Value)));

    private static LogEvent Scalar(object? value) => Event("Value {Value}", ("Value", new ScalarValue(value)));

    private static RequestRecord Record(bool complete) => complete
        ? new RequestRecord
        {
            RequestId = "req_\"quoted\"\\back", StartedAt = DateTimeOffset.UnixEpoch, KeyId = "team-a", TaskType = "code_generation",
            RequestedModel = "auto", Model = "gpt-4o-mini", Provider = "openai", Stream = true, Status = 200, Outcome = RequestOutcomes.Ok,
            Usage = new TokenUsage(1234, 567, 89), CostUsd = 0.000123456789m, Attempts = 2, Fallbacks = 1, CacheResult = "miss",
            Route = "cost", TimeToFirstToken = TimeSpan.FromTicks(1_234_567), Duration = TimeSpan.FromTicks(98_765_432),
            Overhead = TimeSpan.FromTicks(1_001),
        }
        : new RequestRecord
        {
            RequestId = "req_ütf8_日本_🙂", StartedAt = DateTimeOffset.UnixEpoch, Model = "", Provider = "", Status = 502,
            Outcome = RequestOutcomes.Broken, ErrorCode = "upstream_error\n", Duration = TimeSpan.FromMilliseconds(0.1),
        };

    /// <summary>The request line as production builds it: RequestLog through Microsoft.Extensions.Logging into Serilog.</summary>
    private static List<LogEvent> RequestLines()
    {
        var capture = new Capture();
        using var serilog = new LoggerConfiguration().MinimumLevel.Information().Enrich.FromLogContext().WriteTo.Sink(capture).CreateLogger();
        using var factory = LoggerFactory.Create(b => b.AddSerilog(serilog));
        var log = new RequestLog(factory.CreateLogger<RequestLog>());
        log.OnRequestCompleted(Record(complete: true));
        log.OnRequestCompleted(Record(complete: false));
        using (var activity = new Activity("request").SetIdFormat(ActivityIdFormat.W3C).Start())
        using (factory.CreateLogger<RequestLog>().BeginScope("Batch {BatchId} item {BatchIndex}", "batch_1", 7))
        using (factory.CreateLogger<RequestLog>().BeginScope(new Dictionary<string, object> { ["ConnectionId"] = "0HN1" }))
        {
            log.OnRequestCompleted(Record(complete: true));
        }
        return capture.Events;
    }

    [Fact]
    public void The_request_line_is_Serilogs_and_takes_the_fast_path()
    {
        var events = RequestLines();
        Assert.Equal(3, events.Count);
        Assert.NotNull(events[2].TraceId); // the one in an activity carries TraceId and SpanId
        Assert.True(events[2].Properties.ContainsKey("Scope"));
        Assert.Equal(LogEventLevel.Warning, events[1].Level);
        AssertSameAsSerilog(events, expectedFallbacks: 0);
    }

    /// <summary>
    /// The formatter copies what it wrote for a name, a value or a template when the next event holds the same object
    /// at the same place: thousands of request lines as the host logs them (straight into Serilog, values repeating
    /// and changing at random, in and out of scopes and activities, through Microsoft.Extensions.Logging now and
    /// then), mixed with other events whose properties have the same names in other places, must still be Serilog's
    /// lines, byte for byte.
    /// </summary>
    [Fact]
    public void Request_lines_one_after_another_are_Serilogs_whatever_repeats_or_changes()
    {
        var random = new Random(1919);
        string?[] texts = ["bench-model", "gpt-4o-mini", "", "openai", "say \"hi\"", "back\\slash", "ütf8 日本 🙂", "ctl\u0001\n", new string('x', 300), null];
        string Text() => texts[random.Next(texts.Length - 1)]!;
        string? Nullable() => texts[random.Next(texts.Length)];
        RequestRecord Random() => new()
        {
            RequestId = random.Next(3) == 0 ? "req_same" : "req_" + random.Next(),
            StartedAt = DateTimeOffset.UnixEpoch,
            KeyId = Nullable(),
            TaskType = Text(),
            RequestedModel = Text(),
            Model = Text(),
            Provider = Text(),
            Stream = random.Next(2) == 0,
            Status = random.Next(4) switch { 0 => 200, 1 => 502, 2 => 429, _ => random.Next(0, 100_000) },
            Outcome = random.Next(5) == 0 ? RequestOutcomes.Broken : Text(),
            ErrorCode = Nullable(),
            Usage = new TokenUsage(random.Next(0, 2000), random.Next(0, 2000), random.Next(3) == 0 ? random.Next() : 0),
            CostUsd = random.Next(3) == 0 ? 0.0000702m : new decimal(random.Next(), 0, 0, false, (byte)random.Next(0, 12)),
            Attempts = random.Next(0, 4),
            Fallbacks = random.Next(0, 700),
            CacheResult = Text(),
            Route = Nullable(),
            TimeToFirstToken = random.Next(2) == 0 ? null : TimeSpan.FromTicks(random.NextInt64(0, 100_000_000)),
            Duration = TimeSpan.FromTicks(random.NextInt64(0, 100_000_000)),
            Overhead = TimeSpan.FromTicks(random.Next(0, 100_000)),
        };

        var capture = new Capture();
        using var serilog = new LoggerConfiguration().MinimumLevel.Information().Enrich.FromLogContext().WriteTo.Sink(capture).CreateLogger();
        var provider = new Serilog.Extensions.Logging.SerilogLoggerProvider(serilog);
        using var factory = LoggerFactory.Create(b =>
        {
            b.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.SpanId | ActivityTrackingOptions.TraceId | ActivityTrackingOptions.ParentId);
            b.AddProvider(provider);
        });
        var direct = new RequestLog(factory.CreateLogger<RequestLog>(), [provider], new GatewaySerilog(serilog));
        var throughMel = new RequestLog(factory.CreateLogger<RequestLog>());
        Assert.True(direct.WritesToSerilog);
        var connections = factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Connections");
        for (var i = 0; i < 3000; i++)
        {
            switch (random.Next(20))
            {
                case 0:
                    throughMel.OnRequestCompleted(Random());
                    break;
                case 1:
                    // The same names, in other places and other string instances, and a template naming some of them.
                    serilog.Information("{Model} {Provider} {Status} other", Text(), Text(), random.Next(3));
                    break;
                case 2:
                    using (new Activity("request").SetIdFormat(ActivityIdFormat.W3C).Start())
                    using (connections.BeginScope(new List<KeyValuePair<string, object>> { new("ConnectionId", "0HN" + random.Next(3)) }))
                    {
                        direct.OnRequestCompleted(Random());
                    }
                    break;
                default:
                    using (connections.BeginScope(new List<KeyValuePair<string, object>> { new("ConnectionId", "0HN1") }))
                    {
                        direct.OnRequestCompleted(Random());
                    }
                    break;
            }
        }
        Assert.Equal(3000, capture.Events.Count);
        AssertSameAsSerilog(capture.Events, expectedFallbacks: 0);
    }

    [Fact]
    public void Events_with_more_properties_and_tokens_than_it_keeps_places_for_are_Serilogs()
    {
        var shared = Enumerable.Range(0, 2000).Select(i => new ScalarValue(i % 7 == 0 ? "s" + i : i)).ToArray();
        var template = string.Join(" ", Enumerable.Range(0, 150).Select(i => "{P" + i + "}"));
        LogEvent Many(int count, int shift) => Event(template, [.. Enumerable.Range(0, count)
            .Select(i => ("P" + ((i + shift) % count), (LogEventPropertyValue)shared[(i * 3 + shift) % shared.Length]))]);
        AssertSameAsSerilog([Many(200, 0), Many(200, 0), Many(2000, 1), Many(70, 5), Many(2000, 1), Many(3, 0), Many(200, 0)], expectedFallbacks: 0);
    }

    [Fact]
    public void Every_level_exceptions_and_an_empty_event_are_Serilogs()
    {
        Exception thrown;
        try
        {
            throw new InvalidOperationException("outer \"quoted\"\r\n\tline", new ArgumentException("inner ✓"));
        }
        catch (Exception ex)
        {
            thrown = ex;
        }
        var events = Enum.GetValues<LogEventLevel>()
            .Select(level => new LogEvent(DateTimeOffset.UnixEpoch, level, null, s_parser.Parse("plain"), []))
            .Append(new LogEvent(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(5.5)), LogEventLevel.Error, thrown,
                s_parser.Parse("Request observer {Observer} failed"), [new LogEventProperty("Observer", new ScalarValue("RequestLog"))]))
            .Append(new LogEvent(DateTimeOffset.UnixEpoch, LogEventLevel.Warning, new Exception(), MessageTemplate.Empty, []))
            .ToList();
        AssertSameAsSerilog(events, expectedFallbacks: 0);
    }

    public static TheoryData<string> OddStrings => new()
    {
        "", "plain ascii", "quote \" backslash \\ slash /", "controls \0 \u0001 \b \t \n \v \f \r \u001b \u001f", "del \u007f nbsp \u00a0",
        "line separators \u2028 \u2029", "é ü ß 日本語 Ελληνικά", "emoji 🙂👍🏽 pair", "lone high \ud83d end", "\udc00 lone low first",
        "high before quote \ud83d\"", "high before control \ud83d\n", "html <script>&amp;</script> 'apos'", "{braces} {{doubled}}",
        new string('x', 70_000) + "\u0001" + new string('日', 30_000),
    };

    [Theory]
    [MemberData(nameof(OddStrings))]
    public void Odd_strings_are_escaped_and_encoded_as_Serilog_does_as_values_names_templates_and_messages(string s)
    {
        AssertSameAsSerilog(
        [
            Scalar(s),
            Event("{Name} said " + s.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal), ("Name", new ScalarValue(s))),
            Event("keyed", ("Key" + s.Replace(" ", "", StringComparison.Ordinal), new ScalarValue(1))),
            Event("seq", ("Seq", new SequenceValue([new ScalarValue(s), new ScalarValue(s.Length)]))),
            Event("structure", ("S", new StructureValue([new LogEventProperty("A", new ScalarValue(s))], s))),
            Event("dictionary", ("D", new DictionaryValue([new(new ScalarValue(s), new ScalarValue(s))]))),
            new LogEvent(DateTimeOffset.UnixEpoch, LogEventLevel.Error, new InvalidOperationException(s), s_parser.Parse("failed"), []),
        ], expectedFallbacks: 0);
    }

    private enum Color { Red = 1 }

    [Flags]
    private enum Access { Read = 1, Write = 2 }

    public static TheoryData<object?> Scalars => new()
    {
        null, 0, -1, int.MinValue, int.MaxValue, uint.MaxValue, long.MinValue, long.MaxValue, ulong.MaxValue,
        (byte)255, (sbyte)-128, (short)-32768, (ushort)65535,
        0m, 0.1m, -1.50m, decimal.MaxValue, decimal.MinValue, 0.000123456789m, 1e-28m,
        0.0, -0.0, 0.1, 1e-7, 1.0 / 3, 123456789.123, 1e21, 1e15, double.MaxValue, double.MinValue, double.Epsilon,
        double.NaN, double.PositiveInfinity, double.NegativeInfinity, Math.Round(98.7654321, 3),
        0.1f, float.MaxValue, float.Epsilon, float.NaN, float.NegativeInfinity,
        true, false, 'x', '"', '\n', '\ud83d',
        new DateTime(2026, 12, 2, 8, 15, 30, DateTimeKind.Utc).AddTicks(1), new DateTime(2026, 12, 2, 8, 15, 30, DateTimeKind.Unspecified),
        new DateTime(2026, 12, 2, 8, 15, 30, DateTimeKind.Local), DateTime.MinValue, DateTime.MaxValue,
        new DateTimeOffset(2026, 12, 2, 8, 15, 30, TimeSpan.FromHours(-7)), DateTimeOffset.MaxValue,
        TimeSpan.Zero, TimeSpan.FromTicks(-123_456_789_012), TimeSpan.MaxValue, TimeSpan.FromMilliseconds(1.5),
        Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), Color.Red, (Color)7, Access.Read | Access.Write,
        LogEventLevel.Warning,
    };

    [Theory]
    [MemberData(nameof(Scalars))]
    public void Scalars_are_rendered_as_Serilog_does_in_properties_and_in_the_message(object? value)
    {
        // A value the message renders itself (numbers, bools, strings, null) stays on the fast path; others send the
        // event to Serilog when they appear in the message, never when they are only a property.
        var rendersInMessage = value is null or string or bool or int or long or double or decimal or uint or ulong or short or ushort or byte or sbyte or float;
        AssertSameAsSerilog(
        [
            Event("only a property", ("Value", new ScalarValue(value))),
            Scalar(value),
            Event("in a sequence", ("Values", new SequenceValue([new ScalarValue(value), new ScalarValue(value)]))),
            Event("as a dictionary key", ("D", new DictionaryValue([new(new ScalarValue(value), new ScalarValue(value))]))),
        ], expectedFallbacks: rendersInMessage ? 0 : 1);
    }

    [Fact]
    public void Structures_sequences_and_dictionaries_nest_as_Serilog_writes_them()
    {
        var structure = new StructureValue(
        [
            new LogEventProperty("Id", new ScalarValue(1)),
            new LogEventProperty("Tags", new SequenceValue([new ScalarValue("a"), new ScalarValue(null), new SequenceValue([])])),
            new LogEventProperty("Inner", new StructureValue([new LogEventProperty("X", new ScalarValue(0.5))], "Inner")),
            new LogEventProperty("Map", new DictionaryValue([
                new(new ScalarValue("k"), new StructureValue([], "Empty")),
                new(new ScalarValue(null), new DictionaryValue([])),
                new(new ScalarValue(2.5), new ScalarValue(true)),
            ])),
        ], "Outer");
        AssertSameAsSerilog(
        [
            Event("structured", ("Value", structure)),
            Event("empty tagged", ("Value", new StructureValue([], "Tag"))),
            Event("empty untagged", ("Value", new StructureValue([]))),
            Event("untagged", ("Value", new StructureValue([new LogEventProperty("A", new ScalarValue("b"))]))),
            Event("empty", ("Seq", new SequenceValue([])), ("Dict", new DictionaryValue([]))),
            Event("many", ("A", new ScalarValue(1)), ("B", new ScalarValue("two")), ("C", new ScalarValue(null)), ("D", new SequenceValue([new ScalarValue(3)]))),
        ], expectedFallbacks: 0);
    }

    [Fact]
    public void Message_templates_render_as_Serilog_renders_them()
    {
        AssertSameAsSerilog(
        [
            Event("{Missing} is left as written, {Present} is not", ("Present", new ScalarValue("here"))),
            Event("{0} and {1} positional", ("0", new ScalarValue("zero")), ("1", new ScalarValue(1))),
            Event("{{escaped}} braces and a {Value}", ("Value", new ScalarValue(2))),
            Event("{@Destructured} and {$Stringified}", ("Destructured", new ScalarValue("d")), ("Stringified", new ScalarValue("s"))),
            Event("a string with \"quotes\" and \\ in the message: {S}", ("S", new ScalarValue("say \"hi\" \\ there"))),
            Event("unclosed {brace", ("brace", new ScalarValue(1))),
            Event("{A}{B}{C}", ("A", new ScalarValue(null)), ("B", new ScalarValue(true)), ("C", new ScalarValue(-0.0))),
            Event(""),
            Event("no properties at all"),
        ], expectedFallbacks: 0);
    }

    [Fact]
    public void What_it_does_not_render_itself_is_Serilogs_line_even_after_half_of_it_was_written()
    {
        AssertSameAsSerilog(
        [
            // Formats and alignments (Serilog adds Renderings for formats).
            Event("{Elapsed:0.00} ms", ("Elapsed", new ScalarValue(12.3456))),
            Event("{Name,10}|{Name,-10}|", ("Name", new ScalarValue("abc"))),
            Event("{When:yyyy-MM-dd} and {When:O}", ("When", new ScalarValue(new DateTime(2026, 12, 2)))),
            // A structure in the message.
            Event("{Value}", ("Value", new StructureValue([new LogEventProperty("A", new ScalarValue(1))]))),
            // Types it leaves to Serilog, in the last property: the line is half written when it gives up.
            Event("first {A}", ("A", new ScalarValue(1)), ("B", new ScalarValue("b")), ("When", new ScalarValue(new DateOnly(2026, 12, 2)))),
            Event("time", ("At", new SequenceValue([new ScalarValue(1), new ScalarValue(new TimeOnly(8, 15))]))),
            Event("uri", ("Uri", new ScalarValue(new Uri("https://example.com/a?b=\"c\"")))),
            Event("object", ("Thing", new ScalarValue(new Version(1, 2, 3)))),
        ], expectedFallbacks: 8);
    }

    [Fact]
    public void Random_strings_and_numbers_are_Serilogs()
    {
        var random = new Random(19);
        string RandomString()
        {
            var chars = new char[random.Next(0, 40)];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = random.Next(4) switch
                {
                    0 => (char)random.Next(0, 0x80),
                    1 => (char)random.Next(0, 0x20),
                    2 => (char)random.Next(0xD800, 0xE000),
                    _ => (char)random.Next(0, 0x10000),
                };
            }
            return new string(chars);
        }
        var events = new List<LogEvent>();
        for (var i = 0; i < 500; i++)
        {
            events.Add(Event("{S} {D} {L} {M} " + RandomString().Replace("{", "", StringComparison.Ordinal).Replace("}", "", StringComparison.Ordinal),
                ("S", new ScalarValue(RandomString())),
                ("D", new ScalarValue(BitConverter.Int64BitsToDouble(random.NextInt64()))),
                ("L", new ScalarValue(random.NextInt64(long.MinValue, long.MaxValue))),
                ("M", new ScalarValue(new decimal(random.Next(), random.Next(), random.Next(), random.Next(2) == 0, (byte)random.Next(29)))),
                (RandomString() + "k", new ScalarValue(RandomString()))));
        }
        AssertSameAsSerilog(events, expectedFallbacks: 0);
    }
}

public class JsonLogLineFormatterNumberTests
{
    private static readonly MessageTemplateParser s_parser = new();

    /// <summary>Each value as a property and in the message, formatted both ways; the bytes must be equal.</summary>
    private static void AssertSameAsSerilog(IEnumerable<object> values)
    {
        var serilog = new JsonFormatter(renderMessage: true);
        var formatter = new JsonLogLineFormatter();
        var template = s_parser.Parse("in {Value} ms");
        var ours = new LogLineBuffer(1024);
        var text = new StringWriter(CultureInfo.InvariantCulture);
        foreach (var value in values)
        {
            var e = new LogEvent(DateTimeOffset.UnixEpoch, LogEventLevel.Information, null, template, [new LogEventProperty("Value", new ScalarValue(value))]);
            text.GetStringBuilder().Clear();
            serilog.Format(e, text);
            ours.Clear();
            formatter.Format(e, ours);
            var expected = text.ToString();
            if (!Encoding.UTF8.GetBytes(expected).AsSpan().SequenceEqual(ours.WrittenSpan))
                Assert.Fail($"{value} differs from Serilog's line:\nSerilog: {expected}\nours:    {Encoding.UTF8.GetString(ours.WrittenSpan)}");
        }
        Assert.Equal(0, formatter.Fallbacks);
    }

    [Fact]
    public void Durations_in_thousandths_of_a_millisecond_are_Serilogs()
    {
        // What RequestLog writes (durations rounded to 3 decimals, written without the general double formatter), and
        // what is near them but not such a double (written by it).
        var random = new Random(23);
        var values = new List<object>();
        for (var n = 0L; n < 20_000; n++) values.Add(n / 1000.0);
        for (var i = 0; i < 20_000; i++)
        {
            var n = random.NextInt64(0, 2_000_000_000_000);
            values.Add(n / 1000.0);
            values.Add(Math.BitIncrement(n / 1000.0));
            values.Add(Math.BitDecrement(n / 1000.0));
            values.Add(Math.Round(random.NextDouble() * 10_000, 3));
            values.Add(random.NextDouble() * 1000);
        }
        values.AddRange([-0.0, -1.5, 999_999_999.999, 1e9, 1e9 + 0.5, 0.0005, 0.0015, 1e-7, double.MaxValue, double.NaN, double.PositiveInfinity]);
        AssertSameAsSerilog(values);
    }

    [Fact]
    public void Decimals_of_every_scale_are_Serilogs()
    {
        var random = new Random(29);
        var values = new List<object> { 0m, 0.0000702m, 0.00m, 1.50m, 100m, -0.0001m, decimal.MaxValue, decimal.MinValue, 1e-28m, new decimal(0, 0, 0, true, 5) };
        for (var i = 0; i < 20_000; i++)
        {
            var scale = (byte)random.Next(0, 29);
            values.Add(new decimal(random.Next(0, 1_000_000), 0, 0, false, scale));
            values.Add(new decimal(random.Next(), random.Next(), 0, random.Next(8) == 0, scale));
            values.Add(new decimal(random.Next(), random.Next(), random.Next(0, 2), false, scale));
        }
        AssertSameAsSerilog(values);
    }
}
