using LlmGateway.Configuration;
using LlmGateway.Health;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace LlmGateway.Storage;

public static class StorageExtensions
{
    public const string RedisConnectionName = "Redis";

    /// <summary>
    /// The store: Redis when <c>ConnectionStrings:Redis</c> is set (behind timeouts and a breaker),
    /// else the embedded in-memory one. Readiness reports its state.
    /// </summary>
    public static IServiceCollection AddStorage(this IServiceCollection services)
    {
        services.AddSingleton(new KnownLabelValues(GatewayMetrics.StoreErrorsInstrument, "operation", StoreOperations.All));
        services.AddSingleton<IGatewayStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<GatewayOptions>>().Value.Store;
            var connectionString = sp.GetRequiredService<IConfiguration>().GetConnectionString(RedisConnectionName);
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                return new MemoryStore(options, sp.GetRequiredService<TimeProvider>());
            }
            return new GuardedStore(new RedisStore(connectionString, options), options,
                sp.GetRequiredService<IGatewayEvents>(), sp.GetRequiredService<ILogger<GuardedStore>>());
        });
        services.AddHealthChecks().AddCheck<StoreHealthCheck>("store", tags: [HealthEndpoints.ReadyTag]);
        return services;
    }
}

/// <summary>
/// Readiness of the store. A Redis that can't be reached makes the gateway Degraded, not Unhealthy:
/// it still serves (cache skipped, ledger buffered, budgets open), so taking every instance out of
/// the load balancer would turn a Redis outage into a full one. With <c>Budgets:FailMode=closed</c>
/// and budgets configured, requests are refused without the store, so then it is Unhealthy.
/// </summary>
public sealed class StoreHealthCheck(IGatewayStore store, IOptions<GatewayOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (store.Kind == "memory") return HealthCheckResult.Healthy("embedded in-memory store");
        try
        {
            await store.PingAsync().ConfigureAwait(false);
            return HealthCheckResult.Healthy("redis reachable");
        }
        catch (StoreUnavailableException e)
        {
            var budgets = options.Value.Budgets;
            var closed = budgets.FailMode == "closed" && HasBudgets(options.Value);
            var description = $"redis unreachable ({e.Message}); " + (closed
                ? "budgeted requests are refused (Budgets:FailMode=closed)"
                : "serving without it: cache skipped, budgets open, ledger buffered in memory");
            return closed ? HealthCheckResult.Unhealthy(description) : HealthCheckResult.Degraded(description);
        }
    }

    private static bool HasBudgets(GatewayOptions o) =>
        o.Budgets.Global.DailyUsd > 0 || o.Budgets.Global.MonthlyUsd > 0 || o.Budgets.Providers.Count > 0 ||
        o.Auth.Keys.Exists(k => k.DailyUsd > 0 || k.MonthlyUsd > 0);
}
