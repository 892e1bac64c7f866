using Serilog;
using Serilog.Formatting.Json;

namespace LlmGateway.Telemetry;

public static class LoggingExtensions
{
    /// <summary>
    /// Serilog, as JSON lines on stdout, levels from the <c>Serilog</c> configuration section.
    /// ASP.NET Core's own per-request logs stay at Warning: the gateway writes one line per request itself.
    /// The logger is flushed when the host disposes it (dispose: true), so shutdown loses nothing queued.
    /// </summary>
    public static WebApplicationBuilder AddGatewayLogging(this WebApplicationBuilder builder)
    {
        var logger = new LoggerConfiguration()
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            // Console writes are synchronous and serialized; a background writer keeps them off the
            // request path. Under overload it drops lines rather than slowing requests down (the
            // usage ledger, not the log, is the record of what was spent).
            .WriteTo.Async(a => a.Console(new JsonFormatter(renderMessage: true)), bufferSize: 50_000, blockWhenFull: false)
            .CreateLogger();
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(logger, dispose: true);
        return builder;
    }
}
