using System.Globalization;
using LlmGateway.Auth;
using LlmGateway.Http;
using LlmGateway.Routing;
using LlmGateway.Telemetry;

namespace LlmGateway.Batches;

/// <summary>
/// One batch being run: its items admitted in input order under its cost cap, at most `parallelism` at
/// once, each through the pipeline as a request of its own with the caller and hints of the batch
/// request; the results kept in input order for <see cref="BatchResultJson"/>.
/// </summary>
internal sealed class BatchRun(
    BatchRunner owner,
    List<ArraySegment<byte>> items,
    int parallelism,
    BatchCostGate? cost,
    CallerIdentity? caller,
    RequestHints hints,
    ApiError? hintError,
    CancellationToken aborted)
{
    private readonly BatchItemResult?[] _results = new BatchItemResult?[items.Count];
    private readonly int _progressEvery = Math.Max(10, items.Count / 10);
    private int _done;
    private int _succeeded;
    private int _failed;
    private int _skipped;
    private decimal _costUsd;
    private readonly object _costLock = new();

    public string Id { get; } = "batch_" + Guid.NewGuid().ToString("N");
    public int Succeeded => Volatile.Read(ref _succeeded);
    public int Failed => Volatile.Read(ref _failed);
    public int Skipped => Volatile.Read(ref _skipped);

    public decimal CostUsd
    {
        get { lock (_costLock) return _costUsd; }
    }

    /// <summary>Every item's result, in input order, once <see cref="ExecuteAsync"/> is done.</summary>
    public IReadOnlyList<BatchItemResult> Results => _results!;

    public async Task ExecuteAsync()
    {
        using var slots = new SemaphoreSlim(parallelism);
        var running = new List<Task>(items.Count);
        try
        {
            for (var i = 0; i < items.Count; i++)
            {
                var item = items[i];
                if (BatchInput.AsksForStream(item))
                {
                    Finish(i, StreamRefusal());
                    continue;
                }

                await slots.WaitAsync(aborted).ConfigureAwait(false);
                decimal? reservation = null;
                if (cost is not null)
                {
                    reservation = await AdmitAsync(cost, item, aborted).ConfigureAwait(false);
                    if (reservation is null)
                    {
                        slots.Release();
                        Finish(i, CostLimitReached(cost));
                        continue;
                    }
                }
                running.Add(RunItemAsync(i, item, reservation, slots));
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client left: nothing more is admitted; what runs ends with it (each item records a 499).
        }
        await Task.WhenAll(running).ConfigureAwait(false);
    }

    /// <summary>The item's reservation, or null when the batch's cap leaves no room for it.</summary>
    private async Task<decimal?> AdmitAsync(BatchCostGate gate, ArraySegment<byte> item, CancellationToken aborted)
    {
        if (gate.Stopped) return null; // don't route an item only to refuse it

        var (cheapest, dearest) = owner.EstimateCost(item, hints, caller);
        while (true)
        {
            var decision = gate.TryAdmit(cheapest, dearest);
            switch (decision.Kind)
            {
                case BatchCostGate.DecisionKind.Admitted:
                    return decision.ReservationUsd;
                case BatchCostGate.DecisionKind.Refused:
                    return null;
                default:
                    await decision.Released!.WaitAsync(aborted).ConfigureAwait(false);
                    break;
            }
        }
    }

    private async Task RunItemAsync(int index, ArraySegment<byte> item, decimal? reservation, SemaphoreSlim slots)
    {
        // Let the dispatcher go on to admit the next item while this one runs.
        await Task.Yield();
        var result = new BatchItemResult();
        var batchSetLimit = false;
        try
        {
            using var scope = owner.Logger.BeginScope(new BatchItemScope(Id, index));
            owner.ChatMetrics.RequestStarted();
            using var activity = GatewayTracing.StartRequest();
            try
            {
                (result, batchSetLimit) = await RunThroughPipelineAsync(item, reservation).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !aborted.IsCancellationRequested)
            {
                // As the error middleware would for a request of its own: logged, and a 500 for this item only.
                owner.Logger.LogError(e, "Batch {BatchId} item {Index} failed in the gateway", Id, index);
                result = Refusal(ApiError.Internal(), BatchMetrics.Failed);
            }
            finally
            {
                owner.ChatMetrics.RequestEnded();
            }
        }
        catch (OperationCanceledException)
        {
            result = Refusal(ApiError.InvalidRequest("The batch request was cancelled.") with { Status = StatusCodes.Status499ClientClosedRequest }, BatchMetrics.Failed);
        }
        finally
        {
            if (reservation is { } reserved)
            {
                cost!.Settle(reserved, result.CostUsd);
                if (result.CostUsd > reserved)
                {
                    owner.Logger.LogWarning("Batch {BatchId} item {Index} cost {CostUsd} USD, more than the {ReservedUsd} USD reserved for it: the provider reported more tokens than estimated",
                        Id, index, result.CostUsd, reserved);
                }
                if (batchSetLimit && IsCostLimitRefusal(result)) result = CostLimitReached(cost);
            }
            slots.Release();
            Finish(index, result);
        }
    }

    /// <summary>
    /// One item as a request of its own: parsed, refused or run, its outcome taken whole. The router
    /// keeps to candidates whose worst case fits what the batch reserved for the item, or the
    /// client's own X-Max-Cost-Usd when that is tighter (then the limit is the client's, not the batch's).
    /// </summary>
    private async Task<(BatchItemResult Result, bool BatchSetLimit)> RunThroughPipelineAsync(ArraySegment<byte> item, decimal? reservation)
    {
        var pipeline = owner.Pipeline;
        var start = pipeline.Start();
        if (item.Count > owner.MaxItemBytes)
        {
            return (await TakeAsync(pipeline.Refuse(ApiError.RequestTooLarge(owner.MaxItemBytes), start)).ConfigureAwait(false), false);
        }
        var chat = ChatRequest.TryParse(item, out var parseError);
        if (chat is { Stream: true })
        {
            // "stream" given twice, the last one true: the batch's own check read the first.
            chat.Dispose();
            return (StreamRefusal(), false);
        }
        var batchSetLimit = false;
        PipelineOutcome outcome;
        if (chat is null) outcome = pipeline.Refuse(parseError!, start);
        else if (hintError is not null)
        {
            chat.Dispose();
            outcome = pipeline.Refuse(hintError, start);
        }
        else
        {
            var itemHints = hints;
            if (reservation is { } reserved && hints.RoutingError is null && (hints.MaxCostUsd is not { } own || reserved < own))
            {
                itemHints = hints with { MaxCostUsd = reserved };
                batchSetLimit = true;
            }
            outcome = await pipeline.ExecuteAsync(chat, caller, itemHints, aborted, start).ConfigureAwait(false);
        }
        return (await TakeAsync(outcome).ConfigureAwait(false), batchSetLimit);
    }

    /// <summary>The item's result from its outcome, which is then completed: the item was delivered in full.</summary>
    private static async Task<BatchItemResult> TakeAsync(PipelineOutcome outcome)
    {
        await using (outcome.ConfigureAwait(false))
        {
            var result = new BatchItemResult { Usage = outcome.Usage };
            foreach (var header in GatewayHeaders.Of(outcome))
            {
                if (BatchRunner.ResultHeaders.Contains(header.Key)) (result.Headers ??= []).Add(header);
            }
            if (outcome.Kind == OutcomeKind.Answer)
            {
                // A copy: the provider's buffer is let go when the outcome completes.
                result.Status = StatusCodes.Status200OK;
                result.Body = outcome.Body.ToArray();
                result.CostUsd = outcome.CostUsd ?? 0m;
                result.Outcome = BatchMetrics.Succeeded;
            }
            else
            {
                result.Error = outcome.Error;
                result.Status = outcome.Error!.Status;
            }
            await outcome.CompleteAsync(Delivery.Delivered).ConfigureAwait(false);
            return result;
        }
    }

    /// <summary>
    /// The router's 400 for "no candidate fits X-Max-Cost-Usd" is the batch's cap when the batch set
    /// that limit (it was tighter than the client's own): the batch ran out of room, the client did
    /// nothing wrong.
    /// </summary>
    private static bool IsCostLimitRefusal(BatchItemResult result) =>
        result.Status == StatusCodes.Status400BadRequest && result.Error?.Code == RoutingErrorCodes.MaxCostExceeded;

    private static BatchItemResult StreamRefusal() => Refusal(ApiError.InvalidRequest(
        "Batch items are answered whole: remove \"stream\": true (or send it to /v1/chat/completions).",
        "stream", BatchErrorCodes.StreamNotSupported), BatchMetrics.Failed);

    private static BatchItemResult CostLimitReached(BatchCostGate gate) => Refusal(new ApiError(StatusCodes.Status429TooManyRequests,
        ErrorTypes.InsufficientQuota, BatchErrorCodes.CostLimitReached,
        $"Not run: the batch's max_cost_usd of {gate.CapUsd.ToString(CultureInfo.InvariantCulture)} leaves no room for this item's estimated worst-case cost."), BatchMetrics.Skipped);

    private static BatchItemResult Refusal(ApiError error, string outcome) => new() { Status = error.Status, Error = error, Outcome = outcome };

    private void Finish(int index, BatchItemResult result)
    {
        _results[index] = result;
        switch (result.Outcome)
        {
            case BatchMetrics.Succeeded: Interlocked.Increment(ref _succeeded); break;
            case BatchMetrics.Skipped: Interlocked.Increment(ref _skipped); break;
            default: Interlocked.Increment(ref _failed); break;
        }
        if (result.CostUsd != 0)
        {
            lock (_costLock) _costUsd += result.CostUsd;
        }
        owner.Metrics.Item(result.Outcome);
        var done = Interlocked.Increment(ref _done);
        if (done % _progressEvery == 0 && done < items.Count)
        {
            owner.Logger.LogInformation("Batch {BatchId}: {Done}/{Items} done, {Succeeded} succeeded, {Failed} failed, {Skipped} skipped, cost {CostUsd} USD",
                Id, done, items.Count, Succeeded, Failed, Skipped, CostUsd);
        }
    }
}

/// <summary>
/// The properties a batch item's log lines carry (Serilog turns a scope of key/value pairs into
/// fields): the request log line of each item names its batch and position.
/// </summary>
internal sealed class BatchItemScope(string batchId, int index) : IReadOnlyList<KeyValuePair<string, object>>
{
    public int Count => 2;

    public KeyValuePair<string, object> this[int i] => i == 0 ? new("BatchId", batchId) : new("BatchIndex", index);

    public IEnumerator<KeyValuePair<string, object>> GetEnumerator()
    {
        yield return this[0];
        yield return this[1];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"batch {batchId} item {index}");
}
