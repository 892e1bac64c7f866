using LlmGateway.Auth;
using LlmGateway.Caching;
using LlmGateway.Conversations;
using LlmGateway.Http;
using LlmGateway.Resilience;
using LlmGateway.Usage;

namespace LlmGateway.Pipeline;

/// <summary>
/// Everything one request holds between <see cref="GatewayPipeline.ExecuteAsync"/> and the end of its
/// delivery (the upstream response, the provider's slot, the cache's waiters, the key's and the
/// budget's tickets), let go exactly once when the ingress completes the outcome.
/// </summary>
internal sealed class RequestRun(GatewayPipeline pipeline, RequestStart start, GatewayRequest? request)
{
    private int _completed;

    public RequestRecord Record { get; } = new() { RequestId = start.RequestId, StartedAt = start.StartedAt };
    public long StartTimestamp { get; } = start.Timestamp;
    public GatewayRequest? Request { get; set; } = request;
    public GatewayContext? Context { get; set; }
    public ConversationTurn? Turn { get; set; }
    public string? ConversationState { get; set; }
    public KeyAdmission KeyLimits { get; set; }
    public CacheLookup? Cache { get; set; }
    public bool CacheAsked => Cache is not null;
    public TimedCancellation? Total { get; set; }
    public Execution? Execution { get; set; }

    /// <summary>The stream handed to the ingress, whose usage is what the request used, however it ended.</summary>
    public AnswerStream? Stream { get; set; }

    public TimeSpan Overhead() => Context?.Overhead() ?? pipeline.Time.GetElapsedTime(StartTimestamp);

    public PipelineOutcome Fail(ApiError error)
    {
        Record.Outcome = RequestOutcomes.Error;
        Record.Status = error.Status;
        Record.ErrorCode = error.Code;
        return new PipelineOutcome(this, OutcomeKind.Error, error);
    }

    /// <summary>The ingress is done with the outcome: how delivery ended decides what is recorded.</summary>
    public ValueTask CompleteAsync(Delivery delivery)
    {
        // The ingress disposes every outcome it completed: that second call has nothing left to do.
        if (Volatile.Read(ref _completed) != 0) return default;
        var record = Record;
        if (delivery != Delivery.Delivered && record.Outcome is not (RequestOutcomes.Broken or RequestOutcomes.Cancelled) && _completed == 0)
        {
            record.Outcome = RequestOutcomes.Cancelled;
            if (delivery == Delivery.ClientGone) record.Status = StatusCodes.Status499ClientClosedRequest;
        }
        return FinishAsync(completeCache: true);
    }

    /// <summary>Lets go of everything the request holds, then records it: once, whoever asks first.</summary>
    public async ValueTask FinishAsync(bool completeCache)
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return;
        try
        {
            // A stream's usage is what was read of it, however it ended: a broken stream was still paid for.
            if (Stream is not null) Record.Usage = Stream.Usage;
            if (completeCache && Cache is not null && Context is not null && Execution is not null)
            {
                // A complete answer goes to the requests waiting for it, and into the cache.
                await pipeline.CompleteCacheAsync(Cache, Context, Execution).ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                if (Execution is not null) await Execution.DisposeAsync().ConfigureAwait(false);
                Total?.Dispose();
                if (Cache is not null) await Cache.DisposeAsync().ConfigureAwait(false);
                await pipeline.SettleAsync(this).ConfigureAwait(false);
            }
            finally
            {
                Request?.Dispose();
            }
        }
    }
}
