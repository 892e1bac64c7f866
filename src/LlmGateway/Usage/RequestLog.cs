namespace LlmGateway.Usage;

/// <summary>One structured line per request: who, what, where it went, what it cost. Never prompt or completion text, never a secret.</summary>
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
