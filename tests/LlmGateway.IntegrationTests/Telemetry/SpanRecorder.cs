using System.Collections.Concurrent;
using System.Diagnostics;
using LlmGateway.Telemetry;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// Every span of the gateway's ActivitySource stopped while this listens, all data recorded. Spans of other tests'
/// gateways may arrive too: pick a test's own by a tag or an event.
/// </summary>
public sealed class SpanRecorder : IDisposable
{
    private readonly ActivityListener _listener;

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatewayTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public ConcurrentQueue<Activity> Stopped { get; } = new();

    public void Dispose() => _listener.Dispose();
}
