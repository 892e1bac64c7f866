using System.Collections.Concurrent;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.Usage;

/// <summary>
/// Appends every finished request (streamed, cancelled and failed ones too) to the ledger in the
/// store. The request path only serializes the record and queues it; a background writer appends in
/// batches. While the store is unreachable records wait in memory (at most
/// <see cref="StoreOptions.LedgerBufferMax"/>; beyond that the oldest are dropped, counted and
/// logged) and are written when it is back, so a Redis restart loses no usage.
/// </summary>
public sealed class UsageLedger : BackgroundService, IRequestObserver
{
    private const int BatchSize = 256;
    private const int PageSize = 1000;

    /// <summary>Records are stored when they are written, which is after they started: a query reads back this far before its start.</summary>
    private static readonly TimeSpan s_insertLag = TimeSpan.FromHours(1);

    private static readonly TimeSpan s_retryInterval = TimeSpan.FromMilliseconds(500);

    private readonly IGatewayStore _store;
    private readonly IGatewayEvents _events;
    private readonly ILogger<UsageLedger> _logger;
    private readonly int _maxBuffered;
    private readonly int _maxScanned;
    private readonly ConcurrentQueue<byte[]> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly List<byte[]> _batch = new(BatchSize);
    private int _queued;
    private int _signalled;
    private long _dropped;

    public UsageLedger(IGatewayStore store, IOptions<GatewayOptions> options, IGatewayEvents events, ILogger<UsageLedger> logger)
    {
        _store = store;
        _events = events;
        _logger = logger;
        _maxBuffered = options.Value.Store.LedgerBufferMax;
        _maxScanned = options.Value.Store.LedgerMaxEntries * 2 + PageSize;
    }

    /// <summary>Records not yet in the store (queued, or in a batch waiting for the store to come back).</summary>
    public int Buffered => Volatile.Read(ref _queued) + _batch.Count;

    public long Dropped => Interlocked.Read(ref _dropped);

    public void OnRequestCompleted(RequestRecord record)
    {
        _queue.Enqueue(JsonSerializer.SerializeToUtf8Bytes(LedgerEntry.From(record), UsageJsonContext.Default.LedgerEntry));
        if (Interlocked.Increment(ref _queued) > _maxBuffered && _queue.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _queued);
            _events.StoreError("ledger_dropped");
            if (Interlocked.Increment(ref _dropped) % 1000 == 1)
            {
                _logger.LogError("The usage ledger buffer is full (store unreachable): {Dropped} records dropped so far", Dropped);
            }
        }
        if (Interlocked.Exchange(ref _signalled, 1) == 0) _signal.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await _signal.WaitAsync(s_retryInterval, stoppingToken).ConfigureAwait(false);
                Volatile.Write(ref _signalled, 0);
                await FlushAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        // Last chance for what is still queued; what can't be written now is reported, not hidden.
        if (!await FlushAsync().ConfigureAwait(false) && Buffered > 0)
        {
            _logger.LogError("Stopping with {Buffered} usage records not written: the store is unreachable", Buffered);
        }
    }

    /// <summary>Writes everything queued; false when the store could not take all of it (the rest stays buffered).</summary>
    public async Task<bool> FlushAsync()
    {
        await _writing.WaitAsync().ConfigureAwait(false);
        try
        {
            while (true)
            {
                while (_batch.Count < BatchSize && _queue.TryDequeue(out var next))
                {
                    Interlocked.Decrement(ref _queued);
                    _batch.Add(next);
                }
                if (_batch.Count == 0) return true;
                if (!_store.IsAvailable) return false;
                try
                {
                    await _store.AppendLedgerAsync(_batch).ConfigureAwait(false);
                }
                catch (StoreUnavailableException)
                {
                    // Kept in the batch, tried again on the next round. A batch that timed out may have been
                    // written anyway: then those records are stored twice rather than never (queries count them once).
                    return false;
                }
                _batch.Clear();
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Aggregates the records that started in [from, to] by <paramref name="groupBy"/>.</summary>
    public async Task<UsageReport> QueryAsync(DateTimeOffset from, DateTimeOffset to, UsageGroupBy groupBy)
    {
        await FlushAsync().ConfigureAwait(false);
        var groups = new Dictionary<string, GroupTotals>(StringComparer.Ordinal);
        var total = new GroupTotals();
        var fromMs = (from - s_insertLag).ToUnixTimeMilliseconds();
        // A batch whose write timed out may have been written anyway and then again: count each request once.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? after = null;
        var scanned = 0;
        while (scanned < _maxScanned)
        {
            var page = await _store.ReadLedgerAsync(fromMs, after, PageSize).ConfigureAwait(false);
            foreach (var record in page)
            {
                LedgerEntry? entry;
                try
                {
                    entry = JsonSerializer.Deserialize(record.Data, UsageJsonContext.Default.LedgerEntry);
                }
                catch (JsonException)
                {
                    continue; // not ours, or from a future version: skip rather than fail the report
                }
                if (entry is null || entry.Time < from || entry.Time > to || !seen.Add(entry.RequestId)) continue;
                var key = groupBy switch
                {
                    UsageGroupBy.Provider => entry.Provider,
                    UsageGroupBy.Key => entry.KeyId ?? "",
                    UsageGroupBy.TaskType => entry.TaskType,
                    _ => entry.Model,
                };
                if (!groups.TryGetValue(key, out var g)) groups[key] = g = new GroupTotals();
                g.Add(entry);
                total.Add(entry);
            }
            scanned += page.Count;
            if (page.Count < PageSize) break;
            after = page[^1].Id;
        }

        var data = new List<UsageGroup>(groups.Count);
        foreach (var (key, g) in groups.OrderByDescending(g => g.Value.CostUsd).ThenBy(g => g.Key, StringComparer.Ordinal))
        {
            data.Add(g.ToGroup(key));
        }
        return new UsageReport
        {
            From = from,
            To = to,
            GroupBy = UsageGroupByNames.Name(groupBy),
            Data = data,
            Total = total.ToGroup(null),
            Buffered = Buffered,
        };
    }

    private sealed class GroupTotals
    {
        private readonly List<double> _latencies = [];
        private long _errors, _hits, _prompt, _completion, _cached, _ttftCount;
        private double _ttftSum;

        public decimal CostUsd { get; private set; }

        public void Add(LedgerEntry e)
        {
            _latencies.Add(e.LatencyMs);
            if (e.Outcome != RequestOutcomes.Ok) _errors++;
            if (e.Cache == "hit") _hits++;
            _prompt += e.PromptTokens;
            _completion += e.CompletionTokens;
            _cached += e.CachedTokens;
            CostUsd += e.CostUsd;
            if (e.TtftMs is { } t)
            {
                _ttftSum += t;
                _ttftCount++;
            }
        }

        public UsageGroup ToGroup(string? key)
        {
            _latencies.Sort();
            var n = _latencies.Count;
            return new UsageGroup
            {
                Group = key,
                Requests = n,
                Errors = _errors,
                CacheHits = _hits,
                PromptTokens = _prompt,
                CompletionTokens = _completion,
                CachedTokens = _cached,
                CostUsd = CostUsd,
                AvgLatencyMs = n == 0 ? 0 : Math.Round(_latencies.Sum() / n, 3),
                P50LatencyMs = n == 0 ? 0 : Math.Round(n % 2 == 1 ? _latencies[n / 2] : (_latencies[n / 2 - 1] + _latencies[n / 2]) / 2, 3),
                AvgTtftMs = _ttftCount == 0 ? null : Math.Round(_ttftSum / _ttftCount, 3),
            };
        }
    }
}

public enum UsageGroupBy
{
    Model,
    Provider,
    Key,
    TaskType,
}

public static class UsageGroupByNames
{
    public static string Name(UsageGroupBy g) => g switch
    {
        UsageGroupBy.Provider => "provider",
        UsageGroupBy.Key => "key",
        UsageGroupBy.TaskType => "task_type",
        _ => "model",
    };

    public static bool TryParse(string? s, out UsageGroupBy groupBy)
    {
        groupBy = UsageGroupBy.Model;
        switch (s)
        {
            case null or "" or "model": return true;
            case "provider": groupBy = UsageGroupBy.Provider; return true;
            case "key": groupBy = UsageGroupBy.Key; return true;
            case "task_type": groupBy = UsageGroupBy.TaskType; return true;
            default: return false;
        }
    }
}

/// <summary>The body of GET /admin/usage.</summary>
public sealed class UsageReport
{
    public string Object { get; set; } = "usage_report";
    public DateTimeOffset From { get; set; }
    public DateTimeOffset To { get; set; }
    public string GroupBy { get; set; } = "model";
    public List<UsageGroup> Data { get; set; } = [];
    public UsageGroup Total { get; set; } = new();

    /// <summary>Records of this instance still waiting to be written (the store was unreachable); not in the numbers yet.</summary>
    public int Buffered { get; set; }
}

public sealed class UsageGroup
{
    /// <summary>The model, provider, key id or task type; absent on the total.</summary>
    public string? Group { get; set; }
    public long Requests { get; set; }
    public long Errors { get; set; }
    public long CacheHits { get; set; }
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }
    public long CachedTokens { get; set; }
    public decimal CostUsd { get; set; }
    public double AvgLatencyMs { get; set; }
    public double P50LatencyMs { get; set; }
    public double? AvgTtftMs { get; set; }
}
