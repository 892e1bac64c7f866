using LlmGateway.Routing;
using LlmGateway.Usage;

namespace LlmGateway.Pipeline;

/// <summary>
/// The state of one request (chat or embeddings) as it moves through the pipeline: what every step
/// reads, whichever ingress it came in by. No transport in it: the caller, the hints and the
/// cancellation are values.
/// </summary>
public sealed class GatewayContext(
    GatewayRequest request,
    RequestRecord record,
    long startTimestamp,
    TimeProvider time,
    Auth.CallerIdentity? caller = null,
    RequestHints? hints = null,
    CancellationToken requestAborted = default)
{
    private long _upstreamTicks;

    public GatewayRequest Request { get; } = request;

    /// <summary>Who is calling (null when Gateway:Auth:Mode is none).</summary>
    public Auth.CallerIdentity? Caller { get; } = caller;

    public RequestHints Hints { get; } = hints ?? RequestHints.None;

    /// <summary>The caller gave up (the client left, the batch was cancelled): nothing more is worth doing.</summary>
    public CancellationToken RequestAborted { get; } = requestAborted;

    /// <summary>The request as a chat request; only the chat endpoint's steps ask for it.</summary>
    public ChatRequest Chat => Request as ChatRequest ?? throw new InvalidOperationException($"This is a {Request.Operation} request, not a chat request.");
    public RequestRecord Record { get; } = record;
    public long StartTimestamp { get; } = startTimestamp;
    public RouteDecision? Route { get; set; }

    /// <summary>The budget reservation of the committed attempt, settled with the real cost when the request ends.</summary>
    public Budgets.IAdmissionTicket? Admission { get; set; }
    public TimeProvider Time { get; } = time;

    /// <summary>Time spent waiting on upstreams so far; the rest of the wall time is the gateway's overhead.</summary>
    public TimeSpan UpstreamTime => Time.GetElapsedTime(0, _upstreamTicks);

    /// <summary>Adds the time since <paramref name="startedAt"/> (a <see cref="TimeProvider.GetTimestamp"/>) to the upstream time.</summary>
    public void AddUpstreamTime(long startedAt) => AddUpstreamTime(startedAt, Time.GetTimestamp());

    /// <summary>Adds the time from <paramref name="startedAt"/> to <paramref name="endedAt"/> (both <see cref="TimeProvider.GetTimestamp"/>s) to the upstream time.</summary>
    public void AddUpstreamTime(long startedAt, long endedAt) => _upstreamTicks += endedAt - startedAt;

    public TimeSpan Overhead() => Overhead(Time.GetTimestamp());

    /// <summary>The gateway's own time from the start up to <paramref name="now"/> (a <see cref="TimeProvider.GetTimestamp"/> the caller already read).</summary>
    public TimeSpan Overhead(long now)
    {
        var overhead = Time.GetElapsedTime(StartTimestamp, now) - UpstreamTime;
        return overhead < TimeSpan.Zero ? TimeSpan.Zero : overhead;
    }
}
