using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Telemetry;

namespace LlmGateway.Storage;

/// <summary>
/// Puts a timeout on every call to a remote store and a breaker around it, so a dead or hung Redis
/// costs a request at most <see cref="StoreOptions.TimeoutMs"/> once, and nothing while the breaker
/// is open: after <see cref="StoreOptions.FailuresToBreak"/> failures in a row the store reports
/// itself unavailable for <see cref="StoreOptions.BreakSeconds"/>, then the next call probes it.
/// Every failure (including calls refused while open) is counted as a store error by operation.
/// <para>
/// Timeouts and the breaker run on the system clock, not the injected one: they guard real I/O, and a
/// test that freezes time for budget windows must not freeze them.
/// </para>
/// <para>
/// Start-up grace: for <see cref="StoreOptions.StartupGraceSeconds"/> after the store first answers is
/// connected, a call gets the longer <see cref="GraceTimeout"/> and a timeout does not count toward the
/// breaker. The first calls on a new connection (scripts compiled by Redis, code jitted, the thread pool
/// still growing) are slow in a burst; at 250 ms each, a cold start once tripped the breaker and turned the
/// cache off and budgets per-instance for a break it did not need. Errors other than timeouts count as usual.
/// </para>
/// </summary>
public sealed class GuardedStore : IGatewayStore, IDisposable
{
    private readonly IGatewayStore _inner;
    private readonly IGatewayEvents _events;
    private readonly ILogger _logger;
    private readonly TimeSpan _timeout;
    private readonly long _breakTicks;
    private readonly int _failuresToBreak;
    private readonly TimeProvider _clock;
    private readonly long _graceTicks;
    private int _failures;
    private long _openUntil;
    private long _graceUntil = long.MinValue; // not connected yet: the grace starts at the first connected call

    public GuardedStore(IGatewayStore inner, StoreOptions options, IGatewayEvents events, ILogger<GuardedStore> logger)
        : this(inner, options, events, logger, TimeProvider.System)
    {
    }

    /// <summary>With a clock of the test's choosing (the guard's timeouts, breaker and grace run on it).</summary>
    internal GuardedStore(IGatewayStore inner, StoreOptions options, IGatewayEvents events, ILogger<GuardedStore> logger, TimeProvider clock)
    {
        _inner = inner;
        _events = events;
        _logger = logger;
        _clock = clock;
        _timeout = TimeSpan.FromMilliseconds(options.TimeoutMs);
        GraceTimeout = TimeSpan.FromMilliseconds(Math.Max(options.TimeoutMs * 4, 1000));
        _graceTicks = (long)(options.StartupGraceSeconds * (double)_clock.TimestampFrequency);
        _breakTicks = (long)(TimeSpan.FromSeconds(options.BreakSeconds).TotalSeconds * _clock.TimestampFrequency);
        _failuresToBreak = options.FailuresToBreak;
        if (inner is RedisStore redis) redis.Restored += OnRestored;
    }

    public string Kind => _inner.Kind;

    /// <summary>The per-call timeout during the start-up grace.</summary>
    internal TimeSpan GraceTimeout { get; }

    /// <summary>True while the start-up grace lasts; it starts at the first call made while the store is connected.</summary>
    private bool InGrace()
    {
        var until = Volatile.Read(ref _graceUntil);
        var now = _clock.GetTimestamp();
        if (until == long.MinValue)
        {
            if (!_inner.IsAvailable) return false;
            Interlocked.CompareExchange(ref _graceUntil, now + _graceTicks, long.MinValue);
            until = Volatile.Read(ref _graceUntil);
        }
        return now < until;
    }

    private TimeSpan TimeoutFor(TimeSpan? timeout, bool grace)
    {
        var t = timeout ?? _timeout;
        return grace && t < GraceTimeout ? GraceTimeout : t;
    }

    public bool IsAvailable => _inner.IsAvailable && !IsOpen;

    private bool IsOpen => Volatile.Read(ref _openUntil) > _clock.GetTimestamp();

    public Task<byte[]?> GetAsync(string key) =>
        Enter(StoreOperations.CacheGet) ? Guard(StoreOperations.CacheGet, _inner.GetAsync(key)) : Refused<byte[]?>(StoreOperations.CacheGet);

    public Task SetAsync(string key, byte[] value, TimeSpan ttl) =>
        Enter(StoreOperations.CacheSet) ? Guard(StoreOperations.CacheSet, _inner.SetAsync(key, value, ttl)) : Refused(StoreOperations.CacheSet);

    public Task<bool> SetIfUnchangedAsync(string key, byte[]? expected, byte[] value, TimeSpan ttl) =>
        Enter(StoreOperations.CacheSet) ? Guard(StoreOperations.CacheSet, _inner.SetIfUnchangedAsync(key, expected, value, ttl)) : Refused<bool>(StoreOperations.CacheSet);

    public Task<bool> DeleteAsync(string key) =>
        Enter(StoreOperations.CacheDelete) ? Guard(StoreOperations.CacheDelete, _inner.DeleteAsync(key)) : Refused<bool>(StoreOperations.CacheDelete);

    public Task<long> DeleteByPrefixAsync(string prefix) =>
        // Deleting a large cache is many pages: that one gets more time than a single call.
        Enter(StoreOperations.CacheDelete) ? Guard(StoreOperations.CacheDelete, _inner.DeleteByPrefixAsync(prefix), _timeout * 40) : Refused<long>(StoreOperations.CacheDelete);

    public Task<ReserveResult> ReserveAsync(IReadOnlyList<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now) =>
        Enter(StoreOperations.BudgetReserve) ? Guard(StoreOperations.BudgetReserve, _inner.ReserveAsync(counters, reservationId, amount, reservationExpiresAt, now)) : Refused<ReserveResult>(StoreOperations.BudgetReserve);

    public Task RenewReservationAsync(IReadOnlyList<CounterRef> counters, Reservation reservation, DateTimeOffset expiresAt) =>
        Enter(StoreOperations.BudgetRenew) ? Guard(StoreOperations.BudgetRenew, _inner.RenewReservationAsync(counters, reservation, expiresAt)) : Refused(StoreOperations.BudgetRenew);

    public Task<CounterState[]> SettleAsync(IReadOnlyList<CounterRef> counters, IReadOnlyList<Settlement> settlements, DateTimeOffset now) =>
        Enter(StoreOperations.BudgetSettle) ? Guard(StoreOperations.BudgetSettle, _inner.SettleAsync(counters, settlements, now)) : Refused<CounterState[]>(StoreOperations.BudgetSettle);

    public Task<CounterState[]> ReadCountersAsync(IReadOnlyList<CounterRef> counters, DateTimeOffset now) =>
        Enter(StoreOperations.BudgetRead) ? Guard(StoreOperations.BudgetRead, _inner.ReadCountersAsync(counters, now)) : Refused<CounterState[]>(StoreOperations.BudgetRead);

    public Task<bool> TryMarkOnceAsync(string key, TimeSpan ttl) =>
        Enter(StoreOperations.Once) ? Guard(StoreOperations.Once, _inner.TryMarkOnceAsync(key, ttl)) : Refused<bool>(StoreOperations.Once);

    public Task AppendLedgerAsync(IReadOnlyList<byte[]> records) =>
        Enter(StoreOperations.LedgerAppend) ? Guard(StoreOperations.LedgerAppend, _inner.AppendLedgerAsync(records), _timeout * 4) : Refused(StoreOperations.LedgerAppend);

    public Task<IReadOnlyList<LedgerRecord>> ReadLedgerAsync(long fromUnixMs, string? afterId, int count) =>
        Enter(StoreOperations.LedgerRead) ? Guard(StoreOperations.LedgerRead, _inner.ReadLedgerAsync(fromUnixMs, afterId, count), _timeout * 4) : Refused<IReadOnlyList<LedgerRecord>>(StoreOperations.LedgerRead);

    public Task<bool> AddRecordAsync(string id, string hash, byte[] record) =>
        Enter(StoreOperations.KeyWrite) ? Guard(StoreOperations.KeyWrite, _inner.AddRecordAsync(id, hash, record)) : Refused<bool>(StoreOperations.KeyWrite);

    public Task<byte[]?> FindRecordByHashAsync(string hash) =>
        Enter(StoreOperations.KeyLookup) ? Guard(StoreOperations.KeyLookup, _inner.FindRecordByHashAsync(hash)) : Refused<byte[]?>(StoreOperations.KeyLookup);

    public Task<IReadOnlyList<byte[]>> ListRecordsAsync() =>
        Enter(StoreOperations.KeyList) ? Guard(StoreOperations.KeyList, _inner.ListRecordsAsync(), _timeout * 4) : Refused<IReadOnlyList<byte[]>>(StoreOperations.KeyList);

    public Task<bool> DeleteRecordAsync(string id) =>
        Enter(StoreOperations.KeyWrite) ? Guard(StoreOperations.KeyWrite, _inner.DeleteRecordAsync(id)) : Refused<bool>(StoreOperations.KeyWrite);

    public Task<GcraResult> GcraAcquireAsync(string key, long occupiesUs, long windowUs, long nowUs) =>
        Enter(StoreOperations.RateLimit) ? Guard(StoreOperations.RateLimit, _inner.GcraAcquireAsync(key, occupiesUs, windowUs, nowUs)) : Refused<GcraResult>(StoreOperations.RateLimit);

    public Task GcraAdjustAsync(string key, long deltaUs, long nowUs) =>
        Enter(StoreOperations.RateLimit) ? Guard(StoreOperations.RateLimit, _inner.GcraAdjustAsync(key, deltaUs, nowUs)) : Refused(StoreOperations.RateLimit);

    /// <summary>The health check's probe: it goes through even while the breaker is open, and closes it when it succeeds.</summary>
    public Task PingAsync() => Guard(StoreOperations.Ping, _inner.PingAsync());

    /// <summary>True when the call may go ahead; otherwise it fails at once (no I/O, no wait) through <see cref="Refused"/>.</summary>
    private bool Enter(string operation)
    {
        if (IsAvailable) return true;
        _events.StoreError(operation);
        return false;
    }

    private Task<T> Refused<T>(string operation) => Task.FromException<T>(Unavailable(operation));

    private Task Refused(string operation) => Task.FromException(Unavailable(operation));

    private StoreUnavailableException Unavailable(string operation) =>
        new(operation, IsOpen ? "skipped while the store's breaker is open" : "not connected");

    private async Task Guard(string operation, Task call, TimeSpan? timeout = null)
    {
        var grace = InGrace();
        try
        {
            await call.WaitAsync(TimeoutFor(timeout, grace), _clock).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not StoreUnavailableException)
        {
            throw Failed(operation, call, e, grace);
        }
        Succeeded();
    }

    private async Task<T> Guard<T>(string operation, Task<T> call, TimeSpan? timeout = null)
    {
        T result;
        var grace = InGrace();
        try
        {
            result = await call.WaitAsync(TimeoutFor(timeout, grace), _clock).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not StoreUnavailableException)
        {
            throw Failed(operation, call, e, grace);
        }
        Succeeded();
        return result;
    }

    private void Succeeded()
    {
        if (Interlocked.Exchange(ref _failures, 0) >= _failuresToBreak)
        {
            _logger.LogInformation("The {Store} store answers again", _inner.Kind);
        }
        Volatile.Write(ref _openUntil, 0);
    }

    private StoreUnavailableException Failed(string operation, Task call, Exception e, bool grace)
    {
        // A call that timed out may still fail later: observe it so it is not reported as unobserved.
        if (!call.IsCompleted) call.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        _events.StoreError(operation);
        var reason = e is TimeoutException ? $"no answer within {(grace ? GraceTimeout : _timeout).TotalMilliseconds:0} ms" : SecretScrubber.Scrub(e.Message);
        if (grace && e is TimeoutException)
        {
            // A slow first burst on a new connection, not a dead store: no step toward the breaker.
            _logger.LogWarning("The {Store} store was slow on {Operation} during its start-up grace: {Reason}", _inner.Kind, operation, reason);
            return new StoreUnavailableException(operation, reason, e);
        }
        var failures = Interlocked.Increment(ref _failures);
        if (failures == 1 || failures == _failuresToBreak)
        {
            _logger.LogWarning("The {Store} store failed on {Operation}: {Reason}", _inner.Kind, operation, reason);
        }
        if (failures >= _failuresToBreak)
        {
            Volatile.Write(ref _openUntil, _clock.GetTimestamp() + _breakTicks);
            if (failures == _failuresToBreak)
            {
                _logger.LogWarning("The {Store} store failed {Failures} times in a row: skipping it for {Seconds} s (cache off, budgets per FailMode, ledger buffered)",
                    _inner.Kind, failures, _breakTicks / _clock.TimestampFrequency);
            }
        }
        return new StoreUnavailableException(operation, reason, e);
    }

    private void OnRestored()
    {
        // The connection is back: probe at once instead of waiting out the break.
        Volatile.Write(ref _openUntil, 0);
    }

    public void Dispose() => (_inner as IDisposable)?.Dispose();
}

/// <summary>Store operations as counted in llm_gateway_store_errors_total{operation}.</summary>
public static class StoreOperations
{
    public const string CacheGet = "cache_get";
    public const string CacheSet = "cache_set";
    public const string CacheDelete = "cache_delete";
    public const string BudgetReserve = "budget_reserve";
    public const string BudgetSettle = "budget_settle";
    public const string BudgetRead = "budget_read";
    public const string BudgetRenew = "budget_renew";
    public const string Once = "once";
    public const string LedgerAppend = "ledger_append";
    public const string LedgerRead = "ledger_read";
    public const string KeyLookup = "key_lookup";
    public const string KeyList = "key_list";
    public const string KeyWrite = "key_write";
    public const string RateLimit = "rate_limit";
    public const string Ping = "ping";

    /// <summary>Every operation, so <c>llm_gateway_store_errors_total</c> shows each at 0 from the first scrape.</summary>
    public static readonly string[] All =
        [CacheGet, CacheSet, CacheDelete, BudgetReserve, BudgetSettle, BudgetRead, Once, LedgerAppend, LedgerRead, KeyLookup, KeyList, KeyWrite, RateLimit, Ping];
}
