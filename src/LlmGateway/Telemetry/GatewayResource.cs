using OpenTelemetry.Resources;

namespace LlmGateway.Telemetry;

/// <summary>
/// The OpenTelemetry resource the gateway's spans and metrics describe: <c>service.name</c> from
/// <c>OTEL_SERVICE_NAME</c> (else llm-gateway), the build's version, and an instance id per process.
/// On /metrics it is the <c>target_info</c> series.
/// </summary>
public static class GatewayResource
{
    public const string DefaultServiceName = "llm-gateway";

    public static ResourceBuilder Configure(ResourceBuilder resource, IConfiguration configuration)
    {
        var serviceName = configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : DefaultServiceName;
        return resource.AddService(serviceName, serviceVersion: typeof(GatewayResource).Assembly.GetName().Version?.ToString());
    }
}
