using System.Runtime.ExceptionServices;
using LlmGateway.Configuration;
using LlmGateway.Usage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

public static class TelemetryExtensions
{
    /// <summary>
    /// Metrics (served at /metrics), the request and attempt spans (exported by OTLP when configured) and
    /// the opt-in content log. Runs after AddChatCompletions: the metrics replace its no-op gateway events.
    /// </summary>
    public static IServiceCollection AddTelemetry(this IServiceCollection services)
    {
        services.AddSingleton<MetricsExposure>();
        services.AddSingleton<MetricsAccess>();
        services.AddSingleton<TracingSetup>();
        // No Activity per request for logging's sake: see HostingLogGate.
        services.AddSingleton<HostingLogGate>();
        services.AddSingleton<IPostConfigureOptions<LoggerFilterOptions>, HostingLogGate.Rules>();
        // The meter providers first: the counters' zeros recorded in GatewayMetrics' constructor
        // (every family from the first scrape) would be lost to a provider not yet listening.
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<MetricsExposure>();
            return ActivatorUtilities.CreateInstance<GatewayMetrics>(sp);
        });
        services.AddSingleton<ContentLog>();
        services.AddSingleton<IRequestObserver>(sp => sp.GetRequiredService<GatewayMetrics>());
        services.AddSingleton<IRequestObserver, RequestSpanObserver>();
        services.Replace(ServiceDescriptor.Singleton<IGatewayEvents>(sp => sp.GetRequiredService<GatewayMetrics>()));
        services.AddHostedService<TelemetryStartup>();
        return services;
    }

    /// <summary>
    /// The in-flight gauge and the request span around each request to a marked endpoint, in front of
    /// <paramref name="next"/>; every other request goes to <paramref name="unmarked"/>, and the failures of the marked
    /// ones to <paramref name="handleFailure"/> (see <see cref="RequestTelemetryMiddleware"/>).
    /// </summary>
    internal static RequestDelegate RequestTelemetry(this IApplicationBuilder app, RequestDelegate next, RequestDelegate unmarked, Func<HttpContext, ExceptionDispatchInfo, Task> handleFailure)
    {
        var services = app.ApplicationServices;
        return new RequestTelemetryMiddleware(next, unmarked, handleFailure, services.GetRequiredService<GatewayMetrics>(),
            services.GetRequiredService<ContentLog>(), services.GetRequiredService<IOptions<GatewayOptions>>()).InvokeAsync;
    }

    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder app)
    {
        var exposure = app.ServiceProvider.GetRequiredService<MetricsExposure>();
        app.MapGet("/metrics", exposure.ScrapeAsync)
            .WithName("GetMetrics")
            .WithTags("Telemetry")
            .WithSummary("Prometheus metrics (text format 0.0.4, or OpenMetrics when the Accept header asks for it); per-key series only with the metrics or admin key as a bearer token")
            .WithMetadata(new ProducesResponseTypeMetadata(StatusCodes.Status200OK, null, ["text/plain", "application/openmetrics-text"]));
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
/// before the first request, so no measurement is lost to a provider that doesn't exist yet. Once every
/// hosted service has started (the server too), closes the <see cref="HostingLogGate"/>. On a
/// graceful stop, once the server has drained its requests, it sends the last spans while the process
/// still has its network and its time.
/// </summary>
internal sealed class TelemetryStartup(MetricsExposure exposure, GatewayMetrics metrics, TracingSetup tracing, HostingLogGate hostingLog, ILoggerFactory loggers) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        GC.KeepAlive(exposure);
        GC.KeepAlive(metrics);
        GC.KeepAlive(tracing);
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        hostingLog.CloseUnlessWanted(loggers);
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        tracing.Flush();
        return Task.CompletedTask;
    }
}
