using System.Text.Json;
using LlmGateway.Providers;
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

/// <summary>Ready when at least one provider is usable (has what it needs to be called).</summary>
public sealed class ProvidersHealthCheck(ProviderRegistry providers) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var usable = providers.All.Count(p => p.IsUsable);
        return Task.FromResult(usable > 0
            ? HealthCheckResult.Healthy($"{usable} of {providers.All.Count} providers usable")
            : HealthCheckResult.Unhealthy("No provider is usable: " + string.Join("; ", providers.All.Select(p => $"{p.Name}: {p.UnusableReason}"))));
    }
}
