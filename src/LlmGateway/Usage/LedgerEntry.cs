using System.Text.Json.Serialization;

namespace LlmGateway.Usage;

/// <summary>
/// One finished request in the usage ledger: who, what, where, how much, how fast. Never prompt or
/// completion text, never a secret. Stored as one compact JSON object per record.
/// </summary>
public sealed class LedgerEntry
{
    /// <summary>When the request started (UTC).</summary>
    public DateTimeOffset Time { get; set; }
    public string RequestId { get; set; } = "";
    public string? KeyId { get; set; }
    public string TaskType { get; set; } = "";
    public string Model { get; set; } = "";
    public string Provider { get; set; } = "";
    public bool Stream { get; set; }
    public int Status { get; set; }
    public string Outcome { get; set; } = "";
    public string? ErrorCode { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public int CachedTokens { get; set; }
    public decimal CostUsd { get; set; }
    public double LatencyMs { get; set; }
    public double? TtftMs { get; set; }
    public string Cache { get; set; } = "";
    public int Attempts { get; set; }

    /// <summary>Every field from <paramref name="r"/>; the ledger fills one entry per thread, request after request.</summary>
    internal void Set(RequestRecord r)
    {
        Time = r.StartedAt;
        RequestId = r.RequestId;
        KeyId = r.KeyId;
        TaskType = r.TaskType;
        Model = r.Model;
        Provider = r.Provider;
        Stream = r.Stream;
        Status = r.Status;
        Outcome = r.Outcome;
        ErrorCode = r.ErrorCode;
        PromptTokens = r.Usage.Prompt;
        CompletionTokens = r.Usage.Completion;
        CachedTokens = r.Usage.CachedPrompt;
        CostUsd = r.CostUsd;
        LatencyMs = Math.Round(r.Duration.TotalMilliseconds, 3);
        TtftMs = r.TimeToFirstToken is { } t ? Math.Round(t.TotalMilliseconds, 3) : null;
        Cache = r.CacheResult;
        Attempts = r.Attempts;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LedgerEntry))]
[JsonSerializable(typeof(UsageReport))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
