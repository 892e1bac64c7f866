using System.Runtime.CompilerServices;
using LlmGateway.Auth;
using LlmGateway.Caching;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Http;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Pipeline;

/// <summary>
/// One request, start to finish, whatever dialect or transport it came in by (chat completions,
/// embeddings, batch items, the other API dialects): the steps are numbered and each capability
/// (conversations, keys, routing, cache, resilience, budgets) owns one of them. The ingress parses its
/// dialect into a <see cref="GatewayRequest"/>, reads its <see cref="RequestHints"/> and caller, and
/// writes the <see cref="PipelineOutcome"/> back in its dialect; steps 1 (read the body) and 6's
/// writing are the ingress's, everything else happens here, and step 7 runs when the ingress
/// completes the outcome.
/// </summary>
public sealed class GatewayPipeline(
    IOptions<GatewayOptions> options,
    IModelRouter router,
    CandidateExecutor executor,
    ResponseCache cache,
    RequestRecorder recorder,
    KeyRateLimits keyLimits,
    ConversationService conversations,
    TimeProvider time,
    ILogger<GatewayPipeline> logger)
{
    private readonly GatewayOptions _options = options.Value;

    /// <summary>Starts the clock and names the request; an ingress takes this before it reads the body.</summary>
    public RequestStart Start() => new(GatewayHeaders.NewRequestId(), time.GetUtcNow(), time.GetTimestamp());

    /// <summary>
    /// A request the ingress refuses before it can run (over the size limit, not JSON, a header that
    /// can't be used): an error outcome, recorded like every other once it is completed.
    /// </summary>
    public PipelineOutcome Refuse(ApiError error, RequestStart start = default)
    {
        var run = new RequestRun(this, start.RequestId is null ? Start() : start, request: null);
        return run.Fail(error);
    }

    /// <summary>
    /// Runs <paramref name="request"/> (the pipeline owns it from here and disposes it) for
    /// <paramref name="caller"/> (null when Gateway:Auth:Mode is none) up to the answer, the committed
    /// stream, or the error. Throws <see cref="OperationCanceledException"/> when
    /// <paramref name="cancellationToken"/> (the caller leaving) cancels it; the request is recorded as
    /// cancelled first. Awaited once, at once: its state machine is pooled (one fewer allocation per request).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PipelineOutcome> ExecuteAsync(GatewayRequest request, CallerIdentity? caller, RequestHints hints, CancellationToken cancellationToken, RequestStart start = default)
    {
        var run = new RequestRun(this, start.RequestId is null ? Start() : start, request);
        var record = run.Record;
        try
        {
            // :: Step 2: the sizes the client chose (counts, dimensions, n), held to Gateway:Limits before
            // anything is allocated for them or any provider is called.
            if (request.CheckLimits(_options.Limits) is { } sizeError) return run.Fail(sizeError);

            // :: Step 2a: conversation history (Conversations/): with a conversation id the stored turns go in front of the messages.
            if (request is ChatRequest chat && hints.ConversationId is { } conversationId)
            {
                var turn = await conversations.BeginAsync(caller, conversationId, chat).ConfigureAwait(false);
                run.ConversationState = turn.State;
                run.Request = request = turn.Request;
                if (turn.Error is not null) return run.Fail(turn.Error);
                run.Turn = turn;
            }
            record.RequestedModel = request.Model;
            record.Stream = request.Stream;
            var context = run.Context = new GatewayContext(request, record, run.StartTimestamp, time, caller, hints, cancellationToken);

            // :: Step 2b: the caller's gateway key (Auth/, null when Gateway:Auth:Mode is none) may refuse the model.
            record.KeyId = caller?.KeyId;
            if (caller is not null && !caller.MayRequest(request.Model))
            {
                return run.Fail(AuthErrors.ModelNotAllowed(caller.KeyId, request.Model));
            }

            // :: Step 3: route to the ordered candidates, without those the caller's key may not use.
            var route = router.Route(request, new RoutingContext(hints, caller?.LocalOnly ?? false));
            if (caller is not null) route = caller.FilterCandidates(route);
            context.Route = route;
            record.TaskType = route.TaskType;
            record.Route = route.Summary; // the log line says why, above all when nothing was left
            if (route.Error is not null) return run.Fail(route.Error);

            // :: Step 3b: the key's RPM and TPM (429 with Retry-After; the limits' state either way).
            if (caller is not null)
            {
                run.KeyLimits = await keyLimits.AdmitAsync(caller, KeyRateLimits.EstimateTokens(request, route), cancellationToken).ConfigureAwait(false);
                if (run.KeyLimits.Error is { } limitError) return run.Fail(limitError);
            }

            // :: Step 4: the response cache. A hit answers here; an identical request in flight is waited for.
            run.Cache = await cache.LookupAsync(context).ConfigureAwait(false);
            if (run.Cache.Hit is { } hit)
            {
                if (run.Turn is not null) await conversations.AppendAsync(run.Turn, hit.Body).ConfigureAwait(false); // :: Step 6b, for a hit
                record.Status = StatusCodes.Status200OK;
                if (!request.Stream) return new PipelineOutcome(run, OutcomeKind.Answer, body: hit.Body, costUsd: 0m);
                run.Stream = new AnswerStream(context, CacheReplay.Events(hit.Body.Span));
                return new PipelineOutcome(run, OutcomeKind.Stream, stream: run.Stream);
            }

            // :: Step 5: try the candidates until one commits.
            run.Total = TimedCancellation.ForRequest(time, cancellationToken, TimeSpan.FromSeconds(_options.Resilience.TotalTimeoutSeconds));
            var execution = run.Execution = await executor.ExecuteAsync(context, run.Total).ConfigureAwait(false);
            if (execution.Error is not null) return run.Fail(execution.Error);

            // :: Step 6: the answer, handed to the ingress; a complete one is kept for the next identical request at step 7.
            record.Status = StatusCodes.Status200OK;
            if (execution.Response!.Stream is { } stream)
            {
                var observed = run.Cache.Observe(stream, execution);
                if (run.Turn is not null) observed = run.Turn.Observe(observed, execution);
                run.Stream = new AnswerStream(context, execution, observed, StreamBroke);
                return new PipelineOutcome(run, OutcomeKind.Stream, stream: run.Stream);
            }
            // :: Step 6b: a conversation keeps the turn before the client has the answer (a stream keeps it before its end).
            if (run.Turn is not null) await conversations.AppendAsync(run.Turn, execution.Response.Body).ConfigureAwait(false);
            record.Usage = execution.Response.Usage;
            var cost = record.CostUsd = Pricing.CostUsd(execution.Candidate!.Model, execution.Response.Usage);
            return new PipelineOutcome(run, OutcomeKind.Answer, body: execution.Response.Body, costUsd: cost, dialect: execution.Response.Dialect);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            record.Outcome = RequestOutcomes.Cancelled;
            record.Status = StatusCodes.Status499ClientClosedRequest; // nginx's "client closed request": nobody received it
            await run.FinishAsync(completeCache: false).ConfigureAwait(false);
            throw;
        }
        catch
        {
            await run.FinishAsync(completeCache: false).ConfigureAwait(false);
            throw;
        }
    }

    private void StreamBroke(RequestRecord record, ApiError error)
    {
        record.Outcome = RequestOutcomes.Broken;
        record.ErrorCode = error.Code;
        logger.LogWarning("Stream {RequestId} from {Provider} broke after it started: {Error}", record.RequestId, record.Provider, error.Message);
    }

    /// <summary>
    /// :: Step 7: record the outcome once, for the log, metrics, budgets and the ledger. Runs after every
    /// resource of the request (the upstream response, the provider's slot, the cache's waiters) is let go.
    /// </summary>
    internal async ValueTask SettleAsync(RequestRun run)
    {
        var record = run.Record;
        // One moment for both: the duration and the overhead end at the same time.
        var now = time.GetTimestamp();
        record.Duration = time.GetElapsedTime(run.StartTimestamp, now);
        record.Overhead = run.Context?.Overhead(now) ?? record.Duration;
        // A cache hit keeps its tokens (they were served) but cost nothing.
        if (record.CacheResult != CacheResults.Hit && !record.Usage.IsEmpty && PricedModel(run) is { } model)
        {
            // A complete answer was priced at step 6 for x-gateway-cost-usd: from the same model and usage, not divided out again.
            var priced = record.CostUsd != 0 && run.Execution is { Candidate: { } candidate, Response: { } response }
                && ReferenceEquals(candidate.Model, model) && response.Usage == record.Usage;
            if (!priced) record.CostUsd = Pricing.CostUsd(model, record.Usage);
        }
        if (run.Context?.Admission is { } ticket)
        {
            // Settled even for broken and cancelled streams: what was used was paid for.
            await ticket.SettleAsync(record.CostUsd).ConfigureAwait(false);
        }
        if (run.KeyLimits.Ticket is { } keyTicket)
        {
            // The key's TPM was charged an estimate at admission; now it pays what was used.
            keyTicket.Settle(record.Usage);
        }
        recorder.Record(record);
    }

    /// <summary>
    /// The configured model the record names. When it names the committed candidate (the executor sets the record's model
    /// to that candidate's name), the candidate's options are that entry itself: the router builds its candidates from the
    /// same options, which are read once and never reload (<c>IOptions</c>), so no case-insensitive lookup by name for it.
    /// </summary>
    private ModelOptions? PricedModel(RequestRun run) =>
        run.Execution?.Candidate is { } candidate && ReferenceEquals(candidate.ModelName, run.Record.Model) ? candidate.Model
        : _options.Models.TryGetValue(run.Record.Model, out var model) ? model : null;

    internal ValueTask CompleteCacheAsync(CacheLookup lookup, GatewayContext context, Execution execution) => cache.CompleteAsync(lookup, context, execution);

    internal TimeProvider Time => time;
}
