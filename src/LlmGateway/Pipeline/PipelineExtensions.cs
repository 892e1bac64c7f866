using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmGateway.Pipeline;

public static class PipelineExtensions
{
    /// <summary>The pipeline every ingress runs, and the observers of the record it leaves of each request.</summary>
    public static IServiceCollection AddGatewayPipeline(this IServiceCollection services)
    {
        services.AddSingleton<RequestRecorder>();
        services.AddSingleton<IRequestObserver, RequestLog>();
        services.AddSingleton<GatewayPipeline>();
        // Capabilities registered later replace this: metrics come with the telemetry folder.
        services.TryAddSingleton<IGatewayEvents, NullGatewayEvents>();
        return services;
    }
}
