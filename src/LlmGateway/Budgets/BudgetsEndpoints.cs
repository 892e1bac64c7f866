using System.Text.Json;
using LlmGateway.Admin;
using LlmGateway.Storage;

namespace LlmGateway.Budgets;

public static class BudgetsEndpoints
{
    /// <summary>Budget admission for the candidate executor, the gate the router reads, and the background refresh.</summary>
    public static IServiceCollection AddBudgets(this IServiceCollection services)
    {
        services.AddSingleton<IKeyBudgetSource, GatewayKeyBudgets>();
        services.AddSingleton<BudgetService>();
        services.AddSingleton<IAttemptAdmission>(sp => sp.GetRequiredService<BudgetService>());
        services.AddSingleton<IBudgetGate>(sp => sp.GetRequiredService<BudgetService>());
        services.AddSingleton<IUnreservedSpend>(sp => sp.GetRequiredService<BudgetService>());
        services.AddSingleton<IBudgetReport>(sp => sp.GetRequiredService<BudgetService>());
        services.AddSingleton<Telemetry.IBudgetMetricsSource, BudgetMetricsSource>();
        services.AddHostedService(sp => sp.GetRequiredService<BudgetService>());
        return services;
    }

    /// <summary>GET /admin/budgets: every limited scope and window with limit, spent, reserved, remaining and window end.</summary>
    public static IEndpointRouteBuilder MapBudgets(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapGet("/budgets", async (BudgetService budgets, IGatewayStore store) =>
        {
            var (statuses, stale) = await budgets.GetStatusAsync().ConfigureAwait(false);
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("object"u8, "list"u8);
                w.WriteString("store"u8, store.Kind);
                // Stale: the store is unreachable, so these are this instance's last known numbers.
                w.WriteBoolean("stale"u8, stale);
                w.WriteStartArray("data"u8);
                foreach (var s in statuses)
                {
                    w.WriteStartObject();
                    w.WriteString("scope"u8, s.Scope);
                    w.WriteString("window"u8, s.Window);
                    w.WriteNumber("limit_usd"u8, s.LimitUsd);
                    w.WriteNumber("spent_usd"u8, s.SpentUsd);
                    w.WriteNumber("reserved_usd"u8, s.ReservedUsd);
                    w.WriteNumber("remaining_usd"u8, s.RemainingUsd);
                    w.WriteString("window_end"u8, s.WindowEnd);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        })
        .WithName("ListBudgets")
        .WithSummary("Every budget scope (global, provider:<name>, key:<id>) per window: limit, spent, reserved, remaining, window end");
        return app;
    }
}
