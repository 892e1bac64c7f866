namespace LlmGateway.Storage;

/// <summary>
/// The one store behind the response cache, the budgets and the usage ledger: the embedded
/// <see cref="MemoryStore"/> for one process, or <see cref="RedisStore"/> when many gateway
/// instances share state. Both pass the same contract tests.
/// <para>
/// Keys are given without the configured prefix. Money is in integer nano-dollars
/// (<see cref="Nanos"/>), so concurrent additions are exact and a budget that fits ten requests
/// admits exactly ten.
/// </para>
/// <para>
/// A call fails with <see cref="StoreUnavailableException"/> when the store can't be reached; callers
/// check <see cref="IsAvailable"/> first so that a store known to be down costs no exception.
/// </para>
/// </summary>
public interface IGatewayStore
{
    /// <summary><c>memory</c> or <c>redis</c>.</summary>
    string Kind { get; }

    /// <summary>False while the store is known to be unreachable (disconnected, or its breaker is open).</summary>
    bool IsAvailable { get; }

    // :: Response cache

    Task<byte[]?> GetAsync(string key);

    Task SetAsync(string key, byte[] value, TimeSpan ttl);

    /// <summary>
    /// Writes <paramref name="value"/> only while the stored value is still <paramref name="expected"/>
    /// (null: no entry); false when another writer changed it first. What a read-modify-write shared
    /// by several gateway instances needs to lose nothing.
    /// </summary>
    Task<bool> SetIfUnchangedAsync(string key, byte[]? expected, byte[] value, TimeSpan ttl);

    /// <summary>Removes one entry; false when there was none.</summary>
    Task<bool> DeleteAsync(string key);

    /// <summary>Removes every entry whose key starts with <paramref name="prefix"/>; returns how many.</summary>
    Task<long> DeleteByPrefixAsync(string prefix);

    // :: Budget counters: each counter has spent and reserved nano-dollars; reservations expire on their own.

    /// <summary>
    /// Atomically: when every counter has room for <paramref name="amount"/> more (spent + reserved +
    /// amount within its limit), reserves it on all of them under <paramref name="reservationId"/>;
    /// otherwise reserves nothing. Reservations whose expiry has passed are dropped first, so a
    /// gateway that died mid-request does not hold budget forever.
    /// </summary>
    Task<ReserveResult> ReserveAsync(IReadOnlyList<CounterLimit> counters, string reservationId, long amount, DateTimeOffset reservationExpiresAt, DateTimeOffset now);

    /// <summary>
    /// Applies each settlement to every counter, at most once, so a settle that timed out but went
    /// through can be sent again without counting twice: a settlement of a reservation the store holds
    /// drops it and adds the spend (sent again, it finds the reservation gone and does nothing; one
    /// that expired unsettled is remembered for <see cref="Settlement.MarkerLifetime"/>, so its late
    /// spend still counts); a settlement of one admitted without the store adds the spend and leaves a
    /// marker for as long. Markers exist only for those rare cases, never per request.
    /// </summary>
    Task<CounterState[]> SettleAsync(IReadOnlyList<CounterRef> counters, IReadOnlyList<Settlement> settlements, DateTimeOffset now);

    Task<CounterState[]> ReadCountersAsync(IReadOnlyList<CounterRef> counters, DateTimeOffset now);

    /// <summary>
    /// Moves the expiry of a reservation still held on these counters to <paramref name="expiresAt"/> (the lease of
    /// a request still running); one already expired or settled stays gone.
    /// </summary>
    Task RenewReservationAsync(IReadOnlyList<CounterRef> counters, Reservation reservation, DateTimeOffset expiresAt);

    /// <summary>True for the first caller (across every instance sharing the store) until <paramref name="ttl"/> passes.</summary>
    Task<bool> TryMarkOnceAsync(string key, TimeSpan ttl);

    // :: Usage ledger: an append-only, capped log of opaque records, in insertion order.

    Task AppendLedgerAsync(IReadOnlyList<byte[]> records);

    /// <summary>
    /// Up to <paramref name="count"/> records inserted at or after <paramref name="fromUnixMs"/>, or
    /// strictly after <paramref name="afterId"/> when it is given (to read the next page).
    /// </summary>
    Task<IReadOnlyList<LedgerRecord>> ReadLedgerAsync(long fromUnixMs, string? afterId, int count);

    // :: Key records: opaque records by id, each indexed by a unique hash (virtual keys; see Auth/StoreKeyStore).

    /// <summary>Stores <paramref name="record"/> under <paramref name="id"/> and indexes it by <paramref name="hash"/>, atomically; false (nothing stored) when the id or the hash is taken.</summary>
    Task<bool> AddRecordAsync(string id, string hash, byte[] record);

    /// <summary>The record indexed by <paramref name="hash"/>, or null.</summary>
    Task<byte[]?> FindRecordByHashAsync(string hash);

    /// <summary>Every record, in no particular order.</summary>
    Task<IReadOnlyList<byte[]>> ListRecordsAsync();

    /// <summary>Deletes the record <paramref name="id"/> and its hash index, atomically; false when there is none.</summary>
    Task<bool> DeleteRecordAsync(string id);

    // :: Rate limits: GCRA (see Auth/IRateLimiter), one theoretical arrival time (TAT) per key.
    // Times are microseconds since the Unix epoch: exact in Lua's doubles (up to 2^53), fine enough for any limit.

    /// <summary>
    /// Atomically: with <c>tat = max(stored, now)</c> and <c>next = tat + occupies</c>, when
    /// <c>next - window &lt;= now</c> stores <c>next</c> (unless <paramref name="occupiesUs"/> is 0) until it
    /// has passed and returns it as granted; otherwise stores nothing and returns <c>tat</c>, refused.
    /// </summary>
    Task<GcraResult> GcraAcquireAsync(string key, long occupiesUs, long windowUs, long nowUs);

    /// <summary>
    /// Atomically moves the TAT (<c>max(stored, now)</c>) by <paramref name="deltaUs"/>, never refusing and
    /// never below <paramref name="nowUs"/>: negative gives time back, positive may over-fill the bucket.
    /// </summary>
    Task GcraAdjustAsync(string key, long deltaUs, long nowUs);

    Task PingAsync();
}

/// <summary>The outcome of a GCRA acquisition and the theoretical arrival time after it (before it, when refused).</summary>
public readonly record struct GcraResult(bool Allowed, long TatUs);

/// <summary>A budget counter (one scope in one window) and when the store may forget it.</summary>
public readonly record struct CounterRef(string Key, DateTimeOffset ExpiresAt);

/// <summary>A counter with the limit a reservation must fit under.</summary>
public readonly record struct CounterLimit(string Key, long Limit, DateTimeOffset ExpiresAt)
{
    public CounterRef Ref => new(Key, ExpiresAt);
}

public readonly record struct CounterState(long Spent, long Reserved);

/// <summary>One held reservation: its id and amount.</summary>
public readonly record struct Reservation(string Id, long Amount)
{
    /// <summary>How a reservation is stored: the amount travels with the id, so expiring it needs no second lookup.</summary>
    public string Member => Id + ":" + Amount.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// The end of one reservation: what it actually cost (0 when the attempt failed). <see cref="Held"/>:
/// the reservation was made in the store (false when it was admitted while the store was unreachable).
/// </summary>
public readonly record struct Settlement(Reservation Reservation, long Spent, bool Held = true)
{
    /// <summary>
    /// How long a counter remembers a reservation that expired unsettled, or a settlement of one it never
    /// held. A settlement sent again after longer than that (an outage of over an hour) may count twice,
    /// or, for an expired reservation, not at all.
    /// </summary>
    public static readonly TimeSpan MarkerLifetime = TimeSpan.FromHours(1);
}

/// <summary>
/// The outcome of <see cref="IGatewayStore.ReserveAsync"/>: <see cref="RefusedIndex"/> is the first
/// counter without room (-1 when granted); <see cref="States"/> are the counters after the call.
/// </summary>
public sealed record ReserveResult(int RefusedIndex, CounterState[] States)
{
    public bool Granted => RefusedIndex < 0;
}

/// <summary>A ledger record and its position (ids sort in insertion order).</summary>
public readonly record struct LedgerRecord(string Id, byte[] Data);

/// <summary>The store could not be reached (or answered too slowly). The caller falls back as its capability says.</summary>
public sealed class StoreUnavailableException(string operation, string message, Exception? inner = null)
    : Exception($"Store operation '{operation}' failed: {message}", inner)
{
    public string Operation { get; } = operation;
}

/// <summary>Money as integer nano-dollars: exact under concurrent addition, and in range up to about $9 million per counter.</summary>
public static class Nanos
{
    public const decimal PerUsd = 1_000_000_000m;

    /// <summary>Rounded up: a reservation never holds less than the estimate.</summary>
    public static long FromUsdCeiling(decimal usd) =>
        TryFromInteger(usd, ceiling: true, out var nanos) ? nanos : (long)Math.Ceiling(usd * PerUsd);

    public static long FromUsd(decimal usd) =>
        TryFromInteger(usd, ceiling: false, out var nanos) ? nanos : (long)Math.Round(usd * PerUsd, MidpointRounding.AwayFromZero);

    /// <summary>
    /// The same as the decimal expressions above, from the amount's integer and scale: every request converts its
    /// reservation and its cost, and a decimal multiplication and rounding each time was most of the arithmetic left in
    /// admitting and settling (PipelineBenchmarks.Budget_AdmitAndSettle_EmbeddedStore). The product of a 64-bit integer
    /// and 10^9 is exact in decimal, so rounding it to an integer is rounding the exact quotient, as here. False for an
    /// amount beyond 64 bits or nanos beyond a long: the decimal expression then, and its overflow. Nothing, or less,
    /// is 0 nanos.
    /// </summary>
    private static bool TryFromInteger(decimal usd, bool ceiling, out long nanos)
    {
        nanos = 0;
        var parts = Usage.DecimalParts.Of(usd);
        if (parts.Negative) return true; // negative (or -0): nothing
        if (!parts.Fits) return false;
        var integer = parts.Integer;
        if (integer == 0) return true;
        var scale = parts.Scale;
        if (scale <= 9)
        {
            if (Math.BigMul(integer, s_pow10[9 - scale], out var product) != 0 || product > long.MaxValue) return false;
            nanos = (long)product;
            return true;
        }
        var divisor = s_pow10[scale - 9];
        var quotient = integer / divisor;
        var remainder = integer - quotient * divisor;
        // Up when anything is left (ceiling), or at least half of the divisor (away from zero, for a positive amount).
        if (ceiling ? remainder != 0 : remainder >= divisor - remainder) quotient++;
        nanos = (long)quotient; // below 2^64 / 10
        return true;
    }

    /// <summary>10^0 to 10^19, every power of ten a ulong holds: the scale of a decimal is 28 at most.</summary>
    private static readonly ulong[] s_pow10 = PowersOfTen();

    private static ulong[] PowersOfTen()
    {
        var powers = new ulong[20];
        powers[0] = 1;
        for (var i = 1; i < powers.Length; i++) powers[i] = powers[i - 1] * 10;
        return powers;
    }

    public static decimal ToUsd(long nanos) => nanos / PerUsd;
}
