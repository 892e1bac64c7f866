using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LlmGateway.Telemetry;

/// <summary>
/// Exports traces by OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>)
/// is set, and does nothing otherwise: with no listener, the gateway's spans are never even created.
/// The exporter reads every standard <c>OTEL_*</c> setting (protocol, headers, batch delays) from the
/// app's configuration, which holds the environment variables.
/// </summary>
public sealed class TracingSetup : IDisposable
{
    private readonly TracerProvider? _provider;

    public TracingSetup(IConfiguration configuration)
    {
        if (string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]) &&
            string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]))
        {
            return;
        }

        _provider = Sdk.CreateTracerProviderBuilder()
            // The SDK reads OTEL_* from its own IConfiguration (process environment only); hand it the app's,
            // which has the environment too and lets a config file or a test set them.
            .ConfigureServices(services => services.AddSingleton(configuration))
            .ConfigureResource(resource => GatewayResource.Configure(resource, configuration))
            // The server span from ASP.NET Core, ours under it, and the HTTP calls to providers under the attempts.
            .AddSource(GatewayTracing.SourceName)
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation()
            .AddOtlpExporter()
            .Build();
    }

    public bool IsEnabled => _provider is not null;

    /// <summary>Sends the spans still batched; called when the host stops, before anything is torn down.</summary>
    public void Flush() => _provider?.ForceFlush(FlushTimeoutMilliseconds);

    public void Dispose() => _provider?.Dispose();

    private const int FlushTimeoutMilliseconds = 5_000;
}
