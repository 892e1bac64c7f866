using System.Collections.Concurrent;
using System.Globalization;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Budgets;

/// <summary>
/// Spend limits per scope (global, per provider, per gateway key) on UTC day and month windows.
/// <para>
/// Before each attempt the most the attempt can cost (<see cref="Pricing.MaxCostUsd"/>) is reserved
/// atomically on every counter it falls under, so concurrent requests can never together pass a
/// limit: what is admitted always fits in limit - spent - reserved. When the request ends the
/// reservation is replaced by the real cost; a failed attempt gives it back. A reservation is a lease of
/// <c>Budgets:ReservationLeaseSeconds</c> that this instance renews while the request runs, so the holds
/// of an instance that dies mid-request (kill -9 included) are released within one lease.
/// </para>
/// <para>
/// When the store can't be reached, <c>Budgets:FailMode</c> decides: closed refuses, open admits as
/// long as what this instance knows (the last counters it read plus its own unflushed spend and
/// holds) leaves room, and keeps the spend to add to the store when it is back: nothing spent during
/// an outage goes uncounted. What it keeps is also written to a local spool (<see cref="LocalSpool"/>), so a
/// restart or a crash before the store is back loses none of it: the next start on the host settles it.
/// </para>
/// </summary>
public sealed class BudgetService : BackgroundService, IAttemptAdmission, IBudgetGate, IBudgetReport, IUnreservedSpend
{
    /// <summary>How often the local view of the counters (for the router and the gauges) is refreshed, and pending spend flushed.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    /// <summary>Settlements kept per counter while the store is down; beyond it they are merged (see <see cref="LocalCounter.Keep"/>).</summary>
    private const int MaxPendingSettlements = 10_000;

    private readonly IGatewayStore _store;

    /// <summary>
    /// The embedded store, when it is the store: it answers at once and never fails, so admission and settlement
    /// call it without a task, a result object and arrays per call, and the request pays no async state machine.
    /// </summary>
    private readonly MemoryStore? _memory;
    private readonly IKeyBudgetSource _keys;
    private readonly TimeProvider _time;
    private readonly IGatewayEvents _events;
    private readonly ILogger<BudgetService> _logger;
    private readonly BudgetLimit? _global;
    private readonly Dictionary<string, BudgetLimit> _providers = new(StringComparer.OrdinalIgnoreCase);
    private readonly decimal _maxPerRequest;
    private readonly double[] _thresholds;
    private readonly bool _failClosed;
    private readonly TimeSpan _lease;
    private readonly StoreOptions _storeOptions;

    /// <summary>
    /// Reservations this instance holds in the store, each with the expiry of its lease: a list linked through the
    /// tickets themselves, so holding one costs no map node and no hash per request, only this lock, which guards the
    /// links and the expiries.
    /// </summary>
    private BudgetTicket? _leased;
    private readonly Lock _leasesLock = new();

    /// <summary>Settlements not yet in the store, on disk (with a remote store only; see <see cref="StartAsync"/>).</summary>
    private LocalSpool? _spool;

    /// <summary>With a remote store: settlements on their way to it, sent in batches off the request's path.</summary>
    private readonly SettlementBatches? _batches;
    private readonly bool _hasStaticLimits;

    private volatile WindowSet _windows;
    private readonly ConcurrentDictionary<string, KnownCounter> _known = new(StringComparer.Ordinal);
    private readonly Lock _localLock = new();
    private readonly Dictionary<string, LocalCounter> _local = new(StringComparer.Ordinal);
    /// <summary>Per counter: the index of the highest alert threshold already logged in its window.</summary>
    private readonly ConcurrentDictionary<string, int> _alerted = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private long _lastOutageLog;

    public BudgetService(IOptions<GatewayOptions> options, IGatewayStore store, IKeyBudgetSource keys, TimeProvider time,
        IGatewayEvents events, ILogger<BudgetService> logger)
    {
        var o = options.Value;
        _store = store;
        _memory = store as MemoryStore;
        _keys = keys;
        _time = time;
        _events = events;
        _logger = logger;
        var b = o.Budgets;
        _global = b.Global.DailyUsd > 0 || b.Global.MonthlyUsd > 0 ? b.Global : null;
        foreach (var (name, limit) in b.Providers)
        {
            if (limit.DailyUsd > 0 || limit.MonthlyUsd > 0) _providers[name] = limit;
        }
        _maxPerRequest = b.MaxCostPerRequestUsd;
        _thresholds = [.. b.AlertThresholds.Order()];
        _failClosed = b.FailMode == "closed";
        _lease = TimeSpan.FromSeconds(b.ReservationLeaseSeconds);
        _storeOptions = o.Store;
        _hasStaticLimits = _global is not null || _providers.Count > 0 || _maxPerRequest > 0;
        _windows = new WindowSet(time.GetUtcNow());
        if (_memory is null)
        {
            _batches = new SettlementBatches((refs, settlements) => _store.SettleAsync(refs, settlements, _time.GetUtcNow()),
                (counters, states) =>
                {
                    Remember(counters, states);
                    return CheckAlertsAsync(counters);
                },
                KeepAsync, logger);
        }
    }

    private WindowSet Windows => WindowsAt(_time.GetUtcNow());

    /// <summary>The windows <paramref name="now"/> falls in: admission reads the clock once for these and for its reservation.</summary>
    private WindowSet WindowsAt(DateTimeOffset now)
    {
        var w = _windows;
        if (now < w.DayEnd) return w;
        var next = new WindowSet(now);
        _windows = next;
        return next;
    }

    // :: Admission (called by the candidate executor before each attempt)

    /// <summary>
    /// A key's limits travel with its identity (configured and virtual keys alike); the configured list
    /// is the fallback for callers that set a key id without one.
    /// </summary>
    private BudgetLimit? KeyLimitOf(string? keyId, Auth.CallerIdentity? caller) =>
        keyId is null ? null
        : caller is { } c && (c.DailyUsd > 0 || c.MonthlyUsd > 0) ? new BudgetLimit { DailyUsd = c.DailyUsd, MonthlyUsd = c.MonthlyUsd }
        : _keys.Find(keyId);

    public ValueTask<Admission> AdmitAsync(GatewayContext context, Candidate candidate, CancellationToken cancellationToken)
    {
        var keyId = context.Record.KeyId;
        var keyLimit = KeyLimitOf(keyId, context.Caller);
        if (!_hasStaticLimits && keyLimit is null) return new(Admission.Granted);

        // n answers may each use max_tokens, and a provider without n of its own is called n times, prompt included.
        var maxCost = Pricing.MaxCostUsd(candidate.Model, context.Request.EstimatedPromptTokens, context.Request.MaxTokens) * context.Request.N;
        if (_maxPerRequest > 0 && maxCost > _maxPerRequest)
        {
            return new(Refuse(candidate, ErrorCodes.BudgetExceeded, string.Create(CultureInfo.InvariantCulture,
                $"Model '{candidate.ModelName}' could cost up to ${maxCost:0.######} for this request, over the gateway's limit of ${_maxPerRequest:0.######} per request; lower max_tokens or the prompt size.")));
        }

        var now = _time.GetUtcNow();
        var counters = WindowsAt(now).ForAttempt(candidate.Provider.Name, keyId, _global, _providers.GetValueOrDefault(candidate.Provider.Name), keyLimit);
        if (counters.Length == 0) return new(Admission.Granted);

        var reservation = new Reservation(context.Record.RequestId + "." + context.Record.Attempts.ToString(CultureInfo.InvariantCulture), Nanos.FromUsdCeiling(maxCost));
        if (_memory is not null)
        {
            // No states back: budgets read the embedded store's counters where they are (see Known).
            var refused = _memory.Reserve(counters.Limits, reservation.Id, reservation.Amount, now + _lease, now, states: default);
            return new(refused >= 0 ? Refuse(candidate, counters[refused]) : Admitted(counters, reservation, now));
        }
        return AdmitInStoreAsync(candidate, counters, reservation, now);
    }

    private async ValueTask<Admission> AdmitInStoreAsync(Candidate candidate, AttemptCounters counters, Reservation reservation, DateTimeOffset now)
    {
        if (_store.IsAvailable)
        {
            try
            {
                var result = await _store.ReserveAsync(counters.Limits, reservation.Id, reservation.Amount, now + _lease, now).ConfigureAwait(false);
                Remember(counters, result.States);
                return result.Granted ? Admitted(counters, reservation, now) : Refuse(candidate, counters[result.RefusedIndex]);
            }
            catch (StoreUnavailableException)
            {
                // Falls through to the decision without the store.
            }
        }
        return AdmitWithoutStore(candidate, counters, reservation);
    }

    /// <summary>Reserved in the store: a ticket, and its lease to renew while the request runs.</summary>
    private Admission Admitted(AttemptCounters counters, Reservation reservation, DateTimeOffset now)
    {
        var ticket = new BudgetTicket(this, counters, reservation, inStore: true);
        lock (_leasesLock)
        {
            ticket.LeaseExpiresAt = (now + _lease).UtcDateTime;
            ticket.NextLeased = _leased;
            if (_leased is not null) _leased.PreviousLeased = ticket;
            _leased = ticket;
            ticket.Leased = true;
        }
        return new Admission(null, ticket);
    }

    private Admission AdmitWithoutStore(Candidate candidate, AttemptCounters counters, Reservation reservation)
    {
        if (_failClosed)
        {
            LogOutage("refusing budgeted requests (Budgets:FailMode=closed)");
            return Refuse(candidate, ErrorCodes.BudgetUnavailable,
                "Budgets can't be checked right now (the gateway's store is unreachable) and the gateway is set to refuse rather than risk overspending. Try again shortly.");
        }
        LogOutage("admitting against this instance's last known counters (Budgets:FailMode=open)");
        lock (_localLock)
        {
            foreach (var c in counters.Scopes)
            {
                var local = _local.GetValueOrDefault(c.Key);
                var spent = Known(c.Key).Spent + (local?.PendingSpent ?? 0) + (local?.Held ?? 0);
                if (spent + reservation.Amount > c.Counter.Limit) return Refuse(candidate, c);
            }
            foreach (var c in counters.Scopes) Local(c).Held += reservation.Amount;
        }
        return new Admission(null, new BudgetTicket(this, counters, reservation, inStore: false));
    }

    private static Admission Refuse(Candidate candidate, ScopeCounter counter) => Refuse(candidate, ErrorCodes.BudgetExceeded,
        string.Create(CultureInfo.InvariantCulture,
            $"The {counter.Window} budget of {Describe(counter.Scope)} is used up (or has less left than this request could cost on model '{candidate.ModelName}'). It resets at {counter.WindowEnd:yyyy-MM-ddTHH:mm:ssZ}."));

    private static Admission Refuse(Candidate candidate, string code, string message) =>
        new(new ProviderFailure(FailureKind.NextCandidate, FailureCause.Budget, candidate.Provider.Name, message,
            ErrorType: ErrorTypes.InsufficientQuota, ErrorCode: code), null);

    private static string Describe(string scope) => scope switch
    {
        BudgetScopes.Global => "the gateway",
        _ when scope.StartsWith("provider:", StringComparison.Ordinal) => $"provider '{scope["provider:".Length..]}'",
        _ when scope.StartsWith("key:", StringComparison.Ordinal) => $"key '{scope["key:".Length..]}'",
        _ => scope,
    };

    // :: Unreserved spend (pass-through calls)

    public string? ExhaustedReason(string provider, Auth.CallerIdentity? caller)
    {
        var keyLimit = KeyLimitOf(caller?.KeyId, caller);
        if (!_hasStaticLimits && keyLimit is null) return null;
        foreach (var c in Windows.ForAttempt(provider, caller?.KeyId, _global, _providers.GetValueOrDefault(provider), keyLimit).Scopes)
        {
            if (SpentKnown(c.Key) + Known(c.Key).Reserved >= c.Counter.Limit)
            {
                return string.Create(CultureInfo.InvariantCulture, $"the {c.Window} budget of {Describe(c.Scope)} is used up (it resets at {c.WindowEnd:yyyy-MM-ddTHH:mm:ssZ})");
            }
        }
        return null;
    }

    public async ValueTask ChargeAsync(string provider, Auth.CallerIdentity? caller, string requestId, decimal costUsd)
    {
        if (costUsd <= 0) return;
        var counters = Windows.ForAttempt(provider, caller?.KeyId, _global, _providers.GetValueOrDefault(provider), KeyLimitOf(caller?.KeyId, caller));
        if (counters.Length == 0) return;
        // Nothing was held for it: settled like spend admitted during an outage, once per request id.
        await WriteAsync(counters, new Settlement(new Reservation(requestId, 0), Nanos.FromUsd(costUsd), Held: false), tryStore: true).ConfigureAwait(false);
    }

    // :: Settling (the ticket calls back here)

    internal ValueTask SettleAsync(BudgetTicket ticket, long spent)
    {
        var counters = ticket.Counters;
        if (ticket.InStore) EndLease(ticket);
        var settlement = new Settlement(ticket.Reservation, spent, Held: ticket.InStore);
        if (!ticket.InStore)
        {
            lock (_localLock)
            {
                foreach (var c in counters.Scopes) Local(c).Held -= ticket.Reservation.Amount;
            }
        }
        // A reservation admitted without the store is settled through the flush, like the rest of its outage spend.
        return WriteAsync(counters, settlement, tryStore: ticket.InStore);
    }

    private void EndLease(BudgetTicket ticket)
    {
        lock (_leasesLock)
        {
            if (!ticket.Leased) return;
            if (ticket.PreviousLeased is { } previous) previous.NextLeased = ticket.NextLeased;
            else _leased = ticket.NextLeased;
            if (ticket.NextLeased is { } next) next.PreviousLeased = ticket.PreviousLeased;
            ticket.PreviousLeased = ticket.NextLeased = null;
            ticket.Leased = false;
        }
    }

    /// <summary>Writes a settlement to the store, or keeps it to write when the store is back; then checks the alerts.</summary>
    private ValueTask WriteAsync(AttemptCounters counters, Settlement settlement, bool tryStore)
    {
        if (tryStore && _memory is not null)
        {
            if (_thresholds.Length == 0)
            {
                _memory.Settle(counters.Refs, new ReadOnlySpan<Settlement>(in settlement), _time.GetUtcNow(), states: default);
                return ValueTask.CompletedTask;
            }
            // The alerts want each scope's spend: taken as this settle leaves it, under the store's lock the settle
            // holds anyway, instead of read back by key (the store's lock and lookup, then the outage's lock and
            // lookup, per scope, on every request). Spend only grows within a window, so a settle that finds no
            // threshold newly crossed here would have found none a moment later but for a concurrent settle, which
            // then finds it in its own states. Nothing is ever kept locally with the embedded store (it has no
            // outage), so its states are the whole spend.
            Span<CounterState> states = stackalloc CounterState[counters.Length];
            _memory.Settle(counters.Refs, new ReadOnlySpan<Settlement>(in settlement), _time.GetUtcNow(), states);
            for (var i = 0; i < states.Length; i++)
            {
                if (AlertDue(counters[i], states[i].Spent)) return CheckThresholdsAsync(counters);
            }
            return ValueTask.CompletedTask;
        }
        if (tryStore && _store.IsAvailable)
        {
            // On its way with the settlements of the other requests ending about now; what the store does not take comes
            // back to KeepAsync. The request does not wait for it (SettlementBatches says why).
            _batches!.Add(counters, settlement);
            return ValueTask.CompletedTask;
        }
        return KeepAsync(counters, settlement);
    }

    /// <summary>
    /// Keeps a settlement the store can't take now, to write when it is back (<see cref="FlushPendingAsync"/>), and spools it.
    /// A settlement that may have gone through anyway is safe to send again: the store applies each once.
    /// </summary>
    private ValueTask KeepAsync(AttemptCounters counters, Settlement settlement)
    {
        lock (_localLock)
        {
            foreach (var c in counters.Scopes) Local(c).Keep(settlement);
            // Under the lock, so the spool is never emptied between the keep and this write (see FlushPendingCoreAsync).
            _spool?.Append([SpooledSettlement.Write(counters.Scopes, settlement)]);
        }
        return CheckAlertsAsync(counters);
    }

    /// <summary>Called under <see cref="_localLock"/>.</summary>
    private LocalCounter Local(ScopeCounter c)
    {
        if (!_local.TryGetValue(c.Key, out var local)) _local[c.Key] = local = new LocalCounter(c);
        return local;
    }

    // :: Alerts

    private ValueTask CheckAlertsAsync(AttemptCounters counters) => _thresholds.Length == 0 ? ValueTask.CompletedTask : CheckThresholdsAsync(counters);

    private async ValueTask CheckThresholdsAsync(AttemptCounters counters)
    {
        foreach (var c in counters.Scopes)
        {
            var spent = SpentKnown(c.Key);
            var level = AlertLevel(c, spent);
            if (level < 0) continue;
            // Once per threshold per window (the counter key names the window): in this instance, then across
            // instances through the store. Jumping past several thresholds at once logs the highest.
            var logged = _alerted.GetOrAdd(c.Key, -1);
            if (logged >= level || !_alerted.TryUpdate(c.Key, level, logged)) continue;
            var threshold = _thresholds[level];
            var first = true;
            if (_store.IsAvailable)
            {
                try
                {
                    var alertKey = string.Create(CultureInfo.InvariantCulture, $"alert:{c.Key}:{threshold}");
                    first = await _store.TryMarkOnceAsync(alertKey, c.Counter.ExpiresAt - _time.GetUtcNow()).ConfigureAwait(false);
                }
                catch (StoreUnavailableException)
                {
                    // Better twice than never.
                }
            }
            if (first)
            {
                _logger.LogWarning("Budget alert: {Scope} has spent {Percent}% of its {Window} budget (${SpentUsd} of ${LimitUsd}); the window ends {WindowEnd}",
                    c.Scope, Math.Round(threshold * 100), c.Window, Math.Round(Nanos.ToUsd(spent), 6), c.LimitUsd, c.WindowEnd);
            }
        }
    }

    /// <summary>The highest threshold <paramref name="spent"/> has reached in <paramref name="c"/>'s window; -1 for none.</summary>
    private int AlertLevel(ScopeCounter c, long spent)
    {
        for (var i = _thresholds.Length - 1; i >= 0; i--)
        {
            if ((double)spent >= _thresholds[i] * c.Counter.Limit) return i;
        }
        return -1;
    }

    /// <summary>Whether <paramref name="spent"/> reaches a threshold of <paramref name="c"/>'s window not yet alerted in this instance.</summary>
    private bool AlertDue(ScopeCounter c, long spent)
    {
        var level = AlertLevel(c, spent);
        return level >= 0 && (!_alerted.TryGetValue(c.Key, out var logged) || logged < level);
    }

    // :: What the router, the admin endpoint and the gauges read

    public string? ExhaustedReason(string provider)
    {
        if (!_providers.TryGetValue(provider, out var limit)) return null;
        foreach (var c in Windows.ForProvider(provider, limit))
        {
            if (SpentKnown(c.Key) >= c.Counter.Limit)
            {
                return string.Create(CultureInfo.InvariantCulture, $"the {c.Window} budget of provider '{provider}' is spent (it resets at {c.WindowEnd:yyyy-MM-ddTHH:mm:ssZ})");
            }
        }
        return null;
    }

    public bool IsProviderExhausted(string provider)
    {
        if (!_providers.TryGetValue(provider, out var limit)) return false;
        foreach (var c in Windows.ForProvider(provider, limit))
        {
            if (SpentKnown(c.Key) >= c.Counter.Limit) return true;
        }
        return false;
    }

    /// <summary>Every limited scope and window with limit, spent, reserved and window end, from the last refresh (no store call).</summary>
    public IReadOnlyList<BudgetStatus> Snapshot()
    {
        var counters = AllCounters();
        var result = new List<BudgetStatus>(counters.Count);
        foreach (var c in counters) result.Add(Status(c, Known(c.Key)));
        return result;
    }

    /// <summary>Like <see cref="Snapshot"/>, read from the store now; from the last refresh (Stale) when the store is unreachable.</summary>
    public async Task<(IReadOnlyList<BudgetStatus> Statuses, bool Stale)> GetStatusAsync()
    {
        // A key created a moment ago (on any instance) is listed at once, not at the next refresh.
        if (_store.IsAvailable) await _keys.RefreshAsync(now: true).ConfigureAwait(false);
        var counters = AllCounters();
        if (counters.Count > 0 && _store.IsAvailable)
        {
            try
            {
                var states = await _store.ReadCountersAsync(Refs(counters), _time.GetUtcNow()).ConfigureAwait(false);
                var result = new List<BudgetStatus>(counters.Count);
                for (var i = 0; i < counters.Count; i++)
                {
                    KnownOf(counters[i].Key).State = states[i];
                    result.Add(Status(counters[i], states[i]));
                }
                return (result, false);
            }
            catch (StoreUnavailableException)
            {
                // The snapshot it is.
            }
        }
        return (Snapshot(), counters.Count > 0 && !_store.IsAvailable);
    }

    private BudgetStatus Status(ScopeCounter c, CounterState state)
    {
        long pending = 0, held = 0;
        lock (_localLock)
        {
            if (_local.TryGetValue(c.Key, out var local))
            {
                pending = local.PendingSpent;
                held = local.Held;
            }
        }
        return new BudgetStatus(c.Scope, c.Window, c.LimitUsd, Nanos.ToUsd(state.Spent + pending), Nanos.ToUsd(state.Reserved + held), c.WindowEnd);
    }

    private List<ScopeCounter> AllCounters()
    {
        var w = Windows;
        var list = new List<ScopeCounter>();
        w.AddCounters(list, BudgetScopes.Global, _global);
        foreach (var (name, limit) in _providers) w.AddCounters(list, BudgetScopes.Provider(name), limit);
        foreach (var (id, limit) in _keys.All()) w.AddCounters(list, BudgetScopes.Key(id), limit);
        return list;
    }

    private long SpentKnown(string key)
    {
        var spent = Known(key).Spent;
        lock (_localLock)
        {
            if (_local.TryGetValue(key, out var local)) spent += local.PendingSpent;
        }
        return spent;
    }

    /// <summary>
    /// A counter as this instance last saw it. The embedded store is in this process and only this service writes its
    /// counters, so its own state is what the last admission or settlement left (what was remembered here after
    /// each, four map look-ups and locks per request): read there, nothing is remembered on the request's path.
    /// </summary>
    private CounterState Known(string key) =>
        _memory is not null ? _memory.ReadCounter(key)
        : _known.TryGetValue(key, out var known) ? known.State : default;

    private KnownCounter KnownOf(string key) => _known.GetOrAdd(key, static _ => new KnownCounter());

    private void Remember(AttemptCounters counters, ReadOnlySpan<CounterState> states)
    {
        for (var i = 0; i < counters.Length && i < states.Length; i++) KnownOf(counters[i].Key).State = states[i];
    }

    private static CounterRef[] Refs(IReadOnlyList<ScopeCounter> counters)
    {
        var refs = new CounterRef[counters.Count];
        for (var i = 0; i < counters.Count; i++) refs[i] = counters[i].Counter.Ref;
        return refs;
    }

    private void LogOutage(string what)
    {
        // Counted per request (store errors), logged at most once a minute.
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastOutageLog);
        if (last != 0 && _time.GetElapsedTime(last, now) < TimeSpan.FromMinutes(1)) return;
        if (Interlocked.CompareExchange(ref _lastOutageLog, now, last) != last) return;
        _logger.LogWarning("The store is unreachable: budgets are {What}", what);
    }

    // :: Background: flush spend kept during an outage, refresh the local view

    /// <summary>
    /// Opens this instance's spool (with a remote store) and takes over the spools of instances that died on this
    /// host: their settlements are kept as this instance's own and written when the store can take them.
    /// Settling is idempotent in the store, so one that had gone through before the crash is not counted twice.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (_store.Kind != "memory" && _spool is null)
        {
            var directory = _storeOptions.SpoolDirectory();
            try
            {
                _spool = LocalSpool.Create(directory, "budget", _storeOptions.SpoolMaxBytes, _logger);
                var adopted = LocalSpool.AdoptOrphans(directory, "budget", _spool.Path, Adopt, _logger);
                if (adopted > 0) _logger.LogWarning("Settling {Count} budget settlements an earlier instance kept in its spool", adopted);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Budgets still work; only spend kept during a store outage would not survive a restart.
                _logger.LogError(e, "The budget spool in {Directory} can't be used: spend kept during a store outage is held in memory only", directory);
            }
        }
        return base.StartAsync(cancellationToken);
    }

    private void Adopt(IReadOnlyList<byte[]> records)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var kept = new List<byte[]>(records.Count);
        lock (_localLock)
        {
            foreach (var record in records)
            {
                if (SpooledSettlement.Read(record) is not { } spooled || !seen.Add(spooled.Settlement.Reservation.Id)) continue;
                foreach (var c in spooled.Counters) Local(c).Keep(spooled.Settlement);
                kept.Add(record);
            }
            // In this instance's spool before the orphan is deleted: a crash now still loses nothing.
            _spool!.Append(kept);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Runs even with nothing configured yet: keys with limits may be added while the gateway runs.
        using var timer = new PeriodicTimer(RefreshInterval, TimeProvider.System);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await RenewLeasesAsync().ConfigureAwait(false);
                await FlushPendingAsync().ConfigureAwait(false);
                await RefreshAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        // The server stopped first, its requests done: their settlements go now, and what the store refuses is kept and flushed or spooled.
        if (_batches is not null) await _batches.DrainAsync().ConfigureAwait(false);
        await FlushPendingAsync().ConfigureAwait(false);
        _spool?.Dispose(); // kept on disk if it still holds anything, for the next start
    }

    /// <summary>
    /// Renews the lease of every reservation this instance holds in the store once a third of it has passed, so a
    /// request may run as long as it needs while a crashed instance's holds lapse within one lease.
    /// </summary>
    internal async Task RenewLeasesAsync()
    {
        if (Volatile.Read(ref _leased) is null || !_store.IsAvailable) return;
        var now = _time.GetUtcNow();
        List<(BudgetTicket Ticket, DateTime ExpiresAt)>? due = null;
        lock (_leasesLock)
        {
            for (var ticket = _leased; ticket is not null; ticket = ticket.NextLeased)
            {
                if (ticket.LeaseExpiresAt - now.UtcDateTime <= _lease * 2 / 3) (due ??= []).Add((ticket, ticket.LeaseExpiresAt));
            }
        }
        if (due is null) return;
        foreach (var (ticket, expiresAt) in due)
        {
            var next = now + _lease;
            try
            {
                await _store.RenewReservationAsync(ticket.Counters.Refs, ticket.Reservation, next).ConfigureAwait(false);
            }
            catch (StoreUnavailableException)
            {
                // Next tick. A lease that runs out meanwhile is released; the settlement still adds the spend.
                return;
            }
            lock (_leasesLock)
            {
                // Unless it was settled meanwhile.
                if (ticket.Leased && ticket.LeaseExpiresAt == expiresAt) ticket.LeaseExpiresAt = next.UtcDateTime;
            }
        }
    }

    /// <summary>Writes the settlements kept while the store was down (their spend, and the release of holds the store still has).</summary>
    internal async Task FlushPendingAsync()
    {
        if (!_store.IsAvailable) return;
        // The background loop and shutdown may both flush: one at a time, so nothing is sent twice at once.
        await _flushing.WaitAsync().ConfigureAwait(false);
        try
        {
            await FlushPendingCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _flushing.Release();
        }
    }

    private async Task FlushPendingCoreAsync()
    {
        List<(ScopeCounter Counter, Settlement[] Settlements)> work = [];
        lock (_localLock)
        {
            foreach (var local in _local.Values)
            {
                if (local.PendingCount == 0) continue;
                work.Add((local.Counter, local.TakeForSending()));
            }
        }
        if (work.Count == 0) return;
        foreach (var (counter, settlements) in work)
        {
            try
            {
                var states = await _store.SettleAsync([counter.Counter.Ref], settlements, _time.GetUtcNow()).ConfigureAwait(false);
                lock (_localLock)
                {
                    var local = _local[counter.Key];
                    local.Acknowledge(settlements.Length);
                    if (local.PendingCount == 0 && local.Held == 0) _local.Remove(counter.Key);
                }
                KnownOf(counter.Key).State = states[0];
            }
            catch (StoreUnavailableException)
            {
                // Sent again next time; the store applies each settlement once.
                return;
            }
        }
        // Everything kept is in the store now: the spool can go. (A crash before this replays some of it; the store
        // applies each settlement once.) Looked at once per flush, not once per counter flushed: after an outage with
        // many keys' counters that was their number squared, under the lock every request takes.
        lock (_localLock)
        {
            if (_spool is not null && _local.Values.All(static l => l.PendingCount == 0)) _spool.Clear();
        }
    }

    private async Task RefreshAsync()
    {
        if (!_store.IsAvailable) return;
        await _keys.RefreshAsync().ConfigureAwait(false);
        var counters = AllCounters();
        if (counters.Count == 0) return;
        try
        {
            var states = await _store.ReadCountersAsync(Refs(counters), _time.GetUtcNow()).ConfigureAwait(false);
            for (var i = 0; i < counters.Count; i++) KnownOf(counters[i].Key).State = states[i];
            Forget(counters);
        }
        catch (StoreUnavailableException)
        {
            // Next tick.
        }
    }

    /// <summary>Drops what is remembered of counters of past windows (the local view only; the store keeps its own).</summary>
    private void Forget(List<ScopeCounter> current)
    {
        if (_known.Count <= current.Count * 2 + 16 && _alerted.Count <= current.Count * 2 + 16) return;
        var keep = new HashSet<string>(current.Count, StringComparer.Ordinal);
        foreach (var c in current) keep.Add(c.Key);
        var w = Windows;
        foreach (var key in _known.Keys)
        {
            if (!keep.Contains(key) && !key.EndsWith(w.DayId, StringComparison.Ordinal) && !key.EndsWith(w.MonthId, StringComparison.Ordinal)) _known.TryRemove(key, out _);
        }
        foreach (var key in _alerted.Keys)
        {
            if (!key.EndsWith(w.DayId, StringComparison.Ordinal) && !key.EndsWith(w.MonthId, StringComparison.Ordinal)) _alerted.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// A counter as this instance last read it from the store. One object per counter, written in place: as a struct
    /// value of the map, each write was a new map node, four per request. The lock keeps spent and reserved of one
    /// read together, as the struct value did.
    /// </summary>
    private sealed class KnownCounter
    {
        private readonly Lock _lock = new();
        private CounterState _state;

        public CounterState State
        {
            get { lock (_lock) return _state; }
            set { lock (_lock) _state = value; }
        }
    }

    /// <summary>What this instance holds or owes a counter while the store is unreachable.</summary>
    private sealed class LocalCounter(ScopeCounter counter)
    {
        public ScopeCounter Counter { get; } = counter;

        /// <summary>Reservations admitted without the store, still running.</summary>
        public long Held;

        /// <summary>Settlements not yet in the store, oldest first.</summary>
        private readonly List<Settlement> _pending = [];

        /// <summary>How many of the pending (from the front) a flush is sending right now.</summary>
        private int _sent;

        public int PendingCount => _pending.Count;

        /// <summary>
        /// Spend of the pending settlements: counted locally until the store has it. Kept as a sum, not summed when
        /// asked: every admission and alert check during an outage asks, and up to
        /// <see cref="MaxPendingSettlements"/> pile up per counter, so a sum per question made each request slower
        /// the longer the store was away, under the lock every request takes.
        /// </summary>
        public long PendingSpent { get; private set; }

        /// <summary>The pending settlements, to send; they stay pending until <see cref="Acknowledge"/>.</summary>
        public Settlement[] TakeForSending()
        {
            _sent = _pending.Count;
            return [.. _pending];
        }

        /// <summary>The store has the first <paramref name="count"/> pending settlements.</summary>
        public void Acknowledge(int count)
        {
            for (var i = 0; i < count; i++) PendingSpent -= _pending[i].Spent;
            _pending.RemoveRange(0, count);
            _sent = 0;
        }

        public void Keep(Settlement settlement)
        {
            PendingSpent += settlement.Spent;
            if (_pending.Count < MaxPendingSettlements || _pending.Count <= _sent)
            {
                _pending.Add(settlement);
                return;
            }
            // Full: fold the spend into the newest settlement not yet sent (its own id keeps it applied once). The
            // reservation of this one is not released then; it expires on its own.
            var last = _pending[^1];
            _pending[^1] = last with { Spent = last.Spent + settlement.Spent };
        }
    }
}

/// <summary>One scope in one window, as /admin/budgets lists it and the budget gauges publish it.</summary>
public sealed record BudgetStatus(string Scope, string Window, decimal LimitUsd, decimal SpentUsd, decimal ReservedUsd, DateTimeOffset WindowEnd)
{
    public decimal RemainingUsd => Math.Max(0, LimitUsd - SpentUsd - ReservedUsd);
}

/// <summary>
/// A settlement the store could not take yet, as the spool keeps it: the counters (with their limits and windows,
/// which may have changed by the time it is replayed) and the settlement.
/// </summary>
internal sealed record SpooledSettlement(ScopeCounter[] Counters, Settlement Settlement)
{
    public static byte[] Write(ScopeCounter[] counters, Settlement settlement)
    {
        var dto = new SpooledSettlementJson
        {
            ReservationId = settlement.Reservation.Id,
            Amount = settlement.Reservation.Amount,
            Spent = settlement.Spent,
            Held = settlement.Held,
            Counters = [.. counters.Select(c => new SpooledCounterJson
            {
                Scope = c.Scope, Window = c.Window, LimitUsd = c.LimitUsd, WindowEnd = c.WindowEnd,
                Key = c.Counter.Key, Limit = c.Counter.Limit, ExpiresAt = c.Counter.ExpiresAt,
            })],
        };
        return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(dto, BudgetSpoolJsonContext.Default.SpooledSettlementJson);
    }

    /// <summary>The settlement, or null for a record that is not one (cut short, or from another version).</summary>
    public static SpooledSettlement? Read(byte[] record)
    {
        try
        {
            var dto = System.Text.Json.JsonSerializer.Deserialize(record, BudgetSpoolJsonContext.Default.SpooledSettlementJson);
            if (dto is null || dto.ReservationId.Length == 0 || dto.Counters.Count == 0) return null;
            var counters = dto.Counters.Select(c => new ScopeCounter(c.Scope, c.Window, c.LimitUsd, c.WindowEnd, new CounterLimit(c.Key, c.Limit, c.ExpiresAt))).ToArray();
            return new SpooledSettlement(counters, new Settlement(new Reservation(dto.ReservationId, dto.Amount), dto.Spent, dto.Held));
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}

internal sealed class SpooledSettlementJson
{
    public string ReservationId { get; set; } = "";
    public long Amount { get; set; }
    public long Spent { get; set; }
    public bool Held { get; set; }
    public List<SpooledCounterJson> Counters { get; set; } = [];
}

internal sealed class SpooledCounterJson
{
    public string Scope { get; set; } = "";
    public string Window { get; set; } = "";
    public decimal LimitUsd { get; set; }
    public DateTimeOffset WindowEnd { get; set; }
    public string Key { get; set; } = "";
    public long Limit { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(SpooledSettlementJson))]
internal sealed partial class BudgetSpoolJsonContext : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>A reservation for one attempt; settled with the real cost, or released when the attempt failed.</summary>
internal sealed class BudgetTicket(BudgetService owner, AttemptCounters counters, Reservation reservation, bool inStore) : IAdmissionTicket
{
    private int _done;

    public AttemptCounters Counters { get; } = counters;
    public Reservation Reservation { get; } = reservation;

    /// <summary>False when admitted without the store (FailMode open during an outage).</summary>
    public bool InStore { get; } = inStore;

    // The owner's list of leases held in the store (see BudgetService._leased), under its lock.
    internal BudgetTicket? PreviousLeased;
    internal BudgetTicket? NextLeased;
    internal DateTime LeaseExpiresAt; // UTC: half a DateTimeOffset, on every ticket
    internal bool Leased;

    public ValueTask SettleAsync(decimal actualCostUsd) =>
        Interlocked.Exchange(ref _done, 1) == 0 ? owner.SettleAsync(this, Nanos.FromUsd(actualCostUsd)) : ValueTask.CompletedTask;

    public ValueTask ReleaseAsync() =>
        Interlocked.Exchange(ref _done, 1) == 0 ? owner.SettleAsync(this, 0) : ValueTask.CompletedTask;
}
