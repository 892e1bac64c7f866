using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Pipeline;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The gateway's own services, built by its own Program (through <see cref="WebApplicationFactory{TEntryPoint}"/>:
/// no socket, every registration the shipped gateway makes), with the configuration bench/run.sh gives
/// the gateway (one OpenAI provider, the bench models, a global budget so that reserve and settle run, with
/// the shipped alert thresholds, the cache on, the embedded store). The hosted services run (metrics listener, ledger writer, budget
/// refresh): each benchmark calls one step of the request path on the real instances. The per-request
/// log goes through the production JSON formatter at Information, as in production, into a buffer cleared
/// each time (<see cref="FormatOnlySink"/>): what is measured is the formatting, not a terminal, and nothing
/// reaches stdout. <see cref="StartAsync"/> fails unless a request's line is formatted there.
/// </summary>
public sealed class GatewayServices : WebApplicationFactory<global::Program>
{
    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    public IEnumerable<T> GetAll<T>() => Services.GetServices<T>();

    private bool _fakeUpstream;
    private readonly FormatOnlySink _logLines = new();
    private Serilog.Core.Logger? _logger;

    /// <summary>
    /// The app's request pipeline as the host built it (Program's middleware, routing, the endpoints), below the host's
    /// own startup filters: what a request runs between Kestrel's hosting layer and the handler.
    /// </summary>
    public RequestDelegate AppPipeline { get; private set; } = null!;

    /// <param name="fakeUpstream">
    /// The openai provider answers from memory (<see cref="FakeUpstream"/>) instead of over HTTP, so a benchmark can run
    /// whole requests through the pipeline without a socket.
    /// </param>
    public static Task<GatewayServices> StartAsync(bool fakeUpstream = false)
    {
        Environment.SetEnvironmentVariable("BENCH_UPSTREAM_KEY", "bench-dummy-upstream-key");
        var services = new GatewayServices { _fakeUpstream = fakeUpstream };
        _ = services.Services; // builds and starts the host
        services.CheckRequestLineFormattedOnly();
        return Task.FromResult(services);
    }

    /// <summary>
    /// Fails unless the per-request line goes where the rows say: straight into Serilog, as in production
    /// (<see cref="LlmGateway.Usage.RequestLog.WritesToSerilog"/>), whose root is this logger, formatted by
    /// <see cref="FormatOnlySink"/> (one line moves its count) and not written to stdout.
    /// </summary>
    private void CheckRequestLineFormattedOnly()
    {
        if (!ReferenceEquals(Get<GatewaySerilog>().Root, _logger)) throw new InvalidOperationException("the request line's Serilog root is not the benchmark's discarding logger");
        var log = GetAll<IRequestObserver>().OfType<RequestLog>().Single();
        if (!log.WritesToSerilog) throw new InvalidOperationException("the request line does not go straight into Serilog, as the shipped gateway's does");
        var before = _logLines.Formatted;
        log.OnRequestCompleted(PipelineBenchmarks.CompletedRecord("req_bench_log_check"));
        if (_logLines.Formatted == before) throw new InvalidOperationException("the request line was not formatted by the discarding sink");
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.ConfigureAppConfiguration((_, config) =>
        {
            config.Sources.Clear();
            config.AddInMemoryCollection(Config);
        });
        builder.ConfigureTestServices(services =>
        {
            // Captures the pipeline without adding a frame to it: the middleware returns the next one as itself.
            services.AddTransient<IStartupFilter>(_ => new PipelineCapture(this));
            var logger = _logger = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Sink(_logLines).CreateLogger();
            services.AddLogging(logging =>
            {
                logging.ClearProviders();
                logging.AddSerilog(logger, dispose: true);
            });
            // The request line is written straight into the Serilog root the app registers (RequestLog says why), not
            // through the providers: left in place, every request's line went to stdout through the app's writer thread,
            // which competed with the rows. That root is this logger too; the app's own (stdout) is let go, its writer
            // thread with it.
            for (var i = services.Count - 1; i >= 0; i--)
            {
                if (services[i].ServiceType != typeof(GatewaySerilog)) continue;
                if ((services[i].ImplementationInstance as GatewaySerilog)?.Root is IDisposable appRoot) appRoot.Dispose();
                services.RemoveAt(i);
            }
            services.AddSingleton(new GatewaySerilog(logger));
            if (_fakeUpstream)
            {
                for (var i = services.Count - 1; i >= 0; i--)
                {
                    if (services[i].ServiceType == typeof(IChatProviderFactory) && services[i].ImplementationType == typeof(OpenAiProviderFactory)) services.RemoveAt(i);
                }
                services.AddSingleton<IChatProviderFactory, FakeUpstream.Factory>();
            }
        });
    }

    private sealed class PipelineCapture(GatewayServices owner) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(pipeline => owner.AppPipeline = pipeline);
            next(app);
        };
    }

    /// <summary>bench/run.sh's gateway.json, flattened.</summary>
    private static readonly Dictionary<string, string?> Config = new()
    {
        ["Gateway:Providers:openai:Type"] = "openai",
        ["Gateway:Providers:openai:BaseUrl"] = "http://127.0.0.1:9/v1",
        ["Gateway:Providers:openai:ApiKeyEnv"] = "BENCH_UPSTREAM_KEY",
        ["Gateway:Providers:openai:MaxConcurrency"] = "4096",
        ["Gateway:Models:bench-model:Provider"] = "openai",
        ["Gateway:Models:bench-model:UpstreamModel"] = "bench-model",
        ["Gateway:Models:bench-model:Priority"] = "1",
        ["Gateway:Models:bench-model:CostPer1kInput"] = "0.00015",
        ["Gateway:Models:bench-model:CostPer1kOutput"] = "0.0006",
        ["Gateway:Models:bench-model:ContextWindow"] = "128000",
        ["Gateway:Models:bench-model:MaxOutputTokens"] = "4096",
        ["Gateway:Models:bench-embed:Provider"] = "openai",
        ["Gateway:Models:bench-embed:UpstreamModel"] = "bench-embed",
        ["Gateway:Models:bench-embed:Priority"] = "1",
        ["Gateway:Models:bench-embed:CostPer1kInput"] = "0.00002",
        ["Gateway:Models:bench-embed:ContextWindow"] = "8191",
        ["Gateway:Models:bench-embed:MaxOutputTokens"] = "0",
        ["Gateway:Models:bench-embed:Capabilities:0"] = "embeddings",
        ["Gateway:Budgets:Global:DailyUsd"] = "1000000",
        ["Gateway:Budgets:Global:MonthlyUsd"] = "10000000",
        // The shipped appsettings.json's alert thresholds, which bench/run.sh's gateway loads under its gateway.json:
        // every settle checks them.
        ["Gateway:Budgets:AlertThresholds:0"] = "0.5",
        ["Gateway:Budgets:AlertThresholds:1"] = "0.8",
        ["Gateway:Budgets:AlertThresholds:2"] = "1.0",
        ["Gateway:Cache:Enabled"] = "true",
        ["Gateway:Cache:OnlyDeterministic"] = "true",
        ["Serilog:MinimumLevel:Default"] = "Information",
    };
}

/// <summary>
/// The production log line's formatting (<see cref="LlmGateway.Telemetry.JsonLogLineFormatter"/>: Serilog's JSON,
/// message rendered, as UTF-8) into a buffer that is cleared each time: the CPU of the line without a terminal or
/// a background writer.
/// </summary>
internal sealed class FormatOnlySink : ILogEventSink
{
    private readonly LlmGateway.Telemetry.JsonLogLineFormatter _formatter = new();
    private readonly LlmGateway.Telemetry.LogLineBuffer _buffer = new(16 * 1024);
    private long _formatted;

    /// <summary>Lines formatted so far (for the setups that check the lines come here).</summary>
    public long Formatted => Interlocked.Read(ref _formatted);

    public void Emit(LogEvent logEvent)
    {
        lock (_buffer)
        {
            _buffer.Clear();
            _formatter.Format(logEvent, _buffer);
            _formatted++;
        }
    }
}
