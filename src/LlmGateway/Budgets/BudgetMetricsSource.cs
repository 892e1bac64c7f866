using LlmGateway.Telemetry;

namespace LlmGateway.Budgets;

/// <summary>Feeds the llm_gateway_budget_spent_usd / _limit_usd gauges from this instance's budget snapshot (no store call per scrape).</summary>
public sealed class BudgetMetricsSource(IBudgetReport report) : IBudgetMetricsSource
{
    public IReadOnlyList<BudgetMetric> GetBudgets()
    {
        var statuses = report.Snapshot();
        var metrics = new BudgetMetric[statuses.Count];
        for (var i = 0; i < statuses.Count; i++)
        {
            var s = statuses[i];
            metrics[i] = new BudgetMetric(s.Scope, s.Window, (double)s.SpentUsd, (double)s.LimitUsd);
        }
        return metrics;
    }
}
