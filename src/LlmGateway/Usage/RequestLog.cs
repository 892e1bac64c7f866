using System.Diagnostics;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Parsing;

namespace LlmGateway.Usage;

/// <summary>One structured line per request: who, what, where it went, what it cost. Never prompt or completion text, never a secret.</summary>
/// <remarks>
/// <para>
/// The line is a Microsoft.Extensions.Logging event of category <c>LlmGateway.Usage.RequestLog</c>: its level obeys the
/// host's filter rules and Serilog's levels, and every provider sees it. When Serilog is the only provider (the shipped
/// set-up, <see cref="Telemetry.LoggingExtensions.AddGatewayLogging"/>), the request builds Serilog's event itself
/// instead of handing its fields to Serilog.Extensions.Logging: the same event (properties in the same order, the same
/// values, EventId, SourceContext, the scopes and the activity's ids, through the same Serilog logger and enrichers;
/// <c>RequestLogTests</c> compares the two), without the dictionary that grew from empty to 25 entries on every
/// request, the property binding, the template lookup and the extra logger layers. That was the largest item of the
/// miss path's allocations (Serilog's dictionary arrays, values and properties: about a fifth of the bytes, in an
/// allocation profile of 2026-12-02). RequestLogBenchmarks, RequestThread category (2026-12-02, short job): 974 ns and
/// 3.07 KB per line through Microsoft.Extensions.Logging, 488 ns and 1.53 KB straight into Serilog.
/// With any other provider registered (a test's capture, an operator's), every provider must see the event, so it
/// goes through Microsoft.Extensions.Logging as any other line does.
/// </para>
/// </remarks>
public sealed class RequestLog : IRequestObserver
{
    private static readonly EventId s_event = new(1, "RequestCompleted");
    private const string Template = "{RequestId} {Model} via {Provider}: {Status} {Outcome} in {DurationMs} ms";

    private static readonly string[] s_names =
    [
        "RequestId", "KeyId", "TaskType", "RequestedModel", "Model", "Provider", "Stream", "Status", "Outcome", "ErrorCode",
        "PromptTokens", "CompletionTokens", "CachedTokens", "CostUsd", "Attempts", "Fallbacks", "Cache", "Route",
        "DurationMs", "TtftMs", "OverheadMs",
    ];

    // What Serilog.Extensions.Logging makes of the template and of s_event: parsed once, not looked up per line.
    private static readonly MessageTemplate s_template = new MessageTemplateParser().Parse(Template);
    private static readonly StructureValue s_eventId = new([new LogEventProperty("Id", new ScalarValue(s_event.Id)), new LogEventProperty("Name", new ScalarValue(s_event.Name))]);

    /// <summary>The record's 21 fields, EventId, SourceContext and a few scope properties (Kestrel's ConnectionId, a batch's): no growth on the way.</summary>
    private const int PropertyCapacity = 28;

    // Values most lines share, made once: Serilog's values are immutable, and every line had a box and a ScalarValue
    // for each of them.
    private static readonly ScalarValue s_null = new(null);
    private static readonly ScalarValue s_true = new(true);
    private static readonly ScalarValue s_false = new(false);
    private static readonly ScalarValue[] s_small = [.. Enumerable.Range(0, 600).Select(n => new ScalarValue(n))];

    // The last value of each text field, kept for the next line: most lines repeat their task type, models, provider,
    // outcome, cache result and route, so they share one ScalarValue instead of a new one each (fewer bytes
    // allocated, and fewer objects the log writer reads cold). Compared by value, so a field whose string is made
    // per request (the requested model, read from the body) still shares; a racing line at worst makes its own.
    private static readonly ScalarValue?[] s_lastText = new ScalarValue?[s_names.Length];

    private readonly ILogger<RequestLog> _logger;
    private readonly Serilog.ILogger? _serilog;

    /// <summary>Through Microsoft.Extensions.Logging only (benchmarks and tests that build one by hand).</summary>
    public RequestLog(ILogger<RequestLog> logger) : this(logger, providers: null, serilog: null)
    {
    }

    /// <summary>
    /// The host's: straight into Serilog when <paramref name="serilog"/> is the logger behind the only provider.
    /// The logger is the one Serilog.Extensions.Logging would use for this category: the root, enriched by the provider
    /// (scopes, the activity's ids as the host tracks them) and with this category as SourceContext.
    /// </summary>
    [ActivatorUtilitiesConstructor]
    public RequestLog(ILogger<RequestLog> logger, IEnumerable<ILoggerProvider>? providers, Telemetry.GatewaySerilog? serilog)
    {
        _logger = logger;
        if (serilog is not null && providers?.ToList() is [SerilogLoggerProvider only])
        {
            _serilog = serilog.Root.ForContext([only]).ForContext(Constants.SourceContextPropertyName, typeof(RequestLog).FullName);
        }
    }

    /// <summary>Whether lines go straight into Serilog (for the tests that check the choice).</summary>
    internal bool WritesToSerilog => _serilog is not null;

    public void OnRequestCompleted(RequestRecord r)
    {
        var level = r.Status >= 500 || r.Outcome == RequestOutcomes.Broken ? LogLevel.Warning : LogLevel.Information;
        // The host's filter rules and Serilog's levels, either way.
        if (!_logger.IsEnabled(level)) return;
        if (_serilog is null)
        {
            _logger.Log(level, s_event, new State(r), null, static (s, _) => s.Message());
            return;
        }

        var properties = new Dictionary<string, LogEventPropertyValue>(PropertyCapacity);
        for (var i = 0; i < s_names.Length; i++) properties[s_names[i]] = Field(r, i);
        properties["EventId"] = s_eventId;
        var (traceId, spanId) = Activity.Current is { } activity ? (activity.TraceId, activity.SpanId) : (default(ActivityTraceId), default(ActivitySpanId));
        _serilog.Write(LogEvent.UnstableAssembleFromParts(DateTimeOffset.Now, level == LogLevel.Warning ? LogEventLevel.Warning : LogEventLevel.Information,
            null, s_template, properties, traceId, spanId));
    }

    /// <summary>
    /// Field <paramref name="index"/> of <see cref="s_names"/> as Serilog holds it, the common values shared. The one
    /// list of the fields: the Microsoft.Extensions.Logging path takes each one's value from here too.
    /// </summary>
    private static ScalarValue Field(RequestRecord r, int index) => index switch
    {
        0 => Text(r.RequestId),
        1 => Text(r.KeyId),
        2 => Repeated(2, r.TaskType),
        3 => Repeated(3, r.RequestedModel),
        4 => Repeated(4, r.Model),
        5 => Repeated(5, r.Provider),
        6 => r.Stream ? s_true : s_false,
        7 => Small(r.Status),
        8 => Repeated(8, r.Outcome),
        9 => Text(r.ErrorCode),
        10 => Small(r.Usage.Prompt),
        11 => Small(r.Usage.Completion),
        12 => Small(r.Usage.CachedPrompt),
        13 => new ScalarValue(r.CostUsd),
        14 => Small(r.Attempts),
        15 => Small(r.Fallbacks),
        16 => Repeated(16, r.CacheResult),
        17 => Repeated(17, r.Route),
        18 => new ScalarValue(Math.Round(r.Duration.TotalMilliseconds, 3)),
        19 => r.TimeToFirstToken is { } t ? new ScalarValue(Math.Round(t.TotalMilliseconds, 3)) : s_null,
        20 => new ScalarValue(Math.Round(r.Overhead.TotalMilliseconds, 3)),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    private static ScalarValue Text(string? s) => s is null ? s_null : new ScalarValue(s);

    /// <summary>Text field <paramref name="index"/>: the last line's value when it is the same text (see <see cref="s_lastText"/>).</summary>
    private static ScalarValue Repeated(int index, string? s)
    {
        if (s is null) return s_null;
        if (s_lastText[index] is { Value: string last } kept && string.Equals(last, s, StringComparison.Ordinal)) return kept;
        return s_lastText[index] = new ScalarValue(s);
    }

    private static ScalarValue Small(int n) => (uint)n < (uint)s_small.Length ? s_small[n] : new ScalarValue(n);

    /// <summary>The record's fields as structured properties, so the JSON line has them as fields, not as text.</summary>
    private readonly struct State(RequestRecord r) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => s_names.Length + 1;

        public KeyValuePair<string, object?> this[int index] => index < s_names.Length
            ? new(s_names[index], Field(r, index).Value)
            : new("{OriginalFormat}", Template);

        public string Message() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{r.RequestId} {r.Model} via {r.Provider}: {r.Status} {r.Outcome} in {r.Duration.TotalMilliseconds:F1} ms");

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
