using LlmGateway.Usage;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmGateway.Telemetry;

public static class TelemetryExtensions
{
    /// <summary>
    /// Metrics (served at /metrics), the request and attempt spans (exported by OTLP when configured) and
    /// the opt-in content log. Runs after AddChatCompletions: the metrics replace its no-op gateway events.
    /// </summary>
    public static IServiceCollection AddTelemetry(this IServiceCollection services)
    {
        services.AddSingleton<PrometheusScraper>();
        services.AddSingleton<MetricsAccess>();
        services.AddSingleton<TracingSetup>();
        // The scraper's meter provider first: the counters' zeros recorded in GatewayMetrics' constructor
        // (every family from the first scrape) would be lost to a provider not yet listening.
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<PrometheusScraper>();
            return ActivatorUtilities.CreateInstance<GatewayMetrics>(sp);
        });
        services.AddSingleton<ContentLog>();
        services.AddSingleton<IRequestObserver>(sp => sp.GetRequiredService<GatewayMetrics>());
        services.AddSingleton<IRequestObserver, RequestSpanObserver>();
        services.Replace(ServiceDescriptor.Singleton<IGatewayEvents>(sp => sp.GetRequiredService<GatewayMetrics>()));
        services.AddHostedService<TelemetryStartup>();
        return services;
    }

    /// <summary>The in-flight gauge and the request span around each chat completion request.</summary>
    public static IApplicationBuilder UseTelemetry(this IApplicationBuilder app) => app.UseMiddleware<RequestTelemetryMiddleware>();

    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", (HttpRequest request, PrometheusScraper scraper, MetricsAccess access) =>
            {
                var level = access.Decide(request);
                if (level == MetricsAccessLevel.Refused)
                {
                    return Results.Text("The key presented for /metrics is neither the metrics key nor the admin key.\n", "text/plain", statusCode: StatusCodes.Status401Unauthorized);
                }
                var text = scraper.Scrape(keySeries: level == MetricsAccessLevel.Full);
                return text is null
                    ? Results.Text("Collecting metrics failed or timed out.\n", "text/plain", statusCode: StatusCodes.Status503ServiceUnavailable)
                    : Results.Bytes(text, PrometheusText.ContentType);
            })
            .WithName("GetMetrics")
            .WithTags("Telemetry")
            .WithSummary("Prometheus metrics (text exposition format 0.0.4); per-key series only with the metrics or admin key as a bearer token")
            .Produces(StatusCodes.Status200OK, contentType: "text/plain");
        return app;
    }
}

/// <summary>Fills the request span from the request's record, the one place its outcome is known.</summary>
public sealed class RequestSpanObserver : IRequestObserver
{
    public void OnRequestCompleted(RequestRecord record) => GatewayTracing.CompleteRequest(record);
}

/// <summary>
/// Builds the meter provider, the gateway's instruments and the tracer provider when the host starts,
/// before the first request, so no measurement is lost to a provider that doesn't exist yet. On a
/// graceful stop, once the server has drained its requests, it sends the last spans while the process
/// still has its network and its time.
/// </summary>
internal sealed class TelemetryStartup(PrometheusScraper scraper, GatewayMetrics metrics, TracingSetup tracing) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        GC.KeepAlive(scraper);
        GC.KeepAlive(metrics);
        GC.KeepAlive(tracing);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        tracing.Flush();
        return Task.CompletedTask;
    }
}
