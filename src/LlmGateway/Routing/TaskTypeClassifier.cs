using System.Text.RegularExpressions;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Routing;

/// <summary>What kind of task a request is, and how that was found out.</summary>
public readonly record struct TaskTypeMatch(string TaskType, string Source, string? Detail = null);

public static class TaskTypeSources
{
    public const string Header = "header";
    public const string Metadata = "metadata";
    public const string Pattern = "pattern";
    public const string Default = "default";

    /// <summary>The endpoint decided: every embeddings request has the task type <c>embeddings</c>.</summary>
    public const string Operation = "operation";
}

/// <summary>
/// Finds a request's task type: the <c>X-Task-Type</c> header, else <c>metadata.task_type</c>, else the
/// first task type (lowest <c>Priority</c>, then name) with a pattern matching the last user message,
/// else <c>DefaultTaskType</c>. A header or metadata value that names no configured task type falls
/// back to the default, and the detail says so: it never becomes a label of its own (metrics stay
/// low-cardinality and a typo is visible in the explain output).
/// </summary>
public sealed class TaskTypeClassifier
{
    private readonly Dictionary<string, string> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly (string TaskType, string Pattern, Regex Regex)[] _patterns;
    private readonly string _default;
    private readonly ILogger? _logger;
    private int _timeoutLogged;

    public TaskTypeClassifier(RoutingOptions options, TimeSpan matchTimeout, ILogger? logger = null)
    {
        _default = options.DefaultTaskType;
        _logger = logger;
        foreach (var name in options.TaskTypes.Keys) _names[name] = name;

        // Configuration binding sorts keys by name, so the file's order is lost: Priority says which
        // task type's patterns are tried first. Compiled once; each match has a timeout.
        var ordered = new List<KeyValuePair<string, TaskTypeOptions>>(options.TaskTypes);
        ordered.Sort(static (a, b) =>
        {
            var c = a.Value.Priority.CompareTo(b.Value.Priority);
            return c != 0 ? c : string.CompareOrdinal(a.Key, b.Key);
        });
        var patterns = new List<(string, string, Regex)>();
        foreach (var (name, taskType) in ordered)
        {
            foreach (var pattern in taskType.Patterns)
            {
                var regex = new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled, matchTimeout);
                Warm(regex);
                patterns.Add((name, pattern, regex));
            }
        }
        _patterns = [.. patterns];
    }

    /// <summary>
    /// Runs a compiled pattern once so its generated code is JIT-compiled now: otherwise the first
    /// request's match pays for that inside its timeout, and a busy machine turns it into a miss.
    /// </summary>
    private static void Warm(Regex regex)
    {
        try
        {
            regex.IsMatch(WarmUpText);
        }
        catch (RegexMatchTimeoutException)
        {
        }
    }

    private const string WarmUpText = "Warm up the task-type patterns: select, write, summarize, analyze. 0123456789 {\"json\": true}\n" +
                                      "Warm up the task-type patterns: select, write, summarize, analyze. 0123456789 {\"json\": true}\n";

    /// <param name="usePatterns">False for a request that named its model: the task type is then only a label, not worth scanning the prompt for.</param>
    /// <param name="named">The task type the caller named (<see cref="RequestHints.TaskType"/>), or null.</param>
    public TaskTypeMatch Classify(GatewayRequest request, string? named, bool usePatterns)
    {
        if (named is { Length: > 0 } h)
        {
            return Known(h.Trim(), TaskTypeSources.Header, $"{RoutingHeaders.TaskType} header");
        }
        if (request.MetadataTaskType is { Length: > 0 } m)
        {
            return Known(m.Trim(), TaskTypeSources.Metadata, "metadata.task_type");
        }
        if (usePatterns && _patterns.Length > 0 && request.LastUserText is { Length: > 0 } text)
        {
            if (MatchPatterns(text) is { } match) return match;
        }
        return new TaskTypeMatch(_default, TaskTypeSources.Default);
    }

    private TaskTypeMatch Known(string value, string source, string where)
    {
        if (_names.TryGetValue(value, out var name)) return new TaskTypeMatch(name, source);
        var shown = value.Length > 64 ? value[..64] + "…" : value;
        return new TaskTypeMatch(_default, TaskTypeSources.Default, $"{where} '{shown}' is not a configured task type; using the default '{_default}'");
    }

    private TaskTypeMatch? MatchPatterns(string text)
    {
        ReadOnlySpan<char> head = text, tail = default;
        if (text.Length > RoutingDefaults.PatternScanChars)
        {
            var half = RoutingDefaults.PatternScanChars / 2;
            head = text.AsSpan(0, half);
            tail = text.AsSpan(text.Length - half);
        }
        foreach (var (taskType, pattern, regex) in _patterns)
        {
            try
            {
                if (regex.IsMatch(head) || (!tail.IsEmpty && regex.IsMatch(tail)))
                {
                    return new TaskTypeMatch(taskType, TaskTypeSources.Pattern, $"pattern '{pattern}' of task type '{taskType}' matched the last user message");
                }
            }
            catch (RegexMatchTimeoutException)
            {
                // A pattern that runs away on some input counts as no match; say so once, not per request.
                if (Interlocked.Exchange(ref _timeoutLogged, 1) == 0)
                {
                    _logger?.LogWarning("Task-type pattern '{Pattern}' of '{TaskType}' timed out on a message and was treated as no match; consider simplifying it", pattern, taskType);
                }
            }
        }
        return null;
    }
}
