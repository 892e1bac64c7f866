using LlmGateway.Http;

namespace LlmGateway.Resilience;

/// <summary>
/// What an operator wants to know about a provider's recent past: the last few hundred calls and
/// probes (outcome and latency), the last error and when. Written once per call under a short
/// lock; read only by the admin view, which does the arithmetic.
/// </summary>
public sealed class ProviderStats(TimeProvider time)
{
    private const int Capacity = 256;

    private readonly object _lock = new();
    private readonly long[] _at = new long[Capacity];
    private readonly float[] _latencyMs = new float[Capacity];
    private readonly bool[] _failed = new bool[Capacity];
    private int _next;
    private int _count;

    private string? _lastError;
    private int _lastErrorStatus;
    private DateTimeOffset? _lastErrorAt;
    private DateTimeOffset? _lastSuccessAt;
    private DateTimeOffset? _lastProbeAt;
    private bool? _lastProbeOk;

    /// <summary>A call that got an answer; <paramref name="latency"/> is the time to the first token (or the whole body).</summary>
    public void RecordSuccess(TimeSpan latency)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            Add(failed: false, latency);
            _lastSuccessAt = now;
        }
    }

    /// <summary>A call that failed for a reason the provider owns (not a bad request from the client).</summary>
    public void RecordFailure(string message, int upstreamStatus)
    {
        var now = time.GetUtcNow();
        var scrubbed = SecretScrubber.Scrub(message);
        lock (_lock)
        {
            Add(failed: true, TimeSpan.Zero);
            _lastError = scrubbed;
            _lastErrorStatus = upstreamStatus;
            _lastErrorAt = now;
        }
    }

    public void RecordProbe(bool ok, TimeSpan latency, string? error, int upstreamStatus)
    {
        var now = time.GetUtcNow();
        var scrubbed = error is null ? null : SecretScrubber.Scrub(error);
        lock (_lock)
        {
            Add(!ok, ok ? latency : TimeSpan.Zero);
            _lastProbeAt = now;
            _lastProbeOk = ok;
            if (ok)
            {
                _lastSuccessAt = now;
            }
            else
            {
                _lastError = scrubbed;
                _lastErrorStatus = upstreamStatus;
                _lastErrorAt = now;
            }
        }
    }

    /// <summary>Forgets the recent samples (the admin reset); the last error stays, with its time, as history.</summary>
    public void ClearRecent()
    {
        lock (_lock)
        {
            _count = 0;
            _next = 0;
        }
    }

    public StatsSnapshot Snapshot(TimeSpan window)
    {
        var latencies = new List<float>(Capacity);
        int requests = 0, errors = 0;
        var sinceTicks = (long)(window.TotalSeconds * time.TimestampFrequency);
        var now = time.GetTimestamp();
        StatsSnapshot snapshot;
        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                if (now - _at[i] > sinceTicks) continue;
                requests++;
                if (_failed[i]) errors++;
                else latencies.Add(_latencyMs[i]);
            }
            snapshot = new StatsSnapshot(requests, errors, 0, 0, _lastError, _lastErrorStatus, _lastErrorAt, _lastSuccessAt, _lastProbeAt, _lastProbeOk);
        }
        latencies.Sort();
        return snapshot with { LatencyP50Ms = Percentile(latencies, 0.5), LatencyP95Ms = Percentile(latencies, 0.95) };
    }

    private void Add(bool failed, TimeSpan latency)
    {
        _at[_next] = time.GetTimestamp();
        _failed[_next] = failed;
        _latencyMs[_next] = (float)latency.TotalMilliseconds;
        _next = (_next + 1) % Capacity;
        if (_count < Capacity) _count++;
    }

    private static double Percentile(List<float> sorted, double p) =>
        sorted.Count == 0 ? 0 : Math.Round(sorted[(int)Math.Ceiling(p * sorted.Count) - 1], 3);
}

/// <summary>The recent past of a provider, as of one moment.</summary>
public sealed record StatsSnapshot(
    int Requests,
    int Errors,
    double LatencyP50Ms,
    double LatencyP95Ms,
    string? LastError,
    int LastErrorStatus,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? LastSuccessAt,
    DateTimeOffset? LastProbeAt,
    bool? LastProbeOk)
{
    public double ErrorRate => Requests == 0 ? 0 : Math.Round((double)Errors / Requests, 4);
}
