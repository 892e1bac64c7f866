using LlmGateway.Configuration;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.PassThrough;

public static class PassThroughEndpoints
{
    public static IServiceCollection AddPassThrough(this IServiceCollection services)
    {
        // Direct forwarding only: no YARP routes, clusters or session affinity (see the project file's
        // System.IO.Hashing prune: HashCookie affinity must never be configured).
        services.AddHttpForwarder();
        services.AddSingleton<PassThroughHandler>();
        return services;
    }

    /// <summary>
    /// Every /v1 path no explicit endpoint maps goes to the pass-through provider. The catch-all has a
    /// later Order than the explicit routes, so /v1/chat/completions, /v1/models and the rest keep their
    /// handlers whatever order they are mapped in; the fallback 404 comes after it. Not mapped at all
    /// while pass-through is off, so those paths keep the 404.
    /// </summary>
    public static IEndpointRouteBuilder MapPassThrough(this IEndpointRouteBuilder app)
    {
        if (!app.ServiceProvider.GetRequiredService<IOptions<GatewayOptions>>().Value.PassThrough.Enabled) return app;
        app.Map("/v1/{**path}", (HttpContext http, PassThroughHandler handler) => handler.HandleAsync(http))
            .WithOrder(1)
            .WithRequestTelemetry()
            .ExcludeFromDescription();
        return app;
    }
}
