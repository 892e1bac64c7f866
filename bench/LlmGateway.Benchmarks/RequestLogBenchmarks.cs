using BenchmarkDotNet.Attributes;
using LlmGateway.Caching;
using LlmGateway.Providers;
using LlmGateway.Pipeline;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Http;
using Serilog;
using Serilog.Extensions.Logging;

namespace LlmGateway.Benchmarks;

/// <summary>
/// Issue 17 asks for Serilog.AspNetCore's request logging in place of the gateway's own line per request
/// unless the latter is measurably better. Both write one JSON line with the same fields through the same
/// formatter (<see cref="FormatOnlySink"/>, the production formatting without a terminal):
/// <list type="bullet">
/// <item><c>Recorder_LogLine</c>: what ships, the request recorder's <see cref="RequestLog"/> turning the
/// pipeline's <c>RequestRecord</c> into a Microsoft.Extensions.Logging event that Serilog formats.</item>
/// <item><c>SerilogRequestLogging</c>: Serilog.AspNetCore's <c>RequestLoggingMiddleware</c> around an endpoint
/// that copies the same twenty fields into the <c>IDiagnosticContext</c>, as the pipeline would have to.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class RequestLogBenchmarks
{
    private RequestLog _recorderLine = null!;
    private RequestRecord _record = null!;
    private RequestDelegate _middleware = null!;
    private ServiceProvider _services = null!;
    private DefaultHttpContext _http = null!;
    private Serilog.Core.Logger _serilog = null!;

    [GlobalSetup]
    public void Setup()
    {
        _serilog = new LoggerConfiguration().MinimumLevel.Information().Enrich.FromLogContext().WriteTo.Sink(new FormatOnlySink()).CreateLogger();
        var factory = new SerilogLoggerFactory(_serilog);
        _recorderLine = new RequestLog(new Microsoft.Extensions.Logging.Logger<RequestLog>(factory));
        _record = PipelineBenchmarks.CompletedRecord("req_bench"); // the record the pipeline benchmarks log

        _services = new ServiceCollection().AddSerilog(_serilog).BuildServiceProvider();
        var diagnostics = _services.GetRequiredService<IDiagnosticContext>();
        var r = _record;
        RequestDelegate endpoint = http =>
        {
            // What the pipeline would copy into the diagnostic context for the middleware's line.
            diagnostics.Set("RequestId", r.RequestId);
            diagnostics.Set("KeyId", r.KeyId);
            diagnostics.Set("TaskType", r.TaskType);
            diagnostics.Set("RequestedModel", r.RequestedModel);
            diagnostics.Set("Model", r.Model);
            diagnostics.Set("Provider", r.Provider);
            diagnostics.Set("Stream", r.Stream);
            diagnostics.Set("Outcome", r.Outcome);
            diagnostics.Set("ErrorCode", r.ErrorCode);
            diagnostics.Set("PromptTokens", r.Usage.Prompt);
            diagnostics.Set("CompletionTokens", r.Usage.Completion);
            diagnostics.Set("CachedTokens", r.Usage.CachedPrompt);
            diagnostics.Set("CostUsd", r.CostUsd);
            diagnostics.Set("Attempts", r.Attempts);
            diagnostics.Set("Fallbacks", r.Fallbacks);
            diagnostics.Set("Cache", r.CacheResult);
            diagnostics.Set("Route", r.Route);
            diagnostics.Set("TtftMs", r.TimeToFirstToken?.TotalMilliseconds);
            diagnostics.Set("OverheadMs", Math.Round(r.Overhead.TotalMilliseconds, 3));
            http.Response.StatusCode = 200;
            return Task.CompletedTask;
        };
        var app = new ApplicationBuilder(_services);
        app.UseSerilogRequestLogging(o => o.Logger = _serilog);
        app.Run(endpoint);
        _middleware = app.Build();
        _http = new DefaultHttpContext();
        _http.Request.Method = "POST";
        _http.Request.Path = "/v1/chat/completions";
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _services.Dispose();
        _serilog.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Recorder_LogLine() => _recorderLine.OnRequestCompleted(_record);

    [Benchmark]
    public Task SerilogRequestLogging() => _middleware(_http);
}
