using System.Collections.Concurrent;
using System.Globalization;
using LlmGateway.Configuration;

namespace LlmGateway.Storage;

/// <summary>
/// The embedded store: one process, nothing to install. The cache is bounded by
/// <see cref="StoreOptions.MemoryCacheMaxBytes"/> (oldest entries go first), budget counters sit
/// behind one lock (a reservation checks and updates several counters at once, and a lock held for
/// a few hundred nanoseconds is simpler and just as fast as anything lock-free here), and the
/// ledger is a ring of <see cref="StoreOptions.LedgerMaxEntries"/> records.
/// </summary>
public sealed class MemoryStore : IGatewayStore
{
    private readonly TimeProvider _time;
    private readonly long _maxCacheBytes;

    private readonly ConcurrentDictionary<string, CacheItem> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string Key, long Seq)> _cacheOrder = new();
    private long _cacheBytes;
    private long _cacheSeq;

    private readonly Lock _countersLock = new();
    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    /// <summary>No counter's window ends before this (a lower bound: only a sweep raises it, to the exact earliest).</summary>
    private long _countersDueMs = long.MaxValue;
    private int _counterSweeps;

    /// <summary>
    /// The counters a reservation found while checking them, used under the lock to reserve on them: looking each
    /// up again by its key was a second hash of every key per reservation.
    /// </summary>
    private Counter[] _reserving = new Counter[8];

    private const int SweepOnceAbove = 1024;
    private readonly ConcurrentDictionary<string, long> _once = new(StringComparer.Ordinal);
    private readonly Lock _onceSweepLock = new();
    private int _sweepOnceAt = SweepOnceAbove;

    private readonly Lock _recordsLock = new();
    private readonly Dictionary<string, (string Hash, byte[] Record)> _records = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _recordIds = new(StringComparer.Ordinal);

    private const int SweepTatsAbove = 10_000;
    private readonly Lock _gcraLock = new();
    private readonly Dictionary<string, long> _tats = new(StringComparer.Ordinal);
    private int _sweepTatsAt = SweepTatsAbove;
    private int _tatSweeps;

    // The ledger keeps its records as bytes in one arena, indexed by a ring of structs: no object per
    // record, so a full ring gives the GC nothing to trace. (A ring of 100,000 record objects, replaced
    // as traffic flows, cost 10-30 ms p99 pauses under load in the benchmark.)
    private const int LedgerBytesPerEntry = 512;
    private const int LedgerMaxArenaBytes = 64 * 1024 * 1024;
    private readonly Lock _ledgerLock = new();
    private readonly LedgerEntry[] _ring;
    private readonly byte[] _arena;
    private int _arenaWrite;
    private int _ringStart;
    private int _ringCount;
    private long _lastLedgerMs;
    private long _ledgerSeq;

    public MemoryStore(StoreOptions options, TimeProvider time)
    {
        _time = time;
        _maxCacheBytes = options.MemoryCacheMaxBytes;
        _ring = new LedgerEntry[options.LedgerMaxEntries];
        _arena = new byte[(int)Math.Clamp((long)options.LedgerMaxEntries * LedgerBytesPerEntry, 64 * 1024, LedgerMaxArenaBytes)];
    }

    public string Kind => "memory";
    public bool IsAvailable => true;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    // :: Cache

    public Task<byte[]?> GetAsync(string key)
    {
        if (!_cache.TryGetValue(key, out var item)) return Task.FromResult<byte[]?>(null);
        if (item.ExpiresAtMs <= NowMs)
        {
            Remove(key, item);
            return Task.FromResult<byte[]?>(null);
        }
        return Task.FromResult<byte[]?>(item.Value);
    }

    public Task SetAsync(string key, byte[] value, TimeSpan ttl)
    {
        if (value.Length > _maxCacheBytes) return Task.CompletedTask;
        var item = NewItem(value, ttl);
        _cache.AddOrUpdate(key,
            static (_, s) => { Interlocked.Add(ref s.Store._cacheBytes, s.Item.Value.Length); return s.Item; },
            static (_, old, s) => { Interlocked.Add(ref s.Store._cacheBytes, s.Item.Value.Length - old.Value.Length); return s.Item; },
            (Store: this, Item: item));
        Added(key, item);
        return Task.CompletedTask;
    }

    public Task<bool> SetIfUnchangedAsync(string key, byte[]? expected, byte[] value, TimeSpan ttl)
    {
        if (value.Length > _maxCacheBytes) return Task.FromResult(false);
        var item = NewItem(value, ttl);
        var live = _cache.TryGetValue(key, out var current) && current.ExpiresAtMs > NowMs;
        bool written;
        if (expected is null)
        {
            if (live) return Task.FromResult(false);
            // An expired entry still in the map counts as none: replace exactly that one.
            written = current is null ? _cache.TryAdd(key, item) : _cache.TryUpdate(key, item, current);
        }
        else
        {
            if (!live || !current!.Value.AsSpan().SequenceEqual(expected)) return Task.FromResult(false);
            written = _cache.TryUpdate(key, item, current);
        }
        if (!written) return Task.FromResult(false);
        Interlocked.Add(ref _cacheBytes, value.Length - (current?.Value.Length ?? 0));
        Added(key, item);
        return Task.FromResult(true);
    }

    private CacheItem NewItem(byte[] value, TimeSpan ttl) => new(value, NowMs + (long)ttl.TotalMilliseconds, Interlocked.Increment(ref _cacheSeq));

    private void Added(string key, CacheItem item)
    {
        _cacheOrder.Enqueue((key, item.Seq));
        Evict();
    }

    public Task<bool> DeleteAsync(string key) =>
        Task.FromResult(_cache.TryGetValue(key, out var item) && Remove(key, item) && item.ExpiresAtMs > NowMs);

    public Task<long> DeleteByPrefixAsync(string prefix)
    {
        long removed = 0;
        foreach (var (key, item) in _cache)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal) && Remove(key, item)) removed++;
        }
        return Task.FromResult(removed);
    }

    /// <summary>Oldest first until the cache fits again; queue entries of replaced or removed items are skipped.</summary>
    private void Evict()
    {
        while (Interlocked.Read(ref _cacheBytes) > _maxCacheBytes && _cacheOrder.TryDequeue(out var oldest))
        {
            if (_cache.TryGetValue(oldest.Key, out var item) && item.Seq == oldest.Seq) Remove(oldest.Key, item);
        }
        // Keep the order queue from growing without bound when the same keys are rewritten often.
        if (_cacheOrder.Count > 4 * (_cache.Count + 1024))
        {
            var live = _cacheOrder.Count;
            for (var i = 0; i < live && _cacheOrder.TryDequeue(out var entry); i++)
            {
                if (_cache.TryGetValue(entry.Key, out var item) && item.Seq == entry.Seq) _cacheOrder.Enqueue(entry);
            }
        }
    }

    private bool Remove(string key, CacheItem item)
    {
        if (!_cache.TryRemove(new KeyValuePair<string, CacheItem>(key, item))) return false;
        Interlocked.Add(ref _cacheBytes, -item.Value.Length);
        return true;
    }

    // :: Budget counters

    public Task<ReserveResult> ReserveAsync(IReadOnlyList<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now)
    {
        var states = new CounterState[counters.Count];
        var refused = Reserve(AsSpan(counters), reservationId, amount, reservationExpiresAt, now, states);
        return Task.FromResult(new ReserveResult(refused, states));
    }

    /// <summary>
    /// <see cref="ReserveAsync"/> as the budgets call it on this store, once per attempt: it never waits, so it
    /// answers without a task, and the counters' states go into <paramref name="states"/> rather than a new array (or
    /// nowhere, when it is empty: the budgets read the counters here when they need them). Returns the index of the
    /// first counter without room, or -1 when reserved.
    /// </summary>
    internal int Reserve(ReadOnlySpan<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now, Span<CounterState> states)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var refused = -1;
        lock (_countersLock)
        {
            if (_reserving.Length < counters.Length) _reserving = new Counter[counters.Length];
            var found = _reserving.AsSpan(0, counters.Length);
            for (var i = 0; i < counters.Length; i++)
            {
                var c = found[i] = GetCounter(counters[i].Key, counters[i].ExpiresAt, nowMs);
                c.DropExpired(nowMs);
                if (!states.IsEmpty) states[i] = new CounterState(c.Spent, c.Reserved);
                if (refused < 0 && c.Spent + c.Reserved + amount > counters[i].Limit) refused = i;
            }
            if (refused < 0)
            {
                var expires = reservationExpiresAt.ToUnixTimeMilliseconds();
                for (var i = 0; i < found.Length; i++)
                {
                    var c = found[i];
                    c.Reserve(reservationId, amount, expires);
                    if (!states.IsEmpty) states[i] = new CounterState(c.Spent, c.Reserved);
                }
            }
            found.Clear(); // holds no counter past its sweep
        }
        return refused;
    }

    public Task<CounterState[]> SettleAsync(IReadOnlyList<CounterRef> counters, IReadOnlyList<Settlement> settlements, DateTimeOffset now)
    {
        var states = new CounterState[counters.Count];
        Settle(AsSpan(counters), AsSpan(settlements), now, states);
        return Task.FromResult(states);
    }

    /// <summary><see cref="SettleAsync"/> as the budgets call it on this store, once per attempt (see <see cref="Reserve"/>; an empty <paramref name="states"/> wants none).</summary>
    internal void Settle(ReadOnlySpan<CounterRef> counters, ReadOnlySpan<Settlement> settlements, DateTimeOffset now, Span<CounterState> states)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        lock (_countersLock)
        {
            for (var i = 0; i < counters.Length; i++)
            {
                var c = GetCounter(counters[i].Key, counters[i].ExpiresAt, nowMs);
                c.DropExpired(nowMs);
                foreach (var settlement in settlements) c.Settle(settlement, nowMs);
                if (!states.IsEmpty) states[i] = new CounterState(c.Spent, c.Reserved);
            }
        }
    }

    /// <summary>Callers pass arrays (the budgets always do); anything else is copied once.</summary>
    private static ReadOnlySpan<T> AsSpan<T>(IReadOnlyList<T> list) => list is T[] array ? array : [.. list];

    public Task<CounterState[]> ReadCountersAsync(IReadOnlyList<CounterRef> counters, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        var states = new CounterState[counters.Count];
        lock (_countersLock)
        {
            for (var i = 0; i < counters.Count; i++)
            {
                if (!_counters.TryGetValue(counters[i].Key, out var c)) continue;
                c.DropExpired(nowMs);
                states[i] = new CounterState(c.Spent, c.Reserved);
            }
        }
        return Task.FromResult(states);
    }

    public Task RenewReservationAsync(IReadOnlyList<CounterRef> counters, Reservation reservation, DateTimeOffset expiresAt)
    {
        var expires = expiresAt.ToUnixTimeMilliseconds();
        lock (_countersLock)
        {
            foreach (var counter in counters)
            {
                if (_counters.TryGetValue(counter.Key, out var c) && c.Reservations.TryGetValue(reservation.Id, out var held))
                {
                    c.Reservations[reservation.Id] = (held.Amount, expires);
                }
            }
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// A counter's spent and reserved as the last reservation, settlement or read left them (expired reservations are
    /// not looked for): the budgets' view of the counters between refreshes. Zero for a counter never used.
    /// </summary>
    internal CounterState ReadCounter(string key)
    {
        lock (_countersLock) return _counters.TryGetValue(key, out var c) ? new CounterState(c.Spent, c.Reserved) : default;
    }

    /// <summary>What a counter holds in memory (reservations in flight, markers remembered), for tests.</summary>
    internal (int Reservations, int Expired, int Settled) Held(string key)
    {
        lock (_countersLock) return _counters.TryGetValue(key, out var c) ? c.Sizes : default;
    }

    /// <summary>
    /// Called under the lock. Counters of windows long past are dropped when new ones appear, looked for only once
    /// the earliest of them is due: every key with a limit has a counter per window, and a scan of all of them for
    /// each new one made a day's first requests cost with the number of keys, squared over the day's start.
    /// </summary>
    private Counter GetCounter(string key, DateTimeOffset expiresAt, long nowMs)
    {
        if (_counters.TryGetValue(key, out var c)) return c;
        if (nowMs >= _countersDueMs)
        {
            _counterSweeps++;
            List<string>? stale = null;
            var due = long.MaxValue;
            foreach (var (k, existing) in _counters)
            {
                if (existing.ExpiresAtMs <= nowMs) (stale ??= []).Add(k);
                else if (existing.ExpiresAtMs < due) due = existing.ExpiresAtMs;
            }
            if (stale is not null) foreach (var k in stale) _counters.Remove(k);
            _countersDueMs = due;
        }
        c = new Counter { ExpiresAtMs = expiresAt.ToUnixTimeMilliseconds() };
        _counters[key] = c;
        if (c.ExpiresAtMs < _countersDueMs) _countersDueMs = c.ExpiresAtMs;
        return c;
    }

    /// <summary>Counters held, and how often they were looked through for stale ones (tests).</summary>
    internal (int Counters, int Sweeps) CountersHeld()
    {
        lock (_countersLock) return (_counters.Count, _counterSweeps);
    }

    public Task<bool> TryMarkOnceAsync(string key, TimeSpan ttl)
    {
        var now = NowMs;
        var expires = now + (long)ttl.TotalMilliseconds;
        while (true)
        {
            if (_once.TryAdd(key, expires))
            {
                if (_once.Count >= Volatile.Read(ref _sweepOnceAt)) SweepOnce(now);
                return Task.FromResult(true);
            }
            if (!_once.TryGetValue(key, out var existing)) continue;
            if (existing > now) return Task.FromResult(false);
            if (_once.TryUpdate(key, expires, existing)) return Task.FromResult(true);
        }
    }

    /// <summary>
    /// Marks whose time has passed are dropped once the map has doubled since the last sweep: a mark is made per
    /// budget alert per counter per window, so without this the map grew with every day the process ran, and a
    /// sweep costs no more than the marks added since the last one.
    /// </summary>
    private void SweepOnce(long nowMs)
    {
        lock (_onceSweepLock)
        {
            if (_once.Count < _sweepOnceAt) return;
            foreach (var mark in _once)
            {
                // Only the mark as seen: one renewed meanwhile stays.
                if (mark.Value <= nowMs) _once.TryRemove(mark);
            }
            Volatile.Write(ref _sweepOnceAt, Math.Max(SweepOnceAbove, 2 * _once.Count));
        }
    }

    /// <summary>Marks held (tests).</summary>
    internal int OnceHeld => _once.Count;

    // :: Ledger

    public Task AppendLedgerAsync(IReadOnlyList<byte[]> records)
    {
        lock (_ledgerLock)
        {
            foreach (var data in records) AppendLedgerLocked(data);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// One record, written at once: what <see cref="Usage.UsageLedger"/> does with each record on this store (a copy under a
    /// lock, nothing to batch or to wait for).
    /// </summary>
    public void AppendLedger(ReadOnlySpan<byte> record)
    {
        lock (_ledgerLock)
        {
            AppendLedgerLocked(record);
        }
    }

    private void AppendLedgerLocked(ReadOnlySpan<byte> data)
    {
        if (data.Length > _arena.Length) return; // larger than the whole ledger: nothing sensible to keep
        // Ids as Redis stream ids: milliseconds-sequence, never going backwards.
        var ms = NowMs;
        if (ms > _lastLedgerMs)
        {
            _lastLedgerMs = ms;
            _ledgerSeq = 0;
        }
        else
        {
            _ledgerSeq++;
        }

        if (_ringCount == _ring.Length) DropOldestLedgerEntry();
        if (_arenaWrite + data.Length > _arena.Length)
        {
            // Wrap. What lies past the old write position is the oldest data of all: drop it first.
            while (_ringCount > 0 && _ring[_ringStart].Offset >= _arenaWrite) DropOldestLedgerEntry();
            _arenaWrite = 0;
        }
        // The oldest entries sit just ahead of the write position: drop those the new bytes cover.
        while (_ringCount > 0 && Overlaps(_ring[_ringStart], _arenaWrite, data.Length)) DropOldestLedgerEntry();

        data.CopyTo(_arena.AsSpan(_arenaWrite));
        _ring[(_ringStart + _ringCount) % _ring.Length] = new LedgerEntry(_lastLedgerMs, _ledgerSeq, _arenaWrite, data.Length);
        _ringCount++;
        _arenaWrite += data.Length;
    }

    private void DropOldestLedgerEntry()
    {
        _ringStart = (_ringStart + 1) % _ring.Length;
        _ringCount--;
    }

    private static bool Overlaps(LedgerEntry e, int offset, int length) =>
        e.Offset < offset + length && offset < e.Offset + e.Length;

    public Task<IReadOnlyList<LedgerRecord>> ReadLedgerAsync(long fromUnixMs, string? afterId, int count)
    {
        // "At or after fromUnixMs" is "after (fromUnixMs, -1)": one comparison for both kinds of start.
        var after = afterId is null ? (fromUnixMs, -1L) : ParseId(afterId);
        var page = new List<LedgerRecord>(Math.Min(count, 1024));
        lock (_ledgerLock)
        {
            // Ids increase along the ring: binary search for the first one past the cursor.
            int lo = 0, hi = _ringCount;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                var e = _ring[(_ringStart + mid) % _ring.Length];
                if (Compare((e.Ms, e.Seq), after) > 0) hi = mid;
                else lo = mid + 1;
            }
            for (var i = lo; i < _ringCount && page.Count < count; i++)
            {
                var e = _ring[(_ringStart + i) % _ring.Length];
                page.Add(new LedgerRecord(FormatId(e.Ms, e.Seq), _arena.AsSpan(e.Offset, e.Length).ToArray()));
            }
        }
        return Task.FromResult<IReadOnlyList<LedgerRecord>>(page);
    }

    private readonly record struct LedgerEntry(long Ms, long Seq, int Offset, int Length);

    private static string FormatId(long ms, long seq) => string.Create(CultureInfo.InvariantCulture, $"{ms}-{seq}");

    private static (long Ms, long Seq) ParseId(string id)
    {
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return (long.Parse(id.AsSpan(0, dash), CultureInfo.InvariantCulture), long.Parse(id.AsSpan(dash + 1), CultureInfo.InvariantCulture));
    }

    private static int Compare((long Ms, long Seq) a, (long Ms, long Seq) b) =>
        a.Ms != b.Ms ? a.Ms.CompareTo(b.Ms) : a.Seq.CompareTo(b.Seq);

    // :: Key records

    public Task<bool> AddRecordAsync(string id, string hash, byte[] record)
    {
        lock (_recordsLock)
        {
            if (_records.ContainsKey(id) || _recordIds.ContainsKey(hash)) return Task.FromResult(false);
            _records[id] = (hash, record);
            _recordIds[hash] = id;
        }
        return Task.FromResult(true);
    }

    public Task<byte[]?> FindRecordByHashAsync(string hash)
    {
        lock (_recordsLock)
        {
            return Task.FromResult(_recordIds.TryGetValue(hash, out var id) ? _records[id].Record : null);
        }
    }

    public Task<IReadOnlyList<byte[]>> ListRecordsAsync()
    {
        lock (_recordsLock)
        {
            return Task.FromResult<IReadOnlyList<byte[]>>([.. _records.Values.Select(r => r.Record)]);
        }
    }

    public Task<bool> DeleteRecordAsync(string id)
    {
        lock (_recordsLock)
        {
            if (!_records.Remove(id, out var removed)) return Task.FromResult(false);
            _recordIds.Remove(removed.Hash);
        }
        return Task.FromResult(true);
    }

    // :: Rate limits: one lock, held for a few arithmetic operations.

    public Task<GcraResult> GcraAcquireAsync(string key, long occupiesUs, long windowUs, long nowUs)
    {
        lock (_gcraLock)
        {
            var tat = Math.Max(_tats.GetValueOrDefault(key), nowUs);
            var next = tat + occupiesUs;
            if (next - windowUs > nowUs) return Task.FromResult(new GcraResult(false, tat));
            if (occupiesUs != 0) SetTat(key, next, nowUs);
            return Task.FromResult(new GcraResult(true, next));
        }
    }

    public Task GcraAdjustAsync(string key, long deltaUs, long nowUs)
    {
        lock (_gcraLock)
        {
            var tat = Math.Max(_tats.GetValueOrDefault(key), nowUs);
            SetTat(key, Math.Max(nowUs, tat + deltaUs), nowUs);
        }
        return Task.CompletedTask;
    }

    /// <summary>Called under the lock. A TAT in the past is an empty bucket: such keys are dropped once there are many.</summary>
    private void SetTat(string key, long tat, long nowUs)
    {
        if (tat <= nowUs)
        {
            _tats.Remove(key);
            return;
        }
        if (_tats.Count >= _sweepTatsAt && !_tats.ContainsKey(key))
        {
            _tatSweeps++;
            List<string>? idle = null;
            foreach (var (k, t) in _tats)
            {
                if (t <= nowUs) (idle ??= []).Add(k);
            }
            if (idle is not null) foreach (var k in idle) _tats.Remove(k);
            // The next sweep once the map has doubled: with more live keys than the threshold, a sweep for every
            // new key cost the whole map each time under this lock; now each sweep is paid for by as many new keys.
            _sweepTatsAt = Math.Max(SweepTatsAbove, 2 * _tats.Count);
        }
        _tats[key] = tat;
    }

    /// <summary>Rate-limit states held, and how often they were looked through for idle ones (tests).</summary>
    internal (int Tats, int Sweeps) TatsHeld()
    {
        lock (_gcraLock) return (_tats.Count, _tatSweeps);
    }

    public Task PingAsync() => Task.CompletedTask;

    private sealed record CacheItem(byte[] Value, long ExpiresAtMs, long Seq);

    private sealed class Counter
    {
        private static readonly long s_keepMs = (long)Settlement.MarkerLifetime.TotalMilliseconds;

        public long Spent;
        public long Reserved;
        public long ExpiresAtMs;
        public readonly Dictionary<string, (long Amount, long ExpiresAtMs)> Reservations = new(StringComparer.Ordinal);

        /// <summary>No reservation expires before this (a lower bound: a renewal only moves one later).</summary>
        private long _reservationsDueMs = long.MaxValue;

        /// <summary>Reservations that expired unsettled, and settlements of ones never held here: until when they are remembered.</summary>
        private readonly Markers _expired = new();
        private readonly Markers _settled = new();

        public void Reserve(string id, long amount, long expiresAtMs)
        {
            if (!Reservations.TryAdd(id, (amount, expiresAtMs))) return;
            Reserved += amount;
            if (expiresAtMs < _reservationsDueMs) _reservationsDueMs = expiresAtMs;
        }

        public void Settle(Settlement s, long nowMs)
        {
            var id = s.Reservation.Id;
            if (s.Held)
            {
                if (Reservations.Remove(id, out var held))
                {
                    Reserved -= held.Amount;
                    Spent += s.Spent;
                }
                else if (_expired.Remove(id))
                {
                    Spent += s.Spent;
                }
                return; // otherwise: settled already
            }
            if (!_settled.TryAdd(id, nowMs + s_keepMs)) return;
            Spent += s.Spent;
            // A reservation that timed out on the caller's side but was made after all.
            if (Reservations.Remove(id, out var phantom)) Reserved -= phantom.Amount;
        }

        /// <summary>
        /// Called on every use, so it must not cost with the counter's history: the markers leave in the
        /// order they came (each a queue's head), and the reservations in flight are looked through only once
        /// the earliest of them is due. Every pass-through call leaves a settled marker for an hour; a scan of
        /// all of them on every request made each request slower with every pass-through call of the last hour.
        /// </summary>
        public void DropExpired(long nowMs)
        {
            _expired.Forget(nowMs);
            _settled.Forget(nowMs);
            if (nowMs < _reservationsDueMs) return;
            List<string>? expired = null;
            var due = long.MaxValue;
            foreach (var (id, r) in Reservations)
            {
                if (r.ExpiresAtMs <= nowMs) (expired ??= []).Add(id);
                else if (r.ExpiresAtMs < due) due = r.ExpiresAtMs;
            }
            _reservationsDueMs = due;
            if (expired is null) return;
            foreach (var id in expired)
            {
                Reserved -= Reservations[id].Amount;
                Reservations.Remove(id);
                _expired.TryAdd(id, nowMs + s_keepMs);
            }
        }

        /// <summary>Counts of what is remembered, for tests.</summary>
        internal (int Reservations, int Expired, int Settled) Sizes => (Reservations.Count, _expired.Count, _settled.Count);
    }

    /// <summary>
    /// Ids remembered until a time, forgotten in the order they were added: every marker lives as long as every
    /// other, so the oldest is always at the queue's head and forgetting costs only what is forgotten.
    /// </summary>
    private sealed class Markers
    {
        private readonly Dictionary<string, long> _until = new(StringComparer.Ordinal);
        private readonly Queue<(string Id, long Until)> _order = new();

        public int Count => _until.Count;

        public bool TryAdd(string id, long until)
        {
            if (!_until.TryAdd(id, until)) return false;
            _order.Enqueue((id, until));
            return true;
        }

        /// <summary>Its queue entry stays until its time comes, and is skipped then.</summary>
        public bool Remove(string id) => _until.Remove(id);

        public void Forget(long nowMs)
        {
            while (_order.TryPeek(out var head) && head.Until <= nowMs)
            {
                _order.Dequeue();
                // Only the entry it was added with: an id removed and added again has a later one behind.
                if (_until.TryGetValue(head.Id, out var until) && until == head.Until) _until.Remove(head.Id);
            }
        }
    }
}
