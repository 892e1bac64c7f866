using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmGateway.Health;

public static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    public static IServiceCollection AddGatewayHealth(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<ProvidersHealthCheck>("providers", tags: [ReadyTag]);
        return services;
    }

    public static IEndpointRouteBuilder MapGatewayHealth(this IEndpointRouteBuilder app)
    {
        // Liveness runs no checks: the process answers, so it is alive. Readiness runs the tagged ones.
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag), ResponseWriter = WriteAsync });
        return app;
    }

    private static Task WriteAsync(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("status"u8, report.Status.ToString());
            w.WriteStartObject("checks"u8);
            foreach (var (name, entry) in report.Entries)
            {
                w.WriteStartObject(name);
                w.WriteString("status"u8, entry.Status.ToString());
                if (entry.Description is not null) w.WriteString("description"u8, entry.Description);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return http.Response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
    }
}

/// <summary>
/// Ready when at least one provider can be called. A provider with a key (or the built-in mock) counts
/// as soon as its key is present; one that needs no key (a local Ollama) counts only once it has
/// answered a call or a probe and its circuit is not open: an address nobody ever reached is no
/// evidence of a usable provider.
/// </summary>
public sealed class ProvidersHealthCheck(ProviderRegistry providers, ProviderResilienceRegistry resilience) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var usable = 0;
        var reasons = new List<string>();
        foreach (var p in providers.All)
        {
            if (Usable(p) is { } reason) reasons.Add($"{p.Name}: {reason}");
            else usable++;
        }
        return Task.FromResult(usable > 0
            ? HealthCheckResult.Healthy($"{usable} of {providers.All.Count} providers usable")
            : HealthCheckResult.Unhealthy("No provider is usable: " + string.Join("; ", reasons)));
    }

    /// <summary>Null when the provider counts; otherwise why not.</summary>
    private string? Usable(IChatProvider provider)
    {
        if (!provider.IsUsable) return provider.UnusableReason;
        var options = provider.Options;
        if (options.Type == ProviderTypes.Mock || !string.IsNullOrEmpty(options.ApiKeyEnv)) return null;
        if (resilience.Find(provider.Name) is not { } r) return null;
        if (r.Breaker.State == CircuitState.Open) return "its circuit is open";
        var recent = r.Stats.Snapshot(ResilienceDefaults.RecentWindow);
        return recent.LastSuccessAt is not null || recent.LastProbeOk == true
            ? null
            : "it needs no key and has not answered yet (set its ProbeIntervalSeconds to have it checked)";
    }
}
