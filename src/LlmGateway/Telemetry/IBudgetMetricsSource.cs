namespace LlmGateway.Telemetry;

/// <summary>
/// One budget as the <c>llm_gateway_budget_spent_usd</c> and <c>llm_gateway_budget_limit_usd</c> gauges
/// report it. <see cref="Scope"/> is <c>global</c>, <c>provider:&lt;name&gt;</c> or <c>key:&lt;id&gt;</c>;
/// <see cref="Window"/> is <c>daily</c> or <c>monthly</c>. A limit of 0 means no limit.
/// </summary>
public readonly record struct BudgetMetric(string Scope, string Window, double SpentUsd, double LimitUsd);

/// <summary>
/// Where the budget gauges read from, when budgets are registered. Called on every scrape (once per
/// gauge): return the last known state without a round trip to the store.
/// </summary>
public interface IBudgetMetricsSource
{
    IReadOnlyList<BudgetMetric> GetBudgets();
}
