using System.Diagnostics;
using System.Globalization;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LlmGateway.Caching;
using LlmGateway.Providers;
using LlmGateway.Pipeline;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Http;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Formatting.Json;

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
/// The line's two halves, each measured alone on a production-shaped event (the host's activity tracking, Kestrel's
/// connection scope, Serilog as a Microsoft.Extensions.Logging provider; with <c>BENCH_LOG_TRACED=1</c> also an
/// Activity and the hosting scope, as under a tracer):
/// <list type="bullet">
/// <item><c>RequestThread</c>: what the request pays, <see cref="RequestLog"/> to the queued Serilog event (the sink
/// only counts it).</item>
/// <item><c>Writer</c>: what the log-writer thread pays per line, the event to UTF-8 bytes: Serilog's
/// <c>JsonFormatter</c> into a <c>StringWriter</c> then encoded (what the sink did before) against
/// <see cref="JsonLogLineFormatter"/> (what it does now), the same bytes.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn, MinColumn, MedianColumn]
public class RequestLogBenchmarks
{
    private RequestLog _recorderLine = null!;
    private RequestRecord _record = null!;
    private RequestDelegate _middleware = null!;
    private ServiceProvider _services = null!;
    private DefaultHttpContext _http = null!;
    private Serilog.Core.Logger _serilog = null!;

    [GlobalSetup(Targets = [nameof(Recorder_LogLine), nameof(SerilogRequestLogging)])]
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
        _scopes?.Dispose();
        _activity?.Dispose();
        _factory?.Dispose();
        _services?.Dispose();
        _serilog?.Dispose();
        _requestThreadSerilog?.Dispose();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Line")]
    public void Recorder_LogLine() => _recorderLine.OnRequestCompleted(_record);

    [Benchmark, BenchmarkCategory("Line")]
    public Task SerilogRequestLogging() => _middleware(_http);

    // ---- the request thread's half, on a production-shaped logger ----

    private Serilog.Core.Logger? _requestThreadSerilog;
    private ILoggerFactory? _factory;
    private Activity? _activity;
    private IDisposable? _scopes;
    private RequestLog _productionShaped = null!;
    private RequestLog _throughMel = null!;
    private readonly CountingSink _counting = new();

    // ---- the writer thread's half ----

    private readonly LogEvent[] _lines = new LogEvent[64];
    private int _next;
    private readonly JsonFormatter _serilogJson = new(renderMessage: true);
    private readonly StringWriter _text = new(new StringBuilder(64 * 1024), CultureInfo.InvariantCulture);
    private readonly byte[] _encoded = new byte[256 * 1024];
    private readonly JsonLogLineFormatter _utf8 = new();
    private readonly LogLineBuffer _bytes = new(64 * 1024);

    [GlobalSetup(Targets = [nameof(RequestThread_Event), nameof(RequestThread_ThroughMel), nameof(Writer_SerilogJsonFormatter), nameof(Writer_JsonLogLineFormatter)])]
    public void SetupHalves()
    {
        _record = PipelineBenchmarks.CompletedRecord("req_bench");
        _requestThreadSerilog = new LoggerConfiguration().MinimumLevel.Information().Enrich.FromLogContext().WriteTo.Sink(_counting).CreateLogger();
        var provider = new SerilogLoggerProvider(_requestThreadSerilog);
        _factory = LoggerFactory.Create(logging =>
        {
            // What the web host sets: each event carries the activity's ids as a scope.
            logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.SpanId | ActivityTrackingOptions.TraceId | ActivityTrackingOptions.ParentId);
            logging.AddProvider(provider);
        });
        // As the host builds it (Serilog the only provider): the event made straight into Serilog; and, to compare,
        // the same line through Microsoft.Extensions.Logging and Serilog.Extensions.Logging, as with other providers.
        _productionShaped = new RequestLog(_factory.CreateLogger<RequestLog>(), [provider], new GatewaySerilog(_requestThreadSerilog));
        _throughMel = new RequestLog(_factory.CreateLogger<RequestLog>());
        // As a request's line is logged with no tracer configured (HostingLogGate: no Activity, no hosting scope):
        // Kestrel's connection scope only. BENCH_LOG_TRACED=1 adds what a tracer brings, an Activity and the
        // hosting scope.
        var traced = Environment.GetEnvironmentVariable("BENCH_LOG_TRACED") == "1";
        var scopes = _factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Connections");
        var connection = scopes.BeginScope(new List<KeyValuePair<string, object>> { new("ConnectionId", "0HNQG9MFP5M20") });
        IDisposable? request = null;
        if (traced)
        {
            _activity = new Activity("bench").SetIdFormat(ActivityIdFormat.W3C).Start();
            request = scopes.BeginScope(new List<KeyValuePair<string, object>> { new("RequestId", "0HNQG9MFP5M20:00000001"), new("RequestPath", "/v1/chat/completions") });
        }
        _scopes = new Scopes(connection, request);

        // The events the writer formats: the ones this logger builds, checked to be production-shaped. Each from its own
        // record, as requests are (its own id, cost and durations; the connection scope's value made per event), so
        // what a line shares with the one before is what production lines share, no more.
        for (var i = 0; i < _lines.Length; i++)
        {
            var record = PipelineBenchmarks.CompletedRecord("req_bench" + i.ToString(CultureInfo.InvariantCulture));
            record.Duration = TimeSpan.FromTicks(12_000 + 37 * i);
            record.Overhead = TimeSpan.FromTicks(3_000 + 11 * i);
            record.CostUsd = 0.0000702m + i;
            _counting.Keep = true;
            _productionShaped.OnRequestCompleted(record);
            _counting.Keep = false;
            var line = _counting.Kept ?? throw new InvalidOperationException("no event logged");
            if (!line.Properties.ContainsKey("ConnectionId") || traced != (line.TraceId is not null) || traced != line.Properties.ContainsKey("RequestPath"))
                throw new InvalidOperationException("the benchmark's event lacks the activity or the scopes a request's event has");
            _bytes.Clear();
            _utf8.Format(line, _bytes);
            if (!Encoding.UTF8.GetBytes(_serilogJson.Format(line)).AsSpan().SequenceEqual(_bytes.WrittenSpan) || _utf8.Fallbacks != 0)
                throw new InvalidOperationException("the formatters disagree on the benchmark's line, or the line fell back to Serilog");
            _lines[i] = line;
        }
    }

    /// <summary>The next of <see cref="_lines"/>, round and round.</summary>
    private LogEvent NextLine() => _lines[_next++ & (_lines.Length - 1)];

    [Benchmark(Baseline = true), BenchmarkCategory("RequestThread")]
    public void RequestThread_Event() => _productionShaped.OnRequestCompleted(_record);

    [Benchmark, BenchmarkCategory("RequestThread")]
    public void RequestThread_ThroughMel() => _throughMel.OnRequestCompleted(_record);

    [Benchmark(Baseline = true), BenchmarkCategory("Writer")]
    public int Writer_SerilogJsonFormatter()
    {
        var sb = _text.GetStringBuilder();
        sb.Clear();
        _serilogJson.Format(NextLine(), _text);
        var n = 0;
        foreach (var chunk in sb.GetChunks()) n += Encoding.UTF8.GetBytes(chunk.Span, _encoded.AsSpan(n));
        return n;
    }

    [Benchmark, BenchmarkCategory("Writer")]
    public int Writer_JsonLogLineFormatter()
    {
        _bytes.Clear();
        _utf8.Format(NextLine(), _bytes);
        return _bytes.Length;
    }

    private sealed class CountingSink : ILogEventSink
    {
        public long Count;
        public bool Keep;
        public LogEvent? Kept;

        public void Emit(LogEvent logEvent)
        {
            Count++;
            if (Keep) Kept = logEvent;
        }
    }

    private sealed class Scopes(IDisposable? outer, IDisposable? inner) : IDisposable
    {
        public void Dispose()
        {
            inner?.Dispose();
            outer?.Dispose();
        }
    }
}

internal static class JsonFormatterExtensions
{
    public static string Format(this JsonFormatter formatter, LogEvent e)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        formatter.Format(e, text);
        return text.ToString();
    }
}
