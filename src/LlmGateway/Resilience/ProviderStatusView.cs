using System.Text.Json.Serialization;

namespace LlmGateway.Resilience;

/// <summary>One provider as <c>GET /admin/providers</c> shows it. Every message in it is scrubbed of secrets.</summary>
/// <param name="Status">healthy, degraded, unavailable or unknown (see <see cref="ProviderStatuses.For"/>).</param>
/// <param name="Circuit">closed, half_open or open.</param>
/// <param name="CircuitRetryInSeconds">For an open circuit, the seconds until it lets a probe call through.</param>
public sealed record ProviderStatusView(
    string Name,
    string Type,
    string Status,
    string Circuit,
    double? CircuitRetryInSeconds,
    ProviderErrorView? LastError,
    DateTimeOffset? LastSuccessAt,
    RecentView Recent,
    LimitsView Limits,
    ProbeView Probe);

public sealed record ProviderErrorView(string Message, int? Status, DateTimeOffset At);

/// <summary>Calls and probes of the last <see cref="WindowSeconds"/>; latency is to the first token (or the whole body).</summary>
public sealed record RecentView(int WindowSeconds, int Requests, int Errors, double ErrorRate, double LatencyP50Ms, double LatencyP95Ms);

public sealed record LimitsView(int MaxConcurrency, long InFlight, int Rpm, int Tpm);

public sealed record ProbeView(int IntervalSeconds, DateTimeOffset? LastAt, bool? Ok);

public sealed record ProviderListView(string Object, IReadOnlyList<ProviderStatusView> Data);

public static class ProviderStatuses
{
    public const string Healthy = "healthy";
    public const string Degraded = "degraded";
    public const string Unavailable = "unavailable";
    public const string Unknown = "unknown";

    /// <summary>
    /// Open or half-open circuit: unavailable. No call or probe in the recent window: unknown. The last
    /// probe failed with no success since, or every recent call failed: unavailable. A recent error
    /// rate at or above <see cref="ResilienceDefaults.DegradedErrorRate"/>: degraded. Else healthy.
    /// </summary>
    public static string For(CircuitState circuit, StatsSnapshot recent)
    {
        if (circuit != CircuitState.Closed) return Unavailable;
        if (recent.LastProbeOk == false && (recent.LastSuccessAt is null || recent.LastSuccessAt < recent.LastProbeAt)) return Unavailable;
        if (recent.Requests == 0) return Unknown;
        if (recent.Errors == recent.Requests) return Unavailable;
        return recent.ErrorRate >= ResilienceDefaults.DegradedErrorRate ? Degraded : Healthy;
    }

    public static string Circuit(CircuitState state) => state switch
    {
        CircuitState.Open => "open",
        CircuitState.HalfOpen => "half_open",
        _ => "closed",
    };
}

/// <summary>Constants of the resilience folder that are not configuration.</summary>
public static class ResilienceDefaults
{
    /// <summary>What "recent" means in the admin view.</summary>
    public static readonly TimeSpan RecentWindow = TimeSpan.FromMinutes(5);

    /// <summary>A provider with at least this share of recent calls failing is shown as degraded.</summary>
    public const double DegradedErrorRate = 0.05;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ProviderListView))]
[JsonSerializable(typeof(ProviderStatusView))]
internal sealed partial class ResilienceJsonContext : JsonSerializerContext
{
    /// <summary>Error messages are for people: quotes and apostrophes stay readable, as in <see cref="Http.ApiError"/>.</summary>
    public static ResilienceJsonContext Readable { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
