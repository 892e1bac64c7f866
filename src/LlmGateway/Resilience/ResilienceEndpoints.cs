using LlmGateway.Admin;
using LlmGateway.Http;

namespace LlmGateway.Resilience;

public static class ResilienceEndpoints
{
    /// <summary>Per-provider retries, circuits, limits and probes, and the executor that uses them.</summary>
    public static IServiceCollection AddResilience(this IServiceCollection services)
    {
        services.AddSingleton<ProviderResilienceRegistry>();
        services.AddSingleton<IProviderHealth>(sp => sp.GetRequiredService<ProviderResilienceRegistry>());
        services.AddSingleton<Telemetry.IProviderHealthSource>(sp => sp.GetRequiredService<ProviderResilienceRegistry>());
        services.AddSingleton<CandidateExecutor>();
        services.AddSingleton<IProviderProbe, OpenAiModelsProbe>();
        services.AddHostedService<ProviderProber>();
        return services;
    }

    /// <summary><c>GET /admin/providers</c> and <c>POST /admin/providers/{name}/reset</c>.</summary>
    public static IEndpointRouteBuilder MapResilience(this IEndpointRouteBuilder app)
    {
        var admin = app.MapAdminGroup();
        admin.MapGet("/providers", (ProviderResilienceRegistry providers) =>
        {
            var views = new List<ProviderStatusView>(providers.All.Count);
            foreach (var p in providers.All) views.Add(View(p));
            return Results.Json(new ProviderListView("list", views), ResilienceJsonContext.Readable.ProviderListView);
        })
        .WithName("ListProviders")
        .WithSummary("Each provider's status, circuit, last error, recent latency and error rate, and the same per deployment (upstream model) with its cooldown");

        admin.MapPost("/providers/{name}/reset", (string name, ProviderResilienceRegistry providers) =>
        {
            if (providers.Find(name) is not { } provider)
            {
                return ApiError.NotFound($"No provider named '{Truncate(name)}' is configured.").ToResult();
            }
            provider.Reset();
            return Results.Json(View(provider), ResilienceJsonContext.Readable.ProviderStatusView);
        })
        .WithName("ResetProvider")
        .WithSummary("Close the provider's circuit and its deployments', end their cooldowns, forget recent samples");
        return app;
    }

    private static ProviderStatusView View(ProviderResilience p) => ProviderViews.For(p);

    private static string Truncate(string s) => s.Length <= 100 ? s : s[..100] + "…";
}
