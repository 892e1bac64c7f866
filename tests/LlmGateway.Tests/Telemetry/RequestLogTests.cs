using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Formatting.Json;

namespace LlmGateway.Tests.Telemetry;

/// <summary>
/// The request line written straight into Serilog (when Serilog is the only provider) must be the event
/// Serilog.Extensions.Logging makes of the same line: the same level, template, properties in the same order with the
/// same values, EventId, SourceContext, the scopes and the activity's ids, so operators' stdout does not change.
/// </summary>
public class RequestLogTests
{
    private sealed class Capture : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];
        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }

    private static RequestRecord Record(int variant) => variant switch
    {
        0 => new RequestRecord
        {
            RequestId = "req_\"quoted\"", StartedAt = DateTimeOffset.UnixEpoch, KeyId = "team-a", TaskType = "code_generation",
            RequestedModel = "auto", Model = "gpt-4o-mini", Provider = "openai", Stream = true, Status = 200, Outcome = RequestOutcomes.Ok,
            Usage = new TokenUsage(1234, 567, 89), CostUsd = 0.000123456789m, Attempts = 2, Fallbacks = 1, CacheResult = "miss",
            Route = "cost", TimeToFirstToken = TimeSpan.FromTicks(1_234_567), Duration = TimeSpan.FromTicks(98_765_432), Overhead = TimeSpan.FromTicks(1_001),
        },
        1 => new RequestRecord
        {
            RequestId = "req_ütf8_🙂", StartedAt = DateTimeOffset.UnixEpoch, Model = "", Provider = "", Status = 502,
            Outcome = RequestOutcomes.Broken, ErrorCode = "upstream_error", Duration = TimeSpan.FromMilliseconds(0.1),
        },
        _ => new RequestRecord { RequestId = "req_plain", StartedAt = DateTimeOffset.UnixEpoch, Model = "m", Provider = "p", Status = 429, Outcome = "rejected" },
    };

    /// <summary>Each record logged by both paths into one Serilog logger, with the web host's activity tracking, scopes and an activity.</summary>
    private static (List<LogEvent> Mel, List<LogEvent> Direct) BothPaths()
    {
        var melCapture = new Capture();
        var directCapture = new Capture();
        (List<LogEvent>, RequestLog, ILoggerFactory) Build(Capture capture, bool direct)
        {
            var serilog = new LoggerConfiguration().MinimumLevel.Information().Enrich.FromLogContext().WriteTo.Sink(capture).CreateLogger();
            var provider = new SerilogLoggerProvider(serilog, dispose: true);
            var factory = LoggerFactory.Create(b =>
            {
                b.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.SpanId | ActivityTrackingOptions.TraceId | ActivityTrackingOptions.ParentId);
                b.AddProvider(provider);
            });
            var log = direct
                ? new RequestLog(factory.CreateLogger<RequestLog>(), [provider], new GatewaySerilog(serilog))
                : new RequestLog(factory.CreateLogger<RequestLog>());
            Assert.Equal(direct, log.WritesToSerilog);
            return (capture.Events, log, factory);
        }

        var (mel, melLog, melFactory) = Build(melCapture, direct: false);
        var (directEvents, directLog, directFactory) = Build(directCapture, direct: true);
        using (melFactory)
        using (directFactory)
        {
            foreach (var (log, factory) in new[] { (melLog, melFactory), (directLog, directFactory) })
            {
                log.OnRequestCompleted(Record(0));
                log.OnRequestCompleted(Record(1));
                using (new Activity("request").SetIdFormat(ActivityIdFormat.W3C).Start())
                using (factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.Connections").BeginScope(new Dictionary<string, object> { ["ConnectionId"] = "0HN1" }))
                using (factory.CreateLogger<RequestLog>().BeginScope("Batch {BatchId} item {BatchIndex}", "batch_1", 7))
                using (Serilog.Context.LogContext.PushProperty("Pushed", 42))
                {
                    log.OnRequestCompleted(Record(2));
                }
            }
        }
        return (mel, directEvents);
    }

    private static string Line(LogEvent e)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture);
        new JsonFormatter(renderMessage: true).Format(e, text);
        // The two paths log at different instants and in different activities; everything else must be equal.
        return Regex.Replace(text.ToString(), "\"(Timestamp|TraceId|SpanId|ParentId)\":\"[^\"]*\"", "\"$1\":\"-\"");
    }

    [Fact]
    public void Straight_into_Serilog_the_line_is_the_event_Serilog_Extensions_Logging_makes()
    {
        var (mel, direct) = BothPaths();
        Assert.Equal(3, mel.Count);
        Assert.Equal(3, direct.Count);
        for (var i = 0; i < mel.Count; i++)
        {
            Assert.Equal(mel[i].Level, direct[i].Level);
            Assert.Equal(mel[i].Properties.Keys, direct[i].Properties.Keys); // the same properties, in the same order
            Assert.Equal(Line(mel[i]), Line(direct[i]));
            Assert.Equal(mel[i].TraceId is null, direct[i].TraceId is null);
        }
        Assert.Equal(LogEventLevel.Warning, direct[1].Level);
        // The third line carries the scopes, the pushed property and the activity, both ways.
        Assert.True(direct[2].Properties.ContainsKey("ConnectionId"));
        Assert.True(direct[2].Properties.ContainsKey("Scope"));
        Assert.True(direct[2].Properties.ContainsKey("Pushed"));
        Assert.NotNull(direct[2].TraceId);
    }

    [Fact]
    public void With_any_other_provider_the_line_goes_through_Microsoft_Extensions_Logging_so_every_provider_sees_it()
    {
        using var serilog = new LoggerConfiguration().CreateLogger();
        var provider = new SerilogLoggerProvider(serilog);
        using var factory = LoggerFactory.Create(b => b.AddProvider(provider));
        var other = Microsoft.Extensions.Logging.Abstractions.NullLoggerProvider.Instance;

        Assert.True(new RequestLog(factory.CreateLogger<RequestLog>(), [provider], new GatewaySerilog(serilog)).WritesToSerilog);
        Assert.False(new RequestLog(factory.CreateLogger<RequestLog>(), [provider, other], new GatewaySerilog(serilog)).WritesToSerilog);
        Assert.False(new RequestLog(factory.CreateLogger<RequestLog>(), [other], new GatewaySerilog(serilog)).WritesToSerilog);
        Assert.False(new RequestLog(factory.CreateLogger<RequestLog>(), [provider], null).WritesToSerilog);
    }

    [Fact]
    public void The_hosts_filter_rules_hold_on_the_direct_path()
    {
        var capture = new Capture();
        using var serilog = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Sink(capture).CreateLogger();
        var provider = new SerilogLoggerProvider(serilog);
        using var factory = LoggerFactory.Create(b =>
        {
            b.AddProvider(provider);
            b.AddFilter(typeof(RequestLog).FullName, LogLevel.Warning);
        });
        var log = new RequestLog(factory.CreateLogger<RequestLog>(), [provider], new GatewaySerilog(serilog));
        Assert.True(log.WritesToSerilog);
        log.OnRequestCompleted(Record(0)); // Information: filtered out by the host's rule
        log.OnRequestCompleted(Record(1)); // Warning: written
        Assert.Equal([LogEventLevel.Warning], capture.Events.Select(e => e.Level));
    }
}
