using System.Buffers;
using System.Globalization;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LlmGateway.Batches;

/// <summary>
/// POST /v1/batch/chat/completions: runs each item through the <see cref="GatewayPipeline"/> with the
/// caller's identity and the batch request's hints, so an item is routed, cached, budgeted,
/// rate-limited and recorded exactly like a request of its own. There is one pipeline; this class only
/// schedules it (bounded parallelism, the batch's cost cap, passed to each item as its
/// <see cref="RequestHints.MaxCostUsd"/>) and collects the outcomes in input order.
/// </summary>
public sealed class BatchRunner(
    IOptions<GatewayOptions> options,
    GatewayPipeline pipeline,
    IModelRouter router,
    BatchMetrics metrics,
    GatewayMetrics chatMetrics,
    ILogger<BatchRunner> logger)
{
    public const string BatchIdHeader = "x-gateway-batch-id";

    /// <summary>The headers a request of its own would have been answered with that an item's result repeats.</summary>
    private static readonly HashSet<string> s_resultHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        GatewayHeaders.RequestId, GatewayHeaders.Provider, GatewayHeaders.Model, GatewayHeaders.TaskType,
        GatewayHeaders.Cache, GatewayHeaders.Attempts, GatewayHeaders.CostUsd, "retry-after",
    };

    private readonly BatchOptions _options = options.Value.Batches;

    /// <summary>Each item is held to the limit of a request of its own.</summary>
    private readonly int _maxItemBytes = options.Value.Limits.MaxRequestBytes;

    // Fields rather than captured parameters: the nested Run uses them.
    private readonly GatewayPipeline _pipeline = pipeline;
    private readonly BatchMetrics _metrics = metrics;
    private readonly GatewayMetrics _chatMetrics = chatMetrics;
    private readonly ILogger _logger = logger;

    public async Task HandleAsync(HttpContext http)
    {
        // :: Step 1: the batch's own parameters, from the query string (the same for JSON and JSON Lines bodies).
        if (ReadParameters(http.Request.Query, out var parallelism, out var capUsd) is { } parameterError)
        {
            await parameterError.WriteAsync(http.Response).ConfigureAwait(false);
            return;
        }

        // :: Step 2: the body under Batches:MaxRequestBytes, split into items (a bad batch is refused whole).
        byte[] body;
        int length;
        try
        {
            (body, length) = await ReadBodyAsync(http, _options.MaxRequestBytes).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            length = -1;
            body = [];
        }
        if (length < 0)
        {
            await ApiError.RequestTooLarge(_options.MaxRequestBytes).WriteAsync(http.Response).ConfigureAwait(false);
            return;
        }
        var items = BatchInput.TryParse(new ArraySegment<byte>(body, 0, length), BatchInput.IsJsonLines(http.Request.ContentType), _options.MaxItems, out var inputError);
        if (items is null)
        {
            await inputError!.WriteAsync(http.Response).ConfigureAwait(false);
            return;
        }

        // :: Step 3: run the items, at most `parallelism` at once, admitted in input order, each with the
        // hints of the batch request's headers (X-Task-Type, X-Local-Only, X-No-Fallback, X-Max-Cost-Usd, Cache-Control).
        var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var hintError);
        var run = new Run(this, http, items, parallelism, capUsd is { } cap ? new BatchCostGate(cap) : null, hints with { ConversationId = null }, hintError);
        http.Response.Headers[BatchIdHeader] = run.Id;
        _metrics.BatchStarted();
        _logger.LogInformation("Batch {BatchId} started: {Items} items, parallelism {Parallelism}, max cost {MaxCostUsd}",
            run.Id, items.Count, parallelism, capUsd?.ToString(CultureInfo.InvariantCulture) ?? "none");
        try
        {
            await run.ExecuteAsync().ConfigureAwait(false);
        }
        finally
        {
            _metrics.BatchEnded();
            _logger.LogInformation("Batch {BatchId} ended: {Items} items, {Succeeded} succeeded, {Failed} failed, {Skipped} skipped, cost {CostUsd} USD",
                run.Id, items.Count, run.Succeeded, run.Failed, run.Skipped, run.CostUsd);
        }
        if (http.RequestAborted.IsCancellationRequested) return; // nobody to answer

        // :: Step 4: one answer with every item's result in input order; 200 even when items failed.
        var json = run.WriteResult();
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = json.WrittenCount;
        await http.Response.Body.WriteAsync(json.WrittenMemory, http.RequestAborted).ConfigureAwait(false);
    }

    private ApiError? ReadParameters(IQueryCollection query, out int parallelism, out decimal? capUsd)
    {
        parallelism = _options.Parallelism;
        capUsd = null;
        if (query.TryGetValue("parallelism", out var p))
        {
            if (!int.TryParse(p.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out parallelism) || parallelism < 1 || parallelism > _options.MaxParallelism)
            {
                return ApiError.InvalidRequest($"parallelism must be a whole number from 1 to {_options.MaxParallelism} (Gateway:Batches:MaxParallelism).", "parallelism");
            }
        }
        if (query.TryGetValue("max_cost_usd", out var c))
        {
            if (!decimal.TryParse(c.ToString(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var cap))
            {
                return ApiError.InvalidRequest("max_cost_usd must be a non-negative amount of US dollars, like 0.50.", "max_cost_usd");
            }
            capUsd = cap;
        }
        return null;
    }

    /// <summary>Reads the whole body, or returns a length of -1 when it is over <paramref name="max"/> bytes.</summary>
    private static async Task<(byte[] Body, int Length)> ReadBodyAsync(HttpContext http, int max)
    {
        var request = http.Request;
        if (request.ContentLength > max) return ([], -1);
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            // Kestrel's default is sized for one chat request; a batch may carry many.
            limit.MaxRequestBodySize = max;
        }
        var buffer = new byte[request.ContentLength is { } known ? (int)known : 64 * 1024];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > max) return ([], -1);
                Array.Resize(ref buffer, (int)Math.Min(buffer.Length * 2L, max + 1L));
            }
            var read = await request.Body.ReadAsync(buffer.AsMemory(length), http.RequestAborted).ConfigureAwait(false);
            if (read == 0) break;
            length += read;
            if (length > max) return ([], -1);
        }
        return (buffer, length);
    }

    /// <summary>What an item's worst case may cost: its cheapest and its dearest candidate, as the router sees it now.</summary>
    private (decimal Cheapest, decimal Dearest) EstimateCost(ArraySegment<byte> item, RequestHints hints, CallerIdentity? caller)
    {
        using var chat = ChatRequest.TryParse(item, out _);
        // An item the pipeline will refuse before routing never reaches a model: it costs nothing.
        if (chat is null) return (0m, 0m);
        var route = router.Route(chat, new RoutingContext(hints, caller?.LocalOnly ?? false));
        if (caller is not null) route = caller.FilterCandidates(route);
        // No route now (a circuit, a budget...): should one open up by the time the item runs, it may
        // have all the room there is, and the router holds it to that.
        if (route.Error is not null || route.Candidates.Count == 0) return (0m, decimal.MaxValue);

        var cheapest = decimal.MaxValue;
        var dearest = 0m;
        foreach (var c in route.Evaluated)
        {
            if (c.Removed is not null || !Contains(route.Candidates, c.Candidate)) continue;
            cheapest = Math.Min(cheapest, c.MaxCostUsd);
            dearest = Math.Max(dearest, c.MaxCostUsd);
        }
        return cheapest == decimal.MaxValue ? (0m, decimal.MaxValue) : (cheapest, dearest);
    }

    private static bool Contains(IReadOnlyList<Candidate> candidates, Candidate c)
    {
        for (var i = 0; i < candidates.Count; i++)
        {
            if (ReferenceEquals(candidates[i], c)) return true;
        }
        return false;
    }

    /// <summary>The result of one item, as its result entry shows it.</summary>
    private sealed class ItemResult
    {
        public int Status;

        /// <summary>The chat.completion of a succeeded item.</summary>
        public byte[] Body = [];

        /// <summary>What a failed or skipped item got instead.</summary>
        public ApiError? Error;
        public TokenUsage Usage;
        public List<KeyValuePair<string, string>>? Headers;
        public decimal CostUsd;
        public string Outcome = BatchMetrics.Failed;
    }

    /// <summary>
    /// The properties a batch item's log lines carry (Serilog turns a scope of key/value pairs into
    /// fields): the request log line of each item names its batch and position.
    /// </summary>
    private sealed class ItemScope(string batchId, int index) : IReadOnlyList<KeyValuePair<string, object>>
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

    /// <summary>One batch being run.</summary>
    private sealed class Run(BatchRunner owner, HttpContext outer, List<ArraySegment<byte>> items, int parallelism, BatchCostGate? cost, RequestHints hints, ApiError? hintError)
    {
        private readonly ItemResult?[] _results = new ItemResult?[items.Count];
        private readonly CallerIdentity? _caller = CallerIdentity.Of(outer);
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

        public async Task ExecuteAsync()
        {
            var aborted = outer.RequestAborted;
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

            var (cheapest, dearest) = owner.EstimateCost(item, hints, _caller);
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
            var result = new ItemResult();
            var batchSetLimit = false;
            try
            {
                using var scope = owner._logger.BeginScope(new ItemScope(Id, index));
                owner._chatMetrics.RequestStarted();
                using var activity = GatewayTracing.StartRequest();
                try
                {
                    (result, batchSetLimit) = await RunThroughPipelineAsync(item, reservation).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !outer.RequestAborted.IsCancellationRequested)
                {
                    // As the error middleware would for a request of its own: logged, and a 500 for this item only.
                    owner._logger.LogError(e, "Batch {BatchId} item {Index} failed in the gateway", Id, index);
                    result = Refusal(ApiError.Internal(), BatchMetrics.Failed);
                }
                finally
                {
                    owner._chatMetrics.RequestEnded();
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
                        owner._logger.LogWarning("Batch {BatchId} item {Index} cost {CostUsd} USD, more than the {ReservedUsd} USD reserved for it: the provider reported more tokens than estimated",
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
        private async Task<(ItemResult Result, bool BatchSetLimit)> RunThroughPipelineAsync(ArraySegment<byte> item, decimal? reservation)
        {
            var pipeline = owner._pipeline;
            var start = pipeline.Start();
            if (item.Count > owner._maxItemBytes)
            {
                return (await TakeAsync(pipeline.Refuse(ApiError.RequestTooLarge(owner._maxItemBytes), start)).ConfigureAwait(false), false);
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
                outcome = await pipeline.ExecuteAsync(chat, _caller, itemHints, outer.RequestAborted, start).ConfigureAwait(false);
            }
            return (await TakeAsync(outcome).ConfigureAwait(false), batchSetLimit);
        }

        /// <summary>The item's result from its outcome, which is then completed: the item was delivered in full.</summary>
        private static async Task<ItemResult> TakeAsync(PipelineOutcome outcome)
        {
            await using (outcome.ConfigureAwait(false))
            {
                var result = new ItemResult { Usage = outcome.Usage };
                foreach (var header in GatewayHeaders.Of(outcome))
                {
                    if (s_resultHeaders.Contains(header.Key)) (result.Headers ??= []).Add(header);
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
        private static bool IsCostLimitRefusal(ItemResult result) =>
            result.Status == StatusCodes.Status400BadRequest && result.Error?.Code == RoutingErrorCodes.MaxCostExceeded;

        private static ItemResult StreamRefusal() => Refusal(ApiError.InvalidRequest(
            "Batch items are answered whole: remove \"stream\": true (or send it to /v1/chat/completions).",
            "stream", BatchErrorCodes.StreamNotSupported), BatchMetrics.Failed);

        private static ItemResult CostLimitReached(BatchCostGate gate) => Refusal(new ApiError(StatusCodes.Status429TooManyRequests,
            ErrorTypes.InsufficientQuota, BatchErrorCodes.CostLimitReached,
            $"Not run: the batch's max_cost_usd of {gate.CapUsd.ToString(CultureInfo.InvariantCulture)} leaves no room for this item's estimated worst-case cost."), BatchMetrics.Skipped);

        private static ItemResult Refusal(ApiError error, string outcome) => new() { Status = error.Status, Error = error, Outcome = outcome };

        private void Finish(int index, ItemResult result)
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
            owner._metrics.Item(result.Outcome);
            var done = Interlocked.Increment(ref _done);
            if (done % _progressEvery == 0 && done < items.Count)
            {
                owner._logger.LogInformation("Batch {BatchId}: {Done}/{Items} done, {Succeeded} succeeded, {Failed} failed, {Skipped} skipped, cost {CostUsd} USD",
                    Id, done, items.Count, Succeeded, Failed, Skipped, CostUsd);
            }
        }

        public ArrayBufferWriter<byte> WriteResult()
        {
            var buffer = new ArrayBufferWriter<byte>(4096);
            long prompt = 0, completion = 0;
            using (var w = new Utf8JsonWriter(buffer, ApiError.JsonOptions))
            {
                w.WriteStartObject();
                w.WriteString("object"u8, "batch.chat.completions");
                w.WriteString("id"u8, Id);
                w.WriteStartArray("data"u8);
                for (var i = 0; i < _results.Length; i++)
                {
                    var r = _results[i]!;
                    w.WriteStartObject();
                    w.WriteNumber("index"u8, i);
                    w.WriteNumber("status"u8, r.Status);
                    if (r.Outcome == BatchMetrics.Succeeded)
                    {
                        w.WritePropertyName("response"u8);
                        w.WriteRawValue(r.Body, skipInputValidation: true);
                        prompt += r.Usage.Prompt;
                        completion += r.Usage.Completion;
                    }
                    else
                    {
                        w.WritePropertyName("error"u8);
                        r.Error!.WriteObject(w);
                    }
                    if (r.Headers is { } headers)
                    {
                        w.WriteStartObject("headers"u8);
                        foreach (var (name, value) in headers) w.WriteString(name, value);
                        w.WriteEndObject();
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("usage"u8);
                w.WriteNumber("prompt_tokens"u8, prompt);
                w.WriteNumber("completion_tokens"u8, completion);
                w.WriteNumber("total_tokens"u8, prompt + completion);
                w.WriteEndObject();
                w.WriteNumber("cost_usd"u8, CostUsd);
                w.WriteStartObject("counts"u8);
                w.WriteNumber("succeeded"u8, Succeeded);
                w.WriteNumber("failed"u8, Failed);
                w.WriteNumber("skipped"u8, Skipped);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            return buffer;
        }
    }
}
