using Serilog;

namespace LlmGateway.Telemetry;

public static class LoggingExtensions
{
    /// <summary>
    /// Serilog, as JSON lines on stdout, levels from the <c>Serilog</c> configuration section, as a provider of
    /// Microsoft.Extensions.Logging. The logger is flushed when the host disposes it (dispose: true), so
    /// shutdown loses nothing queued.
    /// <para>
    /// Not Serilog.AspNetCore's <c>services.AddSerilog</c>: that replaces the logger factory, so logging's own
    /// filter rules and every other registered <c>ILoggerProvider</c> (the tests' log captures, an operator's
    /// extra provider) are bypassed unless routed through Serilog by hand; as a provider, Serilog takes part in
    /// the host's logging like any other.
    /// </para>
    /// <para>
    /// The line per request is not <c>UseSerilogRequestLogging</c> but the request recorder
    /// (<see cref="Usage.RequestLog"/>), on purpose: its fields (model and provider actually used, tokens,
    /// cost, attempts, fallbacks, cache, outcome, time to first token, overhead) exist only in the pipeline's
    /// <c>RequestRecord</c>, which also covers requests without an HTTP exchange of their own (each item of a
    /// batch). Serilog's middleware would log a second line per request, or need every field copied into the
    /// diagnostic context from inside the pipeline, which would then depend on logging. ASP.NET Core's own
    /// per-request logs stay at Warning. Measured (bench/LlmGateway.Benchmarks, <c>RequestLogBenchmarks</c>,
    /// the same fields and JSON formatter both ways, 2026-12-02): the recorder's line 2.7 µs and 3.7 KB
    /// allocated per request; Serilog.AspNetCore's <c>RequestLoggingMiddleware</c> with the fields set in its
    /// diagnostic context 5.0 µs and 6.9 KB, so about twice the cost for the same line.
    /// </para>
    /// </summary>
    public static WebApplicationBuilder AddGatewayLogging(this WebApplicationBuilder builder)
    {
        var logger = new LoggerConfiguration()
            .ReadFrom.Configuration(builder.Configuration)
            .Enrich.FromLogContext()
            // A request only enqueues its event; one background thread writes the lines in batches (see
            // BatchedJsonLinesSink for why not WriteTo.Async(Console)). Under overload it drops lines rather
            // than slowing requests down (the usage ledger, not the log, is the record of what was spent).
            // The lines are Serilog's JsonFormatter(renderMessage: true) layout, byte for byte, but written as
            // UTF-8 by JsonLogLineFormatter straight into the writer's buffer (anything it does not render
            // itself goes to Serilog's formatter). Measured 2026-12-02 (2 cores at load average 7-19, so ratios
            // and allocations are the solid numbers):
            // - RequestLogBenchmarks, Writer category, the request line as logged in production (1.1 KB):
            //   Serilog's formatter into a StringWriter then encoded 1.88 us and 680 B per line, JsonLogLineFormatter
            //   1.26 us and 0 B (ratio 0.68; 0.57 in another run).
            // - perf of the gateway at 16 connections (the bench's miss path, warm; bench/diagnose.sh perf is the same
            //   view): the log-writer thread 8.1 % of the gateway's samples before, 6.2 % after. Less than the
            //   micro-benchmark's gain: in production the writer touches each queued event's ~30 objects once,
            //   cold in cache, and those misses stay whatever the formatter does.
            .WriteTo.Sink(new BatchedJsonLinesSink(new JsonLogLineFormatter(), Console.OpenStandardOutput()))
            .CreateLogger();
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(logger, dispose: true);
        builder.Services.AddSingleton(new GatewaySerilog(logger));
        return builder;
    }
}
