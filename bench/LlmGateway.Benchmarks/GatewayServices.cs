using LlmGateway.Admin;
using LlmGateway.Auth;
using LlmGateway.Batches;
using LlmGateway.Budgets;
using LlmGateway.Caching;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Health;
using LlmGateway.Http;
using LlmGateway.PassThrough;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting.Json;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The gateway's own services, registered as Program.cs registers them, with the configuration bench/run.sh
/// gives the gateway (one OpenAI provider, the bench models, a global budget so that reserve and settle run,
/// the cache on, the embedded store). The hosted services are started (metrics listener, ledger writer,
/// budget refresh) but no server: each benchmark calls one step of the request path on real instances.
/// The per-request log goes through Serilog's JSON formatter at Information, as in production, into a
/// writer that discards: what is measured is the formatting, not a terminal.
/// </summary>
public sealed class GatewayServices : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<IHostedService> _started = [];

    private GatewayServices(WebApplication app) => _app = app;

    public IServiceProvider Services => _app.Services;

    public T Get<T>() where T : notnull => _app.Services.GetRequiredService<T>();

    public IEnumerable<T> GetAll<T>() => _app.Services.GetServices<T>();

    public static async Task<GatewayServices> StartAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(Config);
        Environment.SetEnvironmentVariable("BENCH_UPSTREAM_KEY", "bench-dummy-upstream-key");

        builder.Services.AddGatewayOptions();
        builder.Services.AddSingleton(TimeProvider.System);
        var logger = new LoggerConfiguration()
            .MinimumLevel.Information()
            .WriteTo.Sink(new FormatOnlySink())
            .CreateLogger();
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(logger, dispose: true);
        builder.Services.AddProviders();
        builder.Services.AddModelRouting();
        builder.Services.AddResilience();
        builder.Services.AddChatCompletions();
        builder.Services.AddBatches();
        builder.Services.AddPassThrough();
        builder.Services.AddStorage();
        builder.Services.AddResponseCache();
        builder.Services.AddBudgets();
        builder.Services.AddUsageLedger();
        builder.Services.AddConversations();
        builder.Services.AddRequestLimits();
        builder.Services.AddGatewayAuth();
        builder.Services.AddTelemetry();
        builder.Services.AddAdmin();
        builder.Services.AddGatewayHealth();

        var services = new GatewayServices(builder.Build());
        // Everything the gateway runs in the background except the web server itself.
        foreach (var hosted in services._app.Services.GetServices<IHostedService>())
        {
            if (hosted.GetType().FullName?.StartsWith("Microsoft.AspNetCore.", StringComparison.Ordinal) == true) continue;
            await hosted.StartAsync(CancellationToken.None).ConfigureAwait(false);
            services._started.Add(hosted);
        }
        return services;
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
        ["Gateway:Cache:Enabled"] = "true",
        ["Gateway:Cache:OnlyDeterministic"] = "true",
        ["Serilog:MinimumLevel:Default"] = "Information",
    };

    public async ValueTask DisposeAsync()
    {
        for (var i = _started.Count - 1; i >= 0; i--) await _started[i].StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// The production log line's formatting (Serilog's JSON formatter, message rendered) into a buffer that
/// is cleared each time: the CPU of the line without a terminal or a background writer.
/// </summary>
internal sealed class FormatOnlySink : ILogEventSink
{
    private readonly JsonFormatter _formatter = new(renderMessage: true);
    private readonly StringWriter _buffer = new(System.Globalization.CultureInfo.InvariantCulture);

    public void Emit(LogEvent logEvent)
    {
        lock (_buffer)
        {
            _buffer.GetStringBuilder().Clear();
            _formatter.Format(logEvent, _buffer);
        }
    }
}
