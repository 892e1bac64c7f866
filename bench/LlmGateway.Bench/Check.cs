using System.Globalization;
using System.Text.Json;
using static LlmGateway.Bench.Report;

namespace LlmGateway.Bench;

/// <summary>
/// Whether a row's answers prove what its label claims. A row is reported with numbers only when every
/// answer in every round (and the warm-up) was checked and matched, and the mock counted the upstream
/// calls the row claims: one per answer for a miss (and for direct, nginx and pass-through), none for a
/// cache hit. Otherwise the row is marked failed with the first reason, and its numbers are withheld.
/// </summary>
internal static class Check
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    /// <summary>What a target's answers must say, in words: "x-gateway-cache: bypass, x-gateway-provider: openai".</summary>
    public static string Claim(TargetInfo t)
    {
        var parts = new List<string>
        {
            t.Cache == "-" ? "no x-gateway-cache" : $"x-gateway-cache: {t.Cache}",
            t.Provider == "-" ? "no x-gateway-provider" : $"x-gateway-provider: {t.Provider}",
        };
        if (t.Upstream.Length > 0) parts.Add($"x-bench-upstream: {t.Upstream}");
        parts.Add(t.Calls == "none" ? "no upstream call" : "one upstream call each");
        return string.Join(", ", parts);
    }

    public static string? LoadFailure(TargetInfo t, IEnumerable<WrkRound> rounds)
    {
        foreach (var w in rounds)
        {
            var what = w.Round == 0 ? "warm-up" : $"round {w.Round}";
            if (w.Checked is null || w.Mismatched is null) return $"{what}: its answers were not checked";
            if (w.Checked < w.Requests) return $"{what}: only {N(w.Checked.Value)} of {N(w.Requests)} answers were checked";
            if (w.Mismatched > 0)
            {
                return $"{what}: {N(w.Mismatched.Value)} of {N(w.Checked.Value)} answers did not say {Claim(t)} (first: {w.FirstMismatch})";
            }
            if (CallsFailure(t, w.UpstreamCalls, w.Requests, w.Conns + 2) is { } calls) return $"{what}: {calls}";
        }
        return null;
    }

    public static string? StreamFailure(TargetInfo? t, IEnumerable<StreamRound> rounds)
    {
        if (t is null) return "not a checked target";
        foreach (var s in rounds)
        {
            var what = $"round {s.Round}";
            if (!s.Probe.TryGetProperty("check", out var c)) return $"{what}: its answers were not checked";
            var mismatched = c.GetProperty("mismatched").GetInt64();
            var checkedCount = c.GetProperty("checked").GetInt64();
            if (s.Streams is { } n && checkedCount < n) return $"{what}: only {N(checkedCount)} of {N(n)} streams were checked";
            if (mismatched > 0)
            {
                return $"{what}: {N(mismatched)} of {N(checkedCount)} streams did not say {Claim(t)} (first: {c.GetProperty("first_mismatch").GetString()})";
            }
            // The probe waits for every stream to end, so the count is exact.
            if (CallsFailure(t, s.UpstreamCalls, s.Streams ?? 0, 0) is { } calls) return $"{what}: {calls}";
        }
        return null;
    }

    /// <summary>One upstream call per answer (up to <paramref name="slack"/> more: requests in flight when wrk stopped), or none.</summary>
    private static string? CallsFailure(TargetInfo t, long? calls, long answers, long slack)
    {
        if (calls is null) return "its upstream calls were not counted";
        return t.Calls switch
        {
            "one" when calls < answers || calls > answers + slack => $"{N(calls.Value)} upstream calls for {N(answers)} answers (expected one each)",
            "none" when calls > 0 => $"{N(calls.Value)} upstream calls for {N(answers)} cache hits (expected none)",
            "one" or "none" => null,
            _ => $"the target does not say how many upstream calls its answers cost ('{t.Calls}')",
        };
    }

    private static string N(long v) => v.ToString("#,0", s_inv);

    /// <summary>The "seen" map of a check, as "N × status cache=… provider=…" phrases, for a failed row's note.</summary>
    public static string Seen(JsonElement check) =>
        check.TryGetProperty("seen", out var seen)
            ? string.Join("; ", seen.EnumerateObject().Select(p => $"{N(p.Value.GetInt64())} × {p.Name}"))
            : "";
}
