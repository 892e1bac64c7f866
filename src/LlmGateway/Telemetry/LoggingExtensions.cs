using Serilog;
using Serilog.Formatting.Json;

namespace LlmGateway.Telemetry;

public static class LoggingExtensions
{
    /// <summary>
    /// Serilog, as JSON lines on stdout, levels from the <c>Serilog</c> configuration section.
    /// ASP.NET Core's own per-request logs stay at Warning: the gateway writes one line per request itself.
    /// </summary>
    public static WebApplicationBuilder AddGatewayLogging(this WebApplicationBuilder builder)
    {
        var logger = new LoggerConfiguration()
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            .WriteTo.Console(new JsonFormatter(renderMessage: true))
            .CreateLogger();
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(logger, dispose: true);
        return builder;
    }
}
