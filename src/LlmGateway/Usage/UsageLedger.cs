using System.Collections.Concurrent;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.Usage;

/// <summary>
/// Appends every finished request (streamed, cancelled and failed ones too) to the ledger in the
/// store. The embedded store takes each record where its request ends, a copy under a lock (<see cref="MemoryStore.AppendLedger"/>).
/// For a remote store the request path only serializes the record and queues it; a background writer appends in
/// batches. While the store is unreachable records go to a local spool file (<see cref="LocalSpool"/>;
/// with the embedded store there is no outage to survive), and are written from it when the store is back;
/// a restart, or a crash, in between loses none of them: the next start on the host takes over the spool
/// of an instance that is gone and writes its records, each request id once. Records wait in memory only
/// on their way to the writer (at most <see cref="StoreOptions.LedgerBufferMax"/>; beyond that, or with
/// the spool full or unwritable, the oldest are dropped, counted and logged).
/// </summary>
public sealed class UsageLedger : BackgroundService, IRequestObserver
{
    private const int BatchSize = 256;
    private const int PageSize = 1000;

    /// <summary>Records are stored when they are written, which is after they started: a query reads back this far before its start.</summary>
    private static readonly TimeSpan s_insertLag = TimeSpan.FromHours(1);

    private static readonly TimeSpan s_retryInterval = TimeSpan.FromMilliseconds(500);

    private readonly IGatewayStore _store;

    /// <summary>
    /// The embedded store, written directly: no queue, no batch window, no background writer. Queued, a record cost a
    /// thread-pool wake-up and two of the timer thread's (the window's delay) whenever requests came one at a time, as
    /// streams and a single connection do. (Durability is the same either way: this store lives in the process.)
    /// </summary>
    private readonly MemoryStore? _memory;
    private readonly IGatewayEvents _events;
    private readonly ILogger<UsageLedger> _logger;
    private readonly int _maxBuffered;
    private readonly int _maxScanned;
    private readonly ConcurrentQueue<byte[]> _queue = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly List<byte[]> _batch = new(BatchSize);
    private readonly StoreOptions _storeOptions;
    private LocalSpool? _spool;
    private int _spooled;
    private int _queued;
    private int _signalled;
    private long _dropped;

    /// <summary>How long the writer lets records gather after the first one arrives; what a crash can lose on top of the queue.</summary>
    internal static readonly TimeSpan BatchWindow = TimeSpan.FromMilliseconds(20);

    public UsageLedger(IGatewayStore store, IOptions<GatewayOptions> options, IGatewayEvents events, ILogger<UsageLedger> logger)
    {
        _store = store;
        _memory = store as MemoryStore;
        _events = events;
        _logger = logger;
        _storeOptions = options.Value.Store;
        _maxBuffered = options.Value.Store.LedgerBufferMax;
        _maxScanned = options.Value.Store.LedgerMaxEntries * 2 + PageSize;
    }

    /// <summary>Records not yet in the store (queued, in a batch, or in the spool waiting for the store to come back).</summary>
    public int Buffered => Volatile.Read(ref _queued) + _batch.Count + Volatile.Read(ref _spooled);

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// The entry each request's record is copied into to be serialised, one per thread: the serialiser keeps nothing
    /// of it and calls back into nothing, so a new one per request was only garbage.
    /// </summary>
    [ThreadStatic]
    private static LedgerEntry? t_entry;

    public void OnRequestCompleted(RequestRecord record)
    {
        var entry = t_entry ??= new LedgerEntry();
        entry.Set(record);
        if (_memory is not null)
        {
            _memory.AppendLedger(LedgerJson.SerializeToBuffer(entry));
            return;
        }
        _queue.Enqueue(LedgerJson.Serialize(entry));
        if (Interlocked.Increment(ref _queued) > _maxBuffered && _queue.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _queued);
            _events.StoreError("ledger_dropped");
            if (Interlocked.Increment(ref _dropped) % 1000 == 1)
            {
                _logger.LogError("The usage ledger buffer is full (store unreachable): {Dropped} records dropped so far", Dropped);
            }
        }
        // Read first: the writer is already signalled for all but the first record of its window, and an interlocked
        // exchange on every request moved the line between the cores for nothing.
        if (Volatile.Read(ref _signalled) == 0 && Interlocked.Exchange(ref _signalled, 1) == 0) _signal.Release();
    }

    /// <summary>
    /// Opens this instance's spool (with a remote store) and takes over the spools of instances that died on this
    /// host, so their records are written with this instance's.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (_store.Kind != "memory" && _spool is null)
        {
            var directory = _storeOptions.SpoolDirectory();
            try
            {
                _spool = LocalSpool.Create(directory, "ledger", _storeOptions.SpoolMaxBytes, _logger);
                var adopted = LocalSpool.AdoptOrphans(directory, "ledger", _spool.Path, records =>
                {
                    // In this instance's spool before the orphan is deleted: a crash now still loses nothing.
                    if (_spool.Append(records)) Interlocked.Add(ref _spooled, records.Count);
                }, _logger);
                if (adopted > 0)
                {
                    _logger.LogWarning("Writing {Count} usage records an earlier instance kept in its spool", adopted);
                    if (Interlocked.Exchange(ref _signalled, 1) == 0) _signal.Release();
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogError(e, "The usage spool in {Directory} can't be used: usage recorded during a store outage is held in memory only", directory);
            }
        }
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Nothing is ever queued for the embedded store: no writer, and no wake-up every retry interval to find nothing.
        if (_memory is not null) return;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await _signal.WaitAsync(s_retryInterval, stoppingToken).ConfigureAwait(false);
                // Requests keep queueing (and do not signal again) while this waits: one wake-up and one store
                // write per window, instead of a thread-pool wake-up for nearly every request when they come one
                // at a time (issue 19's one-connection case).
                await Task.Delay(BatchWindow, stoppingToken).ConfigureAwait(false);
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
            if (_spool is not null && Buffered == Volatile.Read(ref _spooled))
                _logger.LogWarning("Stopping with {Buffered} usage records not written (the store is unreachable); they are kept in {Spool} for the next start", Buffered, _spool.Path);
            else
                _logger.LogError("Stopping with {Buffered} usage records not written: the store is unreachable", Buffered);
        }
        _spool?.Dispose();
    }

    /// <summary>
    /// Writes what the spool holds (oldest first), then everything queued; false when the store could not take all of
    /// it. What it could not take stays in the spool, or, without one, in memory.
    /// </summary>
    public async Task<bool> FlushAsync()
    {
        await _writing.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!await WriteSpooledAsync().ConfigureAwait(false))
            {
                SpoolQueued();
                return false;
            }
            while (true)
            {
                while (_batch.Count < BatchSize && _queue.TryDequeue(out var next))
                {
                    Interlocked.Decrement(ref _queued);
                    _batch.Add(next);
                }
                if (_batch.Count == 0) return true;
                if (_store.IsAvailable)
                {
                    try
                    {
                        await _store.AppendLedgerAsync(_batch).ConfigureAwait(false);
                        _batch.Clear();
                        continue;
                    }
                    catch (StoreUnavailableException)
                    {
                        // Kept below, tried again later. A batch that timed out may have been written anyway:
                        // then those records are stored twice rather than never (queries count each request once).
                    }
                }
                SpoolQueued();
                return false;
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Called under <see cref="_writing"/>: moves the batch and the queue into the spool, off the heap.</summary>
    private void SpoolQueued()
    {
        if (_spool is null) return;
        while (true)
        {
            while (_batch.Count < BatchSize && _queue.TryDequeue(out var next))
            {
                Interlocked.Decrement(ref _queued);
                _batch.Add(next);
            }
            if (_batch.Count == 0) return;
            if (_spool.Append(_batch)) Interlocked.Add(ref _spooled, _batch.Count);
            else RecordDropped(_batch.Count);
            _batch.Clear();
        }
    }

    /// <summary>Called under <see cref="_writing"/>: writes the spool's records to the store, each request id once; false when the store could not take them all.</summary>
    private async Task<bool> WriteSpooledAsync()
    {
        if (_spool is null || Volatile.Read(ref _spooled) == 0) return true;
        if (!_store.IsAvailable) return false;
        var records = _spool.ReadAll();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var batch = new List<byte[]>(BatchSize);
        try
        {
            foreach (var record in records)
            {
                if (RequestIdOf(record) is { } id && !seen.Add(id)) continue;
                batch.Add(record);
                if (batch.Count < BatchSize) continue;
                await _store.AppendLedgerAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
            if (batch.Count > 0) await _store.AppendLedgerAsync(batch).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // The spool stays whole; what went through is written again next time and counted once by queries.
            return false;
        }
        _spool.Clear();
        Volatile.Write(ref _spooled, 0);
        return true;
    }

    private static string? RequestIdOf(byte[] record)
    {
        try
        {
            return JsonSerializer.Deserialize(record, UsageJsonContext.Default.LedgerEntry)?.RequestId;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private void RecordDropped(int count)
    {
        _events.StoreError("ledger_dropped");
        var before = Interlocked.Add(ref _dropped, count) - count;
        if (before / 1000 != Dropped / 1000 || before == 0)
        {
            _logger.LogError("Usage records could not be kept for the store (spool full or unwritable): {Dropped} records dropped so far", Dropped);
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
