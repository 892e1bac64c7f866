using LlmGateway.Http;

namespace LlmGateway.Resilience;

/// <summary>
/// What an operator wants to know about a provider's (or one deployment's) recent past: calls and
/// probes per second over the last few minutes, the latency of the last few hundred, the last error
/// and when. Written once per call under a short lock; read only by the admin view, which does the
/// arithmetic.
/// </summary>
/// <remarks>
/// Counts are kept in one bucket per second, not as a list of calls, so "requests in the last five
/// minutes" stays true under any load (a ring of the last 256 calls stopped at 256). Percentiles come
/// from the last <see cref="LatencySamples"/> answered calls in the window: enough for p95.
/// </remarks>
public sealed class ProviderStats(TimeProvider time)
{
    /// <summary>One bucket per second of <see cref="ResilienceDefaults.RecentWindow"/>.</summary>
    private static readonly int s_buckets = (int)ResilienceDefaults.RecentWindow.TotalSeconds;
    private const int LatencySamples = 512;

    private readonly object _lock = new();
    private readonly long[] _second = InitSeconds();
    private readonly int[] _requests = new int[s_buckets];
    private readonly int[] _errors = new int[s_buckets];
    private readonly long[] _latencyAt = new long[LatencySamples];
    private readonly float[] _latencyMs = new float[LatencySamples];
    private int _nextLatency;
    private int _latencyCount;

    private string? _lastError;
    private int _lastErrorStatus;
    private DateTimeOffset? _lastErrorAt;
    private DateTimeOffset? _lastSuccessAt;
    private DateTimeOffset? _lastProbeAt;
    private bool? _lastProbeOk;

    /// <summary>A call that got an answer; <paramref name="latency"/> is the time to the first token (or the whole body).</summary>
    public void RecordSuccess(TimeSpan latency) => RecordSuccess(latency, time.GetTimestamp(), time.GetUtcNow());

    /// <inheritdoc cref="RecordSuccess(TimeSpan)"/>
    /// <param name="latency">The time to the first token (or the whole body).</param>
    /// <param name="timestamp">When the answer came (a <see cref="TimeProvider.GetTimestamp"/>), and <paramref name="at"/> the same moment as a date:
    /// read once by the caller for the provider's and the deployment's history alike.</param>
    /// <param name="at">The wall-clock time of <paramref name="timestamp"/>.</param>
    public void RecordSuccess(TimeSpan latency, long timestamp, DateTimeOffset at)
    {
        lock (_lock)
        {
            Add(failed: false, latency, timestamp);
            _lastSuccessAt = at;
        }
    }

    /// <summary>
    /// A call the provider answered with an error that is not its own fault as a whole (one model's 5xx
    /// or 429, a client's bad parameter): it counts as a call, not as an error, and has no latency.
    /// </summary>
    public void RecordAnswered()
    {
        lock (_lock)
        {
            Add(failed: false, latency: null, time.GetTimestamp());
        }
    }

    /// <summary>A call that failed for a reason the provider owns (not a bad request from the client).</summary>
    public void RecordFailure(string message, int upstreamStatus)
    {
        var now = time.GetUtcNow();
        var scrubbed = SecretScrubber.Scrub(message);
        lock (_lock)
        {
            Add(failed: true, TimeSpan.Zero, time.GetTimestamp());
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
            Add(!ok, ok ? latency : TimeSpan.Zero, time.GetTimestamp());
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
            Array.Copy(InitSeconds(), _second, s_buckets);
            Array.Clear(_requests);
            Array.Clear(_errors);
            _latencyCount = 0;
            _nextLatency = 0;
        }
    }

    public StatsSnapshot Snapshot(TimeSpan window)
    {
        var latencies = new List<float>(LatencySamples);
        int requests = 0, errors = 0;
        var now = time.GetTimestamp();
        var nowSecond = Second(now);
        var windowSeconds = (long)Math.Ceiling(window.TotalSeconds);
        var sinceTicks = (long)(window.TotalSeconds * time.TimestampFrequency);
        StatsSnapshot snapshot;
        lock (_lock)
        {
            for (var i = 0; i < s_buckets; i++)
            {
                if (nowSecond - _second[i] >= windowSeconds) continue;
                requests += _requests[i];
                errors += _errors[i];
            }
            for (var i = 0; i < _latencyCount; i++)
            {
                if (now - _latencyAt[i] <= sinceTicks) latencies.Add(_latencyMs[i]);
            }
            snapshot = new StatsSnapshot(requests, errors, 0, 0, _lastError, _lastErrorStatus, _lastErrorAt, _lastSuccessAt, _lastProbeAt, _lastProbeOk);
        }
        latencies.Sort();
        return snapshot with { LatencyP50Ms = Percentile(latencies, 0.5), LatencyP95Ms = Percentile(latencies, 0.95) };
    }

    private void Add(bool failed, TimeSpan? latency, long now)
    {
        var second = Second(now);
        var i = (int)(((second % s_buckets) + s_buckets) % s_buckets);
        if (_second[i] != second)
        {
            _second[i] = second;
            _requests[i] = 0;
            _errors[i] = 0;
        }
        _requests[i]++;
        if (failed) _errors[i]++;
        if (failed || latency is not { } answered) return;
        _latencyAt[_nextLatency] = now;
        _latencyMs[_nextLatency] = (float)answered.TotalMilliseconds;
        _nextLatency = (_nextLatency + 1) % LatencySamples;
        if (_latencyCount < LatencySamples) _latencyCount++;
    }

    private long Second(long timestamp) => timestamp / time.TimestampFrequency;

    private static long[] InitSeconds()
    {
        // Far outside any window: an empty bucket never counts.
        var seconds = new long[s_buckets];
        Array.Fill(seconds, long.MinValue / 4);
        return seconds;
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
