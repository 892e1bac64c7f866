using System.Collections.Concurrent;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Options;

namespace LlmGateway.Caching;

public static class CacheResults
{
    public const string Hit = "hit";
    public const string Miss = "miss";
    public const string Bypass = "bypass";
    public const string Off = "off";

    /// <summary>The provider a cache hit reports: no upstream was called.</summary>
    public const string Provider = "cache";
}

/// <summary>
/// The exact-match response cache, one step of the request pipeline (chat and embeddings) between routing and execution.
/// <list type="bullet">
/// <item>Only requests whose answer is reproducible are cached (with <c>OnlyDeterministic</c>:
/// temperature 0 or a seed), keyed by <see cref="CacheKey"/>; <c>Cache-Control: no-cache</c> skips
/// the read, <c>no-store</c> the write.</item>
/// <item>Only complete successful answers are stored, and only when the model the request resolved
/// to gave them: a fallback's answer is served to the request that got it, not pinned for
/// <c>TtlSeconds</c> as the primary model's answer.</item>
/// <item>Identical cacheable requests that arrive while the first is still running wait for it
/// instead of calling the provider again (in this process). Requests that can't be cached are never
/// coalesced: two users asking at temperature 1 are owed two answers. When the first fails, each
/// waiter goes on its own; they don't queue behind each other.</item>
/// <item>The store failing is a miss (fail open), counted as a store error.</item>
/// </list>
/// </summary>
public sealed class ResponseCache(IOptions<GatewayOptions> options, IGatewayStore store, IGatewayEvents events, ILogger<ResponseCache> logger)
{
    internal const string KeyPrefix = "cache:";

    private readonly CacheOptions _options = options.Value.Cache;
    private readonly ConcurrentDictionary<string, InFlight> _inFlight = new(StringComparer.Ordinal);

    private int _waiting;

    internal int MaxEntryBytes => _options.MaxEntryBytes;

    /// <summary>Requests waiting right now for an identical one in flight (diagnostics, and how tests see coalescing happen).</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Decides hit, miss, bypass or off, and sets it on the record. A hit is the answer: the pipeline returns it (a stream request gets it replayed as chunks, <see cref="CacheReplay"/>).</summary>
    public async ValueTask<CacheLookup> LookupAsync(GatewayContext context)
    {
        var lookup = await FindAsync(context).ConfigureAwait(false);
        var record = context.Record;
        record.CacheResult = lookup.Result;
        events.CacheLookup(lookup.Result);
        if (lookup.Hit is { } hit)
        {
            record.Model = hit.Model;
            record.Provider = CacheResults.Provider;
            record.Usage = hit.Usage;
        }
        return lookup;
    }

    private async ValueTask<CacheLookup> FindAsync(GatewayContext context)
    {
        if (!_options.Enabled) return CacheLookup.Off;
        var request = context.Request;
        // A request a candidate may take in the client's own dialect is answered in that dialect, which the
        // cache (chat answers, replayed to any dialect) doesn't hold; and fields only that dialect knows
        // (top_k, thinking…) aren't in the key. Such requests neither read nor write it.
        if (request.Native is { } native && TakesNatively(context, native.Dialect)) return CacheLookup.Bypass;
        if (_options.OnlyDeterministic && !request.IsReproducible) return CacheLookup.Bypass;
        var (noCache, noStore) = (context.Hints.NoCache, context.Hints.NoStore);
        if (noCache && noStore) return CacheLookup.Bypass;

        var resolved = context.Route!.Candidates[0];
        // Per gateway key unless the operator shares the cache: the scope is part of the hash, so identical
        // requests of two keys neither read each other's entries nor wait for each other's calls.
        var scope = _options.SharedAcrossKeys ? null : context.Record.KeyId;
        var key = KeyPrefix + CacheKey.Compute(request, resolved, scope);
        if (noCache) return new CacheLookup(this, key, resolved.ModelName, CacheResults.Bypass, write: true);

        InFlight? leading = null;
        try
        {
            var running = _inFlight.TryGetValue(key, out var existing) ? existing : null;
            if (running is null && !noStore)
            {
                var mine = new InFlight();
                running = _inFlight.GetOrAdd(key, mine);
                if (running == mine)
                {
                    leading = mine;
                    running = null;
                }
            }
            if (running is not null)
            {
                CachedAnswer? shared;
                Interlocked.Increment(ref _waiting);
                try
                {
                    shared = await running.Answer.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _waiting);
                }
                if (shared is not null) return CacheLookup.ForHit(shared);
                // The first one failed: this one goes on its own, and may store what it gets.
                return new CacheLookup(this, key, resolved.ModelName, CacheResults.Miss, write: !noStore);
            }

            var stored = await ReadAsync(key).ConfigureAwait(false);
            if (stored is not null)
            {
                if (leading is not null) Finish(key, leading, stored);
                return CacheLookup.ForHit(stored);
            }
            return new CacheLookup(this, key, resolved.ModelName, CacheResults.Miss, write: !noStore, leading);
        }
        catch
        {
            // Never leave others waiting on a request that won't answer them.
            if (leading is not null) Finish(key, leading, null);
            throw;
        }
    }

    private static bool TakesNatively(GatewayContext context, string dialect)
    {
        foreach (var c in context.Route!.Candidates)
        {
            if (c.Provider.NativeDialect == dialect) return true;
        }
        return false;
    }

    private async ValueTask<CachedAnswer?> ReadAsync(string key)
    {
        if (!store.IsAvailable)
        {
            events.StoreError(StoreOperations.CacheGet);
            return null;
        }
        try
        {
            return CachedAnswer.Decode(await store.GetAsync(key).ConfigureAwait(false));
        }
        catch (StoreUnavailableException)
        {
            return null;
        }
    }

    /// <summary>
    /// After the answer went out: hands a complete successful answer to the requests waiting for it,
    /// and stores it. The caller's <see cref="CacheLookup"/> disposal releases waiters either way.
    /// </summary>
    public async ValueTask CompleteAsync(CacheLookup lookup, GatewayContext context, Execution execution)
    {
        if (!lookup.Write && lookup.Leading is null) return;
        var record = context.Record;
        if (record.Outcome != RequestOutcomes.Ok || record.Status != StatusCodes.Status200OK || execution.Candidate is not { } candidate) return;

        var body = execution.Response!.Stream is null ? execution.Response.Body : lookup.Capture?.Assemble();
        if (body is not { Length: > 0 } answerBody) return;

        // Encoded once: the copy that is stored is also what waiters get (the provider's buffer is not ours to keep).
        var encoded = new CachedAnswer(candidate.ModelName, candidate.Provider.Name, record.Usage, answerBody).Encode();
        if (lookup.Leading is { } leading) Finish(lookup.Key!, leading, CachedAnswer.Decode(encoded), remove: false);

        if (!lookup.Write || !string.Equals(candidate.ModelName, lookup.ResolvedModel, StringComparison.Ordinal)) return;
        if (answerBody.Length > _options.MaxEntryBytes) return;
        if (!store.IsAvailable)
        {
            events.StoreError(StoreOperations.CacheSet);
            return;
        }
        try
        {
            await store.SetAsync(lookup.Key!, encoded, TimeSpan.FromSeconds(_options.TtlSeconds)).ConfigureAwait(false);
        }
        catch (StoreUnavailableException e)
        {
            logger.LogDebug("Answer not cached: {Reason}", e.Message);
        }
    }

    /// <summary>DELETE /admin/cache: every entry, across every instance sharing the store.</summary>
    public Task<long> ClearAsync() => store.DeleteByPrefixAsync(KeyPrefix);

    internal void Finish(string key, InFlight inFlight, CachedAnswer? answer, bool remove = true)
    {
        inFlight.Answer.TrySetResult(answer);
        if (remove) _inFlight.TryRemove(new KeyValuePair<string, InFlight>(key, inFlight));
    }

    /// <summary>The <c>no-cache</c> and <c>no-store</c> directives of Cache-Control header values (an ingress turns them into <see cref="RequestHints"/>).</summary>
    public static (bool NoCache, bool NoStore) ReadCacheControl(StringValues values)
    {
        bool noCache = false, noStore = false;
        foreach (var value in values)
        {
            if (value is null) continue;
            foreach (var range in value.AsSpan().Split(','))
            {
                var directive = value.AsSpan(range).Trim();
                if (directive.Equals("no-cache", StringComparison.OrdinalIgnoreCase)) noCache = true;
                else if (directive.Equals("no-store", StringComparison.OrdinalIgnoreCase)) noStore = true;
            }
        }
        return (noCache, noStore);
    }

    internal sealed class InFlight
    {
        public TaskCompletionSource<CachedAnswer?> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>
/// The cache's verdict for one request. Disposing it (when the request is done) releases any
/// identical requests still waiting on this one.
/// </summary>
public sealed class CacheLookup : IAsyncDisposable
{
    public static readonly CacheLookup Off = new(null, null, null, CacheResults.Off, write: false);
    public static readonly CacheLookup Bypass = new(null, null, null, CacheResults.Bypass, write: false);

    private readonly ResponseCache? _cache;

    internal CacheLookup(ResponseCache? cache, string? key, string? resolvedModel, string result, bool write, ResponseCache.InFlight? leading = null)
    {
        _cache = cache;
        Key = key;
        ResolvedModel = resolvedModel;
        Result = result;
        Write = write;
        Leading = leading;
    }

    internal static CacheLookup ForHit(CachedAnswer answer) => new(null, null, null, CacheResults.Hit, write: false) { Hit = answer };

    /// <summary>hit, miss, bypass or off (the x-gateway-cache header).</summary>
    public string Result { get; }

    /// <summary>The answer, on a hit.</summary>
    public CachedAnswer? Hit { get; private init; }

    internal string? Key { get; }
    internal string? ResolvedModel { get; }

    /// <summary>A complete answer to this request may be stored.</summary>
    internal bool Write { get; }

    /// <summary>Set when identical requests may be waiting for this one's answer.</summary>
    internal ResponseCache.InFlight? Leading { get; }

    internal CapturingStream? Capture { get; private set; }

    /// <summary>The stream to answer from: the upstream's own, or a copy-keeping wrapper when the answer may be cached.</summary>
    public ChatStream Observe(ChatStream stream, Execution execution)
    {
        if (!Write && Leading is null) return stream;
        // Chunks carry per-chunk JSON around each delta: allow them several times the entry size.
        Capture = CapturingStream.Over(stream, execution, 4L * _cache!.MaxEntryBytes + 64 * 1024);
        return Capture;
    }

    public ValueTask DisposeAsync()
    {
        if (Leading is not null) _cache!.Finish(Key!, Leading, null);
        return ValueTask.CompletedTask;
    }
}
