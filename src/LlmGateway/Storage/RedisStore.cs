using System.Globalization;
using LlmGateway.Configuration;
using LlmGateway.Http;
using StackExchange.Redis;

namespace LlmGateway.Storage;

/// <summary>
/// The shared store on Redis, through StackExchange.Redis. Everything that must
/// be atomic (budget reservations across several counters, settling, ledger appends) is one Lua
/// script; Lua's numbers are doubles, so amounts are exact up to 2^53 nano-dollars and computed
/// values are written with <c>%d</c>, never <c>tostring</c> (which switches to exponent notation).
/// <para>
/// Keys: <c>{prefix}cache:*</c> (strings with a TTL), <c>{prefix}budget:{scope}:{window}</c> (hash:
/// s = spent, r = reserved) with its reservations in the sorted set <c>…:z</c> (member id:amount,
/// score = expiry; rare markers x:/s: for an hour, see the Settle script), <c>{prefix}ledger</c> (a stream capped with MAXLEN ~), <c>{prefix}once:*</c>,
/// virtual keys in the hashes <c>{prefix}keys</c> (id to record), <c>{prefix}keyhash</c> (hash to id) and <c>{prefix}keyhashof</c>
/// (id to hash), and rate limits as <c>{prefix}rl:*</c> (a GCRA arrival time in microseconds, expiring when it has passed).
/// Multi-key scripts assume a single Redis (or one shard), not Redis Cluster.
/// </para>
/// </summary>
public sealed class RedisStore : IGatewayStore, IDisposable
{
    private static readonly long s_keepMs = (long)Settlement.MarkerLifetime.TotalMilliseconds;
    private readonly string _prefix;
    private readonly string _ledgerKey;
    private readonly int _ledgerMax;
    private readonly Task<ConnectionMultiplexer> _connecting;
    private ConnectionMultiplexer? _mux;
    private IDatabase? _db;

    public RedisStore(string connectionString, StoreOptions options)
    {
        _prefix = options.KeyPrefix;
        _ledgerKey = _prefix + "ledger";
        _ledgerMax = options.LedgerMaxEntries;
        var config = Configure(connectionString, options);
        SecretScrubber.Register(config.Password);
        _connecting = ConnectAsync(config);
    }

    public string Kind => "redis";

    /// <summary>Connected now. While not, calls would fail at once anyway; callers skip them without an exception.</summary>
    public bool IsAvailable => _mux is { IsConnected: true };

    /// <summary>Raised (on a library thread) when the connection comes back after a failure.</summary>
    public event Action? Restored;

    /// <summary>
    /// The connection string's settings, with short timeouts and no abort on a failed first connect:
    /// the gateway starts and serves (cache off, budgets per FailMode, ledger buffering) while Redis is
    /// down, and reconnects on its own.
    /// </summary>
    internal static ConfigurationOptions Configure(string connectionString, StoreOptions options)
    {
        var config = ConfigurationOptions.Parse(connectionString);
        config.AbortOnConnectFail = false;
        config.ConnectTimeout = options.TimeoutMs;
        // Every call is async and gets TimeoutMs from GuardedStore, which also counts it and trips the breaker; the
        // library's own timeout is only a backstop for calls the guard gave up on, so it is longer.
        config.AsyncTimeout = Math.Max(options.TimeoutMs * 4, 1000);
        config.SyncTimeout = config.AsyncTimeout;
        // Since 2.x a command issued while disconnected waits in a backlog until the connection is back (or the
        // timeout). The gateway wants the 1.x behaviour: fail at once, so the guard and FailMode decide (cache off,
        // budgets per FailMode, ledger buffered) instead of requests piling up behind a dead Redis.
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ConnectRetry = 1;
        // Notice a dead connection within seconds, and try again twice a second once it is gone.
        config.KeepAlive = 5;
        config.ReconnectRetryPolicy = new LinearRetry(500);
        return config;
    }

    private async Task<ConnectionMultiplexer> ConnectAsync(ConfigurationOptions config)
    {
        var mux = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
        mux.ConnectionRestored += (_, _) => Restored?.Invoke();
        _db = mux.GetDatabase();
        _mux = mux;
        return mux;
    }

    private IDatabase Db => _db ?? throw new StoreUnavailableException("connect", "not connected yet");

    private RedisKey Key(string key) => _prefix + key;

    /// <summary>Records by id, the hash index (hash to id), and each record's hash (id to hash, to delete its index).</summary>
    private RedisKey[] RecordKeys => _recordKeys ??= [Key("keys"), Key("keyhash"), Key("keyhashof")];

    private RedisKey[]? _recordKeys;

    // :: Cache

    public async Task<byte[]?> GetAsync(string key) => await Db.StringGetAsync(Key(key)).ConfigureAwait(false);

    public async Task SetAsync(string key, byte[] value, TimeSpan ttl) => await Db.StringSetAsync(Key(key), value, ttl).ConfigureAwait(false);

    public async Task<bool> SetIfUnchangedAsync(string key, byte[]? expected, byte[] value, TimeSpan ttl)
    {
        RedisValue[] args = [expected is null ? 0 : 1, expected ?? [], value, (long)ttl.TotalMilliseconds];
        return (long)(await Db.ScriptEvaluateAsync(Scripts.SetIfUnchanged, [Key(key)], args).ConfigureAwait(false)) == 1;
    }

    public async Task<bool> DeleteAsync(string key) => await Db.KeyDeleteAsync(Key(key)).ConfigureAwait(false);

    public async Task<long> DeleteByPrefixAsync(string prefix)
    {
        // SCAN in pages (a script per page, so Redis is never blocked for long), unlinking what matches.
        var pattern = EscapeGlob(_prefix + prefix) + "*";
        var cursor = "0";
        long removed = 0;
        do
        {
            var page = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.DeletePage, null, [cursor, pattern]).ConfigureAwait(false))!;
            cursor = (string)page[0]!;
            removed += (long)page[1];
        }
        while (cursor != "0");
        return removed;
    }

    private static string EscapeGlob(string s)
    {
        if (s.AsSpan().IndexOfAny("*?[]\\") < 0) return s;
        var b = new System.Text.StringBuilder(s.Length + 8);
        foreach (var c in s)
        {
            if (c is '*' or '?' or '[' or ']' or '\\') b.Append('\\');
            b.Append(c);
        }
        return b.ToString();
    }

    // :: Budget counters

    public async Task<ReserveResult> ReserveAsync(IReadOnlyList<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now)
    {
        var keys = new RedisKey[counters.Count * 2];
        var args = new RedisValue[5 + counters.Count * 2];
        args[0] = amount;
        args[1] = new Reservation(reservationId, amount).Member;
        args[2] = reservationExpiresAt.ToUnixTimeMilliseconds();
        args[3] = now.ToUnixTimeMilliseconds();
        args[4] = s_keepMs;
        for (var i = 0; i < counters.Count; i++)
        {
            keys[2 * i] = Key(counters[i].Key);
            keys[2 * i + 1] = Key(counters[i].Key + ":z");
            args[5 + 2 * i] = counters[i].Limit;
            args[6 + 2 * i] = counters[i].ExpiresAt.ToUnixTimeSeconds();
        }
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.Reserve, keys, args).ConfigureAwait(false))!;
        var refused = (int)result[0];
        return new ReserveResult(refused - 1, ReadStates(result, 1, counters.Count));
    }

    public async Task<CounterState[]> SettleAsync(IReadOnlyList<CounterRef> counters, IReadOnlyList<Settlement> settlements, DateTimeOffset now)
    {
        var keys = CounterKeys(counters);
        var args = new RedisValue[3 + 3 * settlements.Count + counters.Count];
        args[0] = now.ToUnixTimeMilliseconds();
        args[1] = s_keepMs;
        args[2] = settlements.Count;
        for (var i = 0; i < settlements.Count; i++)
        {
            args[3 + 3 * i] = settlements[i].Reservation.Member;
            args[4 + 3 * i] = settlements[i].Spent;
            args[5 + 3 * i] = settlements[i].Held ? 1 : 0;
        }
        for (var i = 0; i < counters.Count; i++) args[3 + 3 * settlements.Count + i] = counters[i].ExpiresAt.ToUnixTimeSeconds();
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.Settle, keys, args).ConfigureAwait(false))!;
        return ReadStates(result, 0, counters.Count);
    }

    public async Task<CounterState[]> ReadCountersAsync(IReadOnlyList<CounterRef> counters, DateTimeOffset now)
    {
        if (counters.Count == 0) return [];
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.Read, CounterKeys(counters), [now.ToUnixTimeMilliseconds(), s_keepMs]).ConfigureAwait(false))!;
        return ReadStates(result, 0, counters.Count);
    }

    public async Task RenewReservationAsync(IReadOnlyList<CounterRef> counters, Reservation reservation, DateTimeOffset expiresAt)
    {
        var keys = new RedisKey[counters.Count];
        for (var i = 0; i < counters.Count; i++) keys[i] = Key(counters[i].Key + ":z");
        await Db.ScriptEvaluateAsync(Scripts.Renew, keys, [reservation.Member, expiresAt.ToUnixTimeMilliseconds()]).ConfigureAwait(false);
    }

    private RedisKey[] CounterKeys(IReadOnlyList<CounterRef> counters)
    {
        var keys = new RedisKey[counters.Count * 2];
        for (var i = 0; i < counters.Count; i++)
        {
            keys[2 * i] = Key(counters[i].Key);
            keys[2 * i + 1] = Key(counters[i].Key + ":z");
        }
        return keys;
    }

    private static CounterState[] ReadStates(RedisResult[] result, int offset, int count)
    {
        var states = new CounterState[count];
        for (var i = 0; i < count; i++)
        {
            states[i] = new CounterState((long)result[offset + 2 * i], (long)result[offset + 2 * i + 1]);
        }
        return states;
    }

    public async Task<bool> TryMarkOnceAsync(string key, TimeSpan ttl) => await Db.StringSetAsync(Key("once:" + key), "1", ttl, When.NotExists).ConfigureAwait(false);

    // :: Ledger

    public async Task AppendLedgerAsync(IReadOnlyList<byte[]> records)
    {
        if (records.Count == 0) return;
        var args = new RedisValue[records.Count + 1];
        args[0] = _ledgerMax;
        for (var i = 0; i < records.Count; i++) args[i + 1] = records[i];
        await Db.ScriptEvaluateAsync(Scripts.LedgerAppend, [_ledgerKey], args).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<LedgerRecord>> ReadLedgerAsync(long fromUnixMs, string? afterId, int count)
    {
        // An exclusive start "(" needs Redis 6.2 or later.
        var start = afterId is null ? Math.Max(0, fromUnixMs).ToString(CultureInfo.InvariantCulture) + "-0" : "(" + afterId;
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.LedgerRead, [_ledgerKey], [start, count]).ConfigureAwait(false))!;
        var page = new List<LedgerRecord>(result.Length);
        foreach (var entry in result)
        {
            var parts = (RedisResult[])entry!;
            var fields = (RedisResult[])parts[1]!;
            for (var f = 0; f + 1 < fields.Length; f += 2)
            {
                if ((string)fields[f]! == "d") page.Add(new LedgerRecord((string)parts[0]!, (byte[])fields[f + 1]!));
            }
        }
        return page;
    }

    // :: Key records

    public async Task<bool> AddRecordAsync(string id, string hash, byte[] record) =>
        (long)(await Db.ScriptEvaluateAsync(Scripts.RecordAdd, RecordKeys, [id, hash, record]).ConfigureAwait(false)) == 1;

    public async Task<byte[]?> FindRecordByHashAsync(string hash) =>
        (byte[]?)await Db.ScriptEvaluateAsync(Scripts.RecordFind, RecordKeys, [hash]).ConfigureAwait(false);

    public async Task<IReadOnlyList<byte[]>> ListRecordsAsync()
    {
        var values = await Db.HashValuesAsync(RecordKeys[0]).ConfigureAwait(false);
        return [.. values.Select(v => (byte[])v!)];
    }

    public async Task<bool> DeleteRecordAsync(string id) =>
        (long)(await Db.ScriptEvaluateAsync(Scripts.RecordDelete, RecordKeys, [id]).ConfigureAwait(false)) == 1;

    // :: Rate limits

    public async Task<GcraResult> GcraAcquireAsync(string key, long occupiesUs, long windowUs, long nowUs)
    {
        var result = (RedisResult[])(await Db.ScriptEvaluateAsync(Scripts.GcraAcquire, [Key("rl:" + key)], [occupiesUs, windowUs, nowUs]).ConfigureAwait(false))!;
        return new GcraResult((long)result[0] == 1, (long)result[1]);
    }

    public async Task GcraAdjustAsync(string key, long deltaUs, long nowUs) =>
        await Db.ScriptEvaluateAsync(Scripts.GcraAdjust, [Key("rl:" + key)], [deltaUs, nowUs]).ConfigureAwait(false);

    public async Task PingAsync() => await Db.PingAsync().ConfigureAwait(false);

    public void Dispose()
    {
        if (_connecting.IsCompletedSuccessfully) _connecting.Result.Dispose();
        else _connecting.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    private static class Scripts
    {
        /// <summary>
        /// Drops expired entries of a counter's set. An expired reservation gives its amount back and leaves
        /// the marker "x:member" (so a late settle still adds its spend); expired markers just go.
        /// </summary>
        private const string DropExpired = """
            local function drop_expired(h, z, now, keep)
              local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
              if #expired == 0 then return end
              redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
              local sum = 0
              for _, m in ipairs(expired) do
                local kind = string.sub(m, 1, 2)
                if kind ~= 's:' and kind ~= 'x:' then
                  sum = sum + tonumber(string.match(m, ':(%d+)$'))
                  redis.call('ZADD', z, string.format('%d', keep), 'x:' .. m)
                end
              end
              if sum > 0 then redis.call('HINCRBY', h, 'r', string.format('%d', -sum)) end
            end
            local function state(h)
              local v = redis.call('HMGET', h, 's', 'r')
              local s = tonumber(v[1]) or 0
              local r = tonumber(v[2]) or 0
              if r < 0 then
                redis.call('HSET', h, 'r', 0)
                r = 0
              end
              return s, r
            end
            """;

        // ARGV: amount, member, reservation expiry (ms), now (ms), marker lifetime (ms), then per counter: limit, key expiry (unix s).
        // Returns {refused counter (1-based, 0 = granted), s1, r1, s2, r2, ...}.
        public const string Reserve = DropExpired + "\n" + """
            local n = #KEYS / 2
            local amount = tonumber(ARGV[1])
            local now = tonumber(ARGV[4])
            local keep = now + tonumber(ARGV[5])
            local out = {0}
            local refused = 0
            for i = 1, n do
              local h, z = KEYS[2 * i - 1], KEYS[2 * i]
              drop_expired(h, z, now, keep)
              local s, r = state(h)
              out[2 * i] = s
              out[2 * i + 1] = r
              if refused == 0 and s + r + amount > tonumber(ARGV[4 + 2 * i]) then refused = i end
            end
            if refused > 0 then
              out[1] = refused
              return out
            end
            for i = 1, n do
              local h, z = KEYS[2 * i - 1], KEYS[2 * i]
              if redis.call('ZADD', z, 'NX', ARGV[3], ARGV[2]) == 1 then
                out[2 * i + 1] = redis.call('HINCRBY', h, 'r', ARGV[1])
              end
              redis.call('HSETNX', h, 's', 0)
              redis.call('EXPIREAT', h, ARGV[5 + 2 * i])
              redis.call('EXPIREAT', z, ARGV[5 + 2 * i])
            end
            return out
            """;

        // ARGV: now (ms), marker lifetime (ms), number of settlements m, m x (member, spent, held 1/0), then per counter: key expiry (unix s).
        // Held: drop the reservation and add the spend; if it is gone, its "x:" marker means it expired unsettled (add the
        // spend), no marker means it was settled already (nothing). Not held: add the spend once, remembered by "s:member".
        public const string Settle = """
            local n = #KEYS / 2
            local keep = tonumber(ARGV[1]) + tonumber(ARGV[2])
            local m = tonumber(ARGV[3])
            local out = {}
            for i = 1, n do
              local h, z = KEYS[2 * i - 1], KEYS[2 * i]
              for j = 1, m do
                local member, spent, held = ARGV[1 + 3 * j], ARGV[2 + 3 * j], ARGV[3 + 3 * j]
                -- HINCRBY refuses "-0" ("value is not an integer"): a zero-cost reservation gives nothing back.
                local held_amount = tonumber(string.match(member, ':(%d+)$'))
                local amount = string.format('%d', -held_amount)
                if held == '1' then
                  if redis.call('ZREM', z, member) == 1 then
                    if held_amount ~= 0 then redis.call('HINCRBY', h, 'r', amount) end
                    if spent ~= '0' then redis.call('HINCRBY', h, 's', spent) end
                  elseif redis.call('ZREM', z, 'x:' .. member) == 1 then
                    if spent ~= '0' then redis.call('HINCRBY', h, 's', spent) end
                  end
                elseif not redis.call('ZSCORE', z, 's:' .. member) then
                  if spent ~= '0' then redis.call('HINCRBY', h, 's', spent) end
                  redis.call('ZADD', z, string.format('%d', keep), 's:' .. member)
                  -- a reservation that timed out on the gateway's side but was made after all
                  if redis.call('ZREM', z, member) == 1 and held_amount ~= 0 then redis.call('HINCRBY', h, 'r', amount) end
                end
              end
              local expire_at = ARGV[3 + 3 * m + i]
              redis.call('EXPIREAT', h, expire_at)
              redis.call('EXPIREAT', z, expire_at)
              local v = redis.call('HMGET', h, 's', 'r')
              out[2 * i - 1] = tonumber(v[1]) or 0
              out[2 * i] = math.max(tonumber(v[2]) or 0, 0)
            end
            return out
            """;

        // KEYS: the reservation sets. ARGV: member, new expiry (ms). XX: a reservation already expired or settled is not brought back.
        public const string Renew = """
            for i = 1, #KEYS do
              redis.call('ZADD', KEYS[i], 'XX', ARGV[2], ARGV[1])
            end
            return #KEYS
            """;

        // ARGV: now (ms), marker lifetime (ms). Returns {s1, r1, s2, r2, ...}.
        public const string Read = DropExpired + "\n" + """
            local now = tonumber(ARGV[1])
            local out = {}
            for i = 1, #KEYS / 2 do
              local h, z = KEYS[2 * i - 1], KEYS[2 * i]
              drop_expired(h, z, now, now + tonumber(ARGV[2]))
              local s, r = state(h)
              out[2 * i - 1] = s
              out[2 * i] = r
            end
            return out
            """;

        // KEYS: records, hash index, hash of each id. ARGV: id, hash, record. Returns 1 when added, 0 when the id or hash is taken.
        public const string RecordAdd = """
            if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
            redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
            redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
            redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
            return 1
            """;

        // ARGV: hash. Returns the record or nil.
        public const string RecordFind = """
            local id = redis.call('HGET', KEYS[2], ARGV[1])
            if not id then return false end
            return redis.call('HGET', KEYS[1], id)
            """;

        // ARGV: id. Returns 1 when deleted, 0 when there was none.
        public const string RecordDelete = """
            local hash = redis.call('HGET', KEYS[3], ARGV[1])
            if not hash then return 0 end
            redis.call('HDEL', KEYS[1], ARGV[1])
            redis.call('HDEL', KEYS[3], ARGV[1])
            redis.call('HDEL', KEYS[2], hash)
            return 1
            """;

        // GCRA, exactly as MemoryStore does it. ARGV: occupies, window, now (all microseconds). Returns {allowed 1/0, TAT}.
        // The key lives until its TAT has passed: an absent key is an empty bucket.
        public const string GcraAcquire = """
            local occupies, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
            local tat = tonumber(redis.call('GET', KEYS[1])) or now
            if tat < now then tat = now end
            local nxt = tat + occupies
            if nxt - window > now then return {0, string.format('%d', tat)} end
            if occupies ~= 0 then
              redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', string.format('%d', math.max(1, math.ceil((nxt - now) / 1000))))
            end
            return {1, string.format('%d', nxt)}
            """;

        // ARGV: delta, now (microseconds). The new TAT is never before now; at now the key is dropped (an empty bucket).
        public const string GcraAdjust = """
            local delta, now = tonumber(ARGV[1]), tonumber(ARGV[2])
            local tat = tonumber(redis.call('GET', KEYS[1])) or now
            if tat < now then tat = now end
            local nxt = tat + delta
            if nxt <= now then
              redis.call('DEL', KEYS[1])
            else
              redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', string.format('%d', math.max(1, math.ceil((nxt - now) / 1000))))
            end
            return 1
            """;

        // ARGV: whether a value is expected (0: the key must not exist), the expected value, the new
        // value, its TTL in ms. Returns 1 when written, 0 when the key had changed.
        public const string SetIfUnchanged = """
            local current = redis.call('GET', KEYS[1])
            if ARGV[1] == '0' then
              if current then return 0 end
            elseif current ~= ARGV[2] then
              return 0
            end
            redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
            return 1
            """;

        // ARGV: cursor, pattern. Returns {next cursor, removed}.
        public const string DeletePage = """
            local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', 500)
            local keys = page[2]
            if #keys > 0 then redis.call('UNLINK', unpack(keys)) end
            return {page[1], #keys}
            """;

        // ARGV: max length, then the records.
        public const string LedgerAppend = """
            for i = 2, #ARGV do
              redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[i])
            end
            return #ARGV - 1
            """;

        // ARGV: start id (inclusive, or "(" exclusive), count.
        public const string LedgerRead = """
            return redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
            """;
    }
}
