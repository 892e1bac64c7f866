using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Budgets;

/// <summary>
/// Where the spend limits of gateway keys come from (the budget scope <c>key:&lt;id&gt;</c>, matched
/// against <see cref="Usage.RequestRecord.KeyId"/>). Keys from configuration for now; the keys
/// capability replaces this registration with one that also knows keys created through /admin/keys.
/// </summary>
public interface IKeyBudgetSource
{
    /// <summary>The key's limits, or null when it has none (no budget scope then).</summary>
    BudgetLimit? Find(string keyId);

    /// <summary>Every key that has a limit, for /admin/budgets and the budget gauges.</summary>
    IEnumerable<KeyValuePair<string, BudgetLimit>> All();
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
/// Every limited scope and window with limit, spent, reserved and window end: the numbers behind
/// GET /admin/budgets, for the llm_gateway_budget_spent_usd / llm_gateway_budget_limit_usd gauges.
/// </summary>
public interface IBudgetReport
{
    /// <summary>From this instance's view, refreshed every second (no store call: safe in a metrics callback).</summary>
    IReadOnlyList<BudgetStatus> Snapshot();
}
