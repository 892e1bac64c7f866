using System.Text.Json.Serialization;

namespace LlmGateway.Resilience;

/// <summary>One provider as <c>GET /admin/providers</c> shows it. Every message in it is scrubbed of secrets.</summary>
/// <param name="Status">
/// healthy, degraded, unavailable or unknown (see <see cref="ProviderStatuses.For"/>): the provider's own
/// state, made degraded when one of its deployments is in trouble, unavailable when every deployment
/// with a known state is.
/// </param>
/// <param name="Circuit">The provider's own circuit: closed, half_open or open.</param>
/// <param name="CircuitRetryInSeconds">For an open circuit, the seconds until it lets a probe call through.</param>
/// <param name="Deployments">One per upstream model of this provider.</param>
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
    ProbeView Probe,
    IReadOnlyList<DeploymentStatusView> Deployments);

/// <summary>One deployment (the provider serving one upstream model).</summary>
/// <param name="Model">The upstream model name.</param>
/// <param name="Status">healthy, degraded, unavailable (circuit open, or cooling down) or unknown.</param>
/// <param name="CooldownUntil">While cooling down after a 429 or 529: when it takes calls again.</param>
/// <param name="CooldownReason">rate_limited (429) or overloaded (529), while cooling down.</param>
public sealed record DeploymentStatusView(
    string Model,
    string Status,
    string Circuit,
    double? CircuitRetryInSeconds,
    DateTimeOffset? CooldownUntil,
    string? CooldownReason,
    ProviderErrorView? LastError,
    DateTimeOffset? LastSuccessAt,
    RecentView Recent);

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

    /// <summary>
    /// The provider as a whole: its own status, unless its deployments say more. Every deployment with a
    /// known status unavailable: unavailable. Some: degraded. Unknown stays unknown only when nothing is known.
    /// </summary>
    public static string Combine(string own, IReadOnlyList<DeploymentStatusView> deployments)
    {
        if (own == Unavailable) return own;
        int known = 0, unavailable = 0, troubled = 0;
        foreach (var d in deployments)
        {
            if (d.Status == Unknown) continue;
            known++;
            if (d.Status == Unavailable) unavailable++;
            if (d.Status != Healthy) troubled++;
        }
        if (known > 0 && unavailable == known) return Unavailable;
        if (troubled > 0) return Degraded;
        return own;
    }

    /// <summary>What the provider-up metric says: healthy and degraded are up; unavailable and unknown are not.</summary>
    public static bool IsUp(string status) => status is Healthy or Degraded;

    public static string Circuit(CircuitState state) => state switch
    {
        CircuitState.Open => "open",
        CircuitState.HalfOpen => "half_open",
        _ => "closed",
    };
}

/// <summary>Builds the admin views; the metrics read the same, so the two never disagree.</summary>
public static class ProviderViews
{
    public static ProviderStatusView For(ProviderResilience p)
    {
        var circuit = p.Breaker.State;
        var recent = p.Stats.Snapshot(ResilienceDefaults.RecentWindow);
        var deployments = new List<DeploymentStatusView>();
        foreach (var d in p.Deployments) deployments.Add(For(d));
        return new ProviderStatusView(
            p.Name,
            p.Type,
            ProviderStatuses.Combine(ProviderStatuses.For(circuit, recent), deployments),
            ProviderStatuses.Circuit(circuit),
            circuit == CircuitState.Open ? Math.Round(p.Breaker.RemainingBreak.TotalSeconds, 3) : null,
            LastError(recent),
            recent.LastSuccessAt,
            Recent(recent),
            new LimitsView(p.Limits.MaxConcurrency, p.Limits.InFlight, p.Limits.Rpm, p.Limits.Tpm),
            new ProbeView((int)p.ProbeInterval.TotalSeconds, recent.LastProbeAt, recent.LastProbeOk),
            deployments);
    }

    public static DeploymentStatusView For(DeploymentHealth d)
    {
        var circuit = d.Breaker.State;
        var recent = d.Stats.Snapshot(ResilienceDefaults.RecentWindow);
        var cooling = d.CheckCooldown();
        var status = cooling is not null ? ProviderStatuses.Unavailable : ProviderStatuses.For(circuit, recent);
        return new DeploymentStatusView(
            d.UpstreamModel,
            status,
            ProviderStatuses.Circuit(circuit),
            circuit == CircuitState.Open ? Math.Round(d.Breaker.RemainingBreak.TotalSeconds, 3) : null,
            cooling is not null ? d.CooldownUntil : null,
            cooling?.Cause switch
            {
                null => null,
                Providers.FailureCause.Overloaded => "overloaded",
                _ => "rate_limited",
            },
            LastError(recent),
            recent.LastSuccessAt,
            Recent(recent));
    }

    private static ProviderErrorView? LastError(StatsSnapshot recent) =>
        recent.LastError is { } message && recent.LastErrorAt is { } at
            ? new ProviderErrorView(message, recent.LastErrorStatus > 0 ? recent.LastErrorStatus : null, at)
            : null;

    private static RecentView Recent(StatsSnapshot recent) =>
        new((int)ResilienceDefaults.RecentWindow.TotalSeconds, recent.Requests, recent.Errors, recent.ErrorRate, recent.LatencyP50Ms, recent.LatencyP95Ms);
}

/// <summary>The deployment-state gauge's numbers: the circuit's (0 closed, 1 half-open, 2 open), and 3 while cooling down.</summary>
public static class DeploymentStates
{
    public const int CoolingDown = 3;

    public static int Of(DeploymentStatusView d) =>
        d.CooldownUntil is not null ? CoolingDown : d.Circuit switch { "open" => 2, "half_open" => 1, _ => 0 };
}

/// <summary>Constants of the resilience folder that are not configuration.</summary>
public static class ResilienceDefaults
{
    /// <summary>What "recent" means in the admin view.</summary>
    public static readonly TimeSpan RecentWindow = TimeSpan.FromMinutes(5);

    /// <summary>A provider with at least this share of recent calls failing is shown as degraded.</summary>
    public const double DegradedErrorRate = 0.05;

    /// <summary>The Retry-After of a 503 when every candidate is at its MaxConcurrency: a slot frees as soon as any answer ends.</summary>
    public static readonly TimeSpan ConcurrencyRetryAfter = TimeSpan.FromSeconds(1);
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
