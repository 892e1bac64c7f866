namespace LlmGateway.Usage;

/// <summary>One structured line per request: who, what, where it went, what it cost. Never prompt or completion text, never a secret.</summary>
/// <remarks>
/// The request pays for building the event, the log-writer thread for formatting it (see <c>LoggingExtensions</c>).
/// The request's part (RequestLogBenchmarks, RequestThread category, 2026-12-02): 1.2-1.5 us and 3.2 KB per
/// request, almost all of it in Serilog.Extensions.Logging's <c>SerilogLogger.PrepareWrite</c> (a dictionary grown
/// from empty to about 25 entries, the bool, decimal and double values bound through Serilog's converter, the
/// template looked up by its text) and the scope enrichment; perf of a loop of these events: PrepareWrite 29 % self,
/// the scopes about 10 %, this state's indexer with its boxing 3.4 %. Cutting it means a Serilog provider of our
/// own in place of <c>AddSerilog</c>, which would also have to carry the filter rules keyed on
/// <c>SerilogLoggerProvider</c> (HostingLogGate's among them): not done. The line stays a
/// Microsoft.Extensions.Logging event, so other providers (tests' captures, an operator's) see it unchanged.
/// </remarks>
public sealed class RequestLog(ILogger<RequestLog> logger) : IRequestObserver
{
    private static readonly EventId s_event = new(1, "RequestCompleted");

    public void OnRequestCompleted(RequestRecord r)
    {
        var level = r.Status >= 500 || r.Outcome == RequestOutcomes.Broken ? LogLevel.Warning : LogLevel.Information;
        if (!logger.IsEnabled(level)) return;
        logger.Log(level, s_event, new State(r), null, static (s, _) => s.Message());
    }

    /// <summary>The record's fields as structured properties, so the JSON line has them as fields, not as text.</summary>
    private readonly struct State(RequestRecord r) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        private const string Template = "{RequestId} {Model} via {Provider}: {Status} {Outcome} in {DurationMs} ms";
        private static readonly string[] s_names =
        [
            "RequestId", "KeyId", "TaskType", "RequestedModel", "Model", "Provider", "Stream", "Status", "Outcome", "ErrorCode",
            "PromptTokens", "CompletionTokens", "CachedTokens", "CostUsd", "Attempts", "Fallbacks", "Cache", "Route",
            "DurationMs", "TtftMs", "OverheadMs", "{OriginalFormat}",
        ];

        public int Count => s_names.Length;

        public KeyValuePair<string, object?> this[int index] => new(s_names[index], index switch
        {
            0 => r.RequestId,
            1 => r.KeyId,
            2 => r.TaskType,
            3 => r.RequestedModel,
            4 => r.Model,
            5 => r.Provider,
            6 => r.Stream,
            7 => r.Status,
            8 => r.Outcome,
            9 => r.ErrorCode,
            10 => r.Usage.Prompt,
            11 => r.Usage.Completion,
            12 => r.Usage.CachedPrompt,
            13 => r.CostUsd,
            14 => r.Attempts,
            15 => r.Fallbacks,
            16 => r.CacheResult,
            17 => r.Route,
            18 => Math.Round(r.Duration.TotalMilliseconds, 3),
            19 => r.TimeToFirstToken is { } t ? Math.Round(t.TotalMilliseconds, 3) : null,
            20 => Math.Round(r.Overhead.TotalMilliseconds, 3),
            _ => Template,
        });

        public string Message() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{r.RequestId} {r.Model} via {r.Provider}: {r.Status} {r.Outcome} in {r.Duration.TotalMilliseconds:F1} ms");

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
