using LlmGateway.Providers;

namespace LlmGateway.Pipeline;

/// <summary>
/// Everything known about one request when it ends, streamed, cancelled or failed alike. Built up by
/// the pipeline and handed once to every <see cref="IRequestObserver"/>: the log line, metrics,
/// budgets and the ledger all read this one record, so they never disagree.
/// </summary>
public sealed class RequestRecord
{
    public required string RequestId { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public string? KeyId { get; set; }
    public string TaskType { get; set; } = "";
    public string RequestedModel { get; set; } = "";

    /// <summary>The model that answered (or was last tried).</summary>
    public string Model { get; set; } = "";
    public string Provider { get; set; } = "";
    public bool Stream { get; set; }

    /// <summary>HTTP status sent to the client (200 for a stream that broke after it started).</summary>
    public int Status { get; set; }

    /// <summary>ok, error, cancelled (client went away) or broken (a stream that failed after it started).</summary>
    public string Outcome { get; set; } = RequestOutcomes.Ok;
    public string? ErrorCode { get; set; }
    public TokenUsage Usage { get; set; }
    public decimal CostUsd { get; set; }
    public int Attempts { get; set; }
    public int Fallbacks { get; set; }
    public string CacheResult { get; set; } = "off";
    public string? Route { get; set; }
    public TimeSpan? TimeToFirstToken { get; set; }
    public TimeSpan Duration { get; set; }

    /// <summary>Time spent in the gateway itself: <see cref="Duration"/> less the time spent waiting on upstreams.</summary>
    public TimeSpan Overhead { get; set; }
}

public static class RequestOutcomes
{
    public const string Ok = "ok";
    public const string Error = "error";
    public const string Cancelled = "cancelled";
    public const string Broken = "broken";
}

/// <summary>Receives each finished request once. Called on the request path: keep it cheap, queue anything slow.</summary>
public interface IRequestObserver
{
    void OnRequestCompleted(RequestRecord record);
}
