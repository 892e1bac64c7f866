using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Budgets;

/// <summary>
/// Where the spend limits of gateway keys come from (the budget scope <c>key:&lt;id&gt;</c>, matched
/// against <see cref="Usage.RequestRecord.KeyId"/>): configured keys and those created through /admin/keys.
/// </summary>
public interface IKeyBudgetSource
{
    /// <summary>The key's limits, or null when it has none (no budget scope then).</summary>
    BudgetLimit? Find(string keyId);

    /// <summary>Every key that has a limit, for /admin/budgets and the budget gauges.</summary>
    IEnumerable<KeyValuePair<string, BudgetLimit>> All();

    /// <summary>Re-reads keys that can change while the gateway runs; <paramref name="now"/>: at once, not when next due.</summary>
    ValueTask RefreshAsync(bool now = false) => ValueTask.CompletedTask;
}

/// <summary>Limits of the keys listed under <c>Gateway:Auth:Keys</c> (DailyUsd, MonthlyUsd).</summary>
public sealed class ConfiguredKeyBudgets : IKeyBudgetSource
{
    private readonly Dictionary<string, BudgetLimit> _limits = new(StringComparer.Ordinal);

    public ConfiguredKeyBudgets(IOptions<GatewayOptions> options)
    {
        foreach (var key in options.Value.Auth.Keys)
        {
            if (key.Id.Length > 0 && (key.DailyUsd > 0 || key.MonthlyUsd > 0))
            {
                _limits[key.Id] = new BudgetLimit { DailyUsd = key.DailyUsd, MonthlyUsd = key.MonthlyUsd };
            }
        }
    }

    public BudgetLimit? Find(string keyId) => _limits.GetValueOrDefault(keyId);

    public IEnumerable<KeyValuePair<string, BudgetLimit>> All() => _limits;
}

/// <summary>
/// The configured keys' limits and those of virtual keys (POST /admin/keys), re-read from the key store every
/// few seconds. Admission never waits for this list (a virtual key's limits travel with its identity); it is
/// what /admin/budgets and the budget gauges enumerate, so a key created on any instance shows up there too.
/// </summary>
public sealed class GatewayKeyBudgets(IOptions<GatewayOptions> options, Auth.IKeyStore store, TimeProvider time, ILogger<GatewayKeyBudgets> logger) : IKeyBudgetSource
{
    /// <summary>As long as a revoked key may keep working on another instance (see KeyAuthenticator): no point reading more often.</summary>
    internal static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(5);

    private readonly ConfiguredKeyBudgets _configured = new(options);
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile Dictionary<string, BudgetLimit> _stored = new(StringComparer.Ordinal);
    private long _lastRefresh;

    public BudgetLimit? Find(string keyId) => _configured.Find(keyId) ?? _stored.GetValueOrDefault(keyId);

    public IEnumerable<KeyValuePair<string, BudgetLimit>> All()
    {
        var configured = _configured.All().ToList();
        foreach (var pair in configured) yield return pair;
        foreach (var pair in _stored)
        {
            // A configured key's limits win over a stored key of the same id (POST /admin/keys refuses those anyway).
            if (_configured.Find(pair.Key) is null) yield return pair;
        }
    }

    public async ValueTask RefreshAsync(bool now = false)
    {
        var last = Interlocked.Read(ref _lastRefresh);
        if (!now && last != 0 && time.GetElapsedTime(last) < RefreshInterval) return;
        await _refreshing.WaitAsync().ConfigureAwait(false);
        try
        {
            var stored = new Dictionary<string, BudgetLimit>(StringComparer.Ordinal);
            foreach (var key in await store.ListAsync(CancellationToken.None).ConfigureAwait(false))
            {
                if (key.DailyUsd > 0 || key.MonthlyUsd > 0) stored[key.Id] = new BudgetLimit { DailyUsd = key.DailyUsd, MonthlyUsd = key.MonthlyUsd };
            }
            _stored = stored;
            Interlocked.Exchange(ref _lastRefresh, time.GetTimestamp());
        }
        catch (Storage.StoreUnavailableException e)
        {
            // The last list stays: the numbers are what this instance last saw, like the rest of a stale snapshot.
            logger.LogDebug(e, "Virtual keys' budgets could not be re-read; keeping the last list");
        }
        finally
        {
            _refreshing.Release();
        }
    }
}

/// <summary>
/// Every limited scope and window with limit, spent, reserved and window end: the numbers behind
/// GET /admin/budgets, for the llm_gateway_budget_spent_usd / llm_gateway_budget_limit_usd gauges.
/// </summary>
public interface IBudgetReport
{
    /// <summary>From this instance's view, refreshed every second (no store call: safe in a metrics callback).</summary>
    IReadOnlyList<BudgetStatus> Snapshot();
}
