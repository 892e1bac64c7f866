using System.Buffers;
using System.Globalization;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LlmGateway.Batches;

/// <summary>
/// POST /v1/batch/chat/completions: runs each item through <see cref="ChatCompletionsHandler"/> itself, on
/// an in-process HttpContext that carries the caller's identity and routing headers, so an item is
/// routed, cached, budgeted, rate-limited and recorded exactly like a request of its own. There is one
/// chat pipeline; this class only schedules it (bounded parallelism, the batch's cost cap) and collects
/// the answers in input order.
/// </summary>
public sealed class BatchRunner(
    IOptions<GatewayOptions> options,
    ChatCompletionsHandler handler,
    IModelRouter router,
    BatchMetrics metrics,
    GatewayMetrics chatMetrics,
    ILogger<BatchRunner> logger)
{
    public const string BatchIdHeader = "x-gateway-batch-id";

    /// <summary>The request headers that steer a chat request, passed on to every item.</summary>
    private static readonly string[] s_itemHeaders =
        [RoutingHeaders.TaskType, RoutingHeaders.LocalOnly, RoutingHeaders.NoFallback, RoutingHeaders.MaxCostUsd, "Cache-Control"];

    /// <summary>The response headers of an item that its result repeats.</summary>
    private static readonly string[] s_resultHeaders =
    [
        GatewayHeaders.RequestId, GatewayHeaders.Provider, GatewayHeaders.Model, GatewayHeaders.TaskType,
        GatewayHeaders.Cache, GatewayHeaders.Attempts, GatewayHeaders.CostUsd, "retry-after",
    ];

    private static readonly PathString s_chatPath = new("/v1/chat/completions");
    private readonly BatchOptions _options = options.Value.Batches;

    // Fields rather than captured parameters: the nested Run uses them.
    private readonly ChatCompletionsHandler _handler = handler;
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

        // :: Step 3: run the items, at most `parallelism` at once, admitted in input order.
        var run = new Run(this, http, items, parallelism, capUsd is { } cap ? new BatchCostGate(cap) : null);
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
    private (decimal Cheapest, decimal Dearest) EstimateCost(ArraySegment<byte> item, HttpContext outer, CallerIdentity? caller)
    {
        using var chat = ChatRequest.TryParse(item, out _);
        // An item the pipeline will refuse before routing never reaches a model: it costs nothing.
        if (chat is null) return (0m, 0m);
        var route = router.Route(chat, new RoutingContext(outer.Request.Headers, caller?.LocalOnly ?? false));
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
        public byte[] Body = [];
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
    private sealed class Run(BatchRunner owner, HttpContext outer, List<ArraySegment<byte>> items, int parallelism, BatchCostGate? cost)
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
                        Finish(i, Refusal(ApiError.InvalidRequest(
                            "Batch items are answered whole: remove \"stream\": true (or send it to /v1/chat/completions).",
                            "stream", BatchErrorCodes.StreamNotSupported), BatchMetrics.Failed));
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

            var (cheapest, dearest) = owner.EstimateCost(item, outer, _caller);
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
            var clientLimit = default(decimal?);
            try
            {
                using var scope = owner._logger.BeginScope(new ItemScope(Id, index));
                var http = NewItemContext(item, reservation, out clientLimit);
                owner._chatMetrics.RequestStarted();
                using var activity = GatewayTracing.StartRequest();
                try
                {
                    await owner._handler.HandleAsync(http).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !outer.RequestAborted.IsCancellationRequested)
                {
                    // As the error middleware would for a request of its own: logged, and a 500 for this item only.
                    owner._logger.LogError(e, "Batch {BatchId} item {Index} failed in the gateway", Id, index);
                    http.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    http.Response.Body = new MemoryStream(ApiError.Internal().ToJson());
                }
                finally
                {
                    owner._chatMetrics.RequestEnded();
                }
                Collect(http, result);
            }
            catch (OperationCanceledException)
            {
                result.Status = StatusCodes.Status499ClientClosedRequest;
                result.Body = ApiError.InvalidRequest("The batch request was cancelled.").ToJson();
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
                    if (IsCostLimitRefusal(result, reserved, clientLimit)) result = CostLimitReached(cost);
                }
                slots.Release();
                Finish(index, result);
            }
        }

        private DefaultHttpContext NewItemContext(ArraySegment<byte> item, decimal? reservation, out decimal? clientLimit)
        {
            clientLimit = null;
            var http = new DefaultHttpContext { RequestServices = outer.RequestServices };
            var request = http.Request;
            request.Method = HttpMethods.Post;
            request.Scheme = outer.Request.Scheme;
            request.Host = outer.Request.Host;
            request.Path = s_chatPath;
            request.ContentType = "application/json";
            request.ContentLength = item.Count;
            request.Body = new MemoryStream(item.Array!, item.Offset, item.Count, writable: false);
            var from = outer.Request.Headers;
            foreach (var name in s_itemHeaders)
            {
                if (from.TryGetValue(name, out var value)) request.Headers[name] = value;
            }
            if (reservation is { } reserved)
            {
                // The router keeps to candidates whose worst case fits what the batch reserved, or the
                // client's own X-Max-Cost-Usd when that is tighter. An unreadable client value stays as
                // it is: the router refuses it before any candidate is called.
                var fits = true;
                if (from.TryGetValue(RoutingHeaders.MaxCostUsd, out var own))
                {
                    fits = decimal.TryParse(own.ToString().Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var limit);
                    if (fits) clientLimit = limit;
                }
                if (fits && (clientLimit is null || reserved < clientLimit))
                {
                    request.Headers[RoutingHeaders.MaxCostUsd] = reserved.ToString(CultureInfo.InvariantCulture);
                }
            }
            if (_caller is not null) http.Features.Set(_caller);
            http.Connection.RemoteIpAddress = outer.Connection.RemoteIpAddress;
            http.RequestAborted = outer.RequestAborted;
            http.Response.Body = new MemoryStream();
            return http;
        }

        private static void Collect(HttpContext http, ItemResult result)
        {
            result.Status = http.Response.StatusCode;
            result.Body = ((MemoryStream)http.Response.Body).ToArray();
            var headers = http.Response.Headers;
            foreach (var name in s_resultHeaders)
            {
                if (headers.TryGetValue(name, out var value)) (result.Headers ??= []).Add(new(name, value.ToString()));
            }
            if (result.Status == StatusCodes.Status200OK)
            {
                result.Outcome = BatchMetrics.Succeeded;
                if (headers.TryGetValue(GatewayHeaders.CostUsd, out var cost)
                    && decimal.TryParse(cost.ToString(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var usd))
                {
                    result.CostUsd = usd;
                }
            }
        }

        /// <summary>
        /// The router's 400 for "no candidate fits X-Max-Cost-Usd" is the batch's cap when the batch set
        /// that limit (it was tighter than the client's own): the batch ran out of room, the client did
        /// nothing wrong.
        /// </summary>
        private static bool IsCostLimitRefusal(ItemResult result, decimal reserved, decimal? clientLimit) =>
            result.Status == StatusCodes.Status400BadRequest
            && (clientLimit is null || reserved < clientLimit)
            && ErrorCode(result.Body) == RoutingErrorCodes.MaxCostExceeded;

        private static ItemResult CostLimitReached(BatchCostGate gate) => Refusal(new ApiError(StatusCodes.Status429TooManyRequests,
            ErrorTypes.InsufficientQuota, BatchErrorCodes.CostLimitReached,
            $"Not run: the batch's max_cost_usd of {gate.CapUsd.ToString(CultureInfo.InvariantCulture)} leaves no room for this item's estimated worst-case cost."), BatchMetrics.Skipped);

        private static ItemResult Refusal(ApiError error, string outcome) => new() { Status = error.Status, Body = error.ToJson(), Outcome = outcome };

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
                    if (r.Outcome == BatchMetrics.Succeeded && IsJson(r.Body))
                    {
                        w.WritePropertyName("response"u8);
                        w.WriteRawValue(r.Body, skipInputValidation: true);
                        (var p, var c) = ReadUsage(r.Body);
                        prompt += p;
                        completion += c;
                    }
                    else
                    {
                        w.WritePropertyName("error"u8);
                        WriteError(w, r);
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

        /// <summary>The error object of an item's OpenAI-shaped error body, or one that says the body was not one.</summary>
        private static void WriteError(Utf8JsonWriter w, ItemResult r)
        {
            if (ErrorObject(r.Body) is { } inner)
            {
                w.WriteRawValue(inner, skipInputValidation: true);
                return;
            }
            w.WriteStartObject();
            w.WriteString("message"u8, string.Create(CultureInfo.InvariantCulture, $"The item ended with status {r.Status} and no error body."));
            w.WriteString("type"u8, r.Status >= 500 ? ErrorTypes.Api : ErrorTypes.InvalidRequest);
            w.WriteNull("param"u8);
            w.WriteNull("code"u8);
            w.WriteEndObject();
        }

        private static bool IsJson(byte[] body)
        {
            try
            {
                var reader = new Utf8JsonReader(body);
                if (!reader.Read()) return false;
                reader.Skip();
                return !reader.Read();
            }
            catch (JsonException)
            {
                return false;
            }
        }

        /// <summary>The <c>{...}</c> inside <c>{"error":{...}}</c>, when the body is that.</summary>
        private static ReadOnlySpan<byte> ErrorObject(byte[] body)
        {
            if (!IsJson(body)) return default;
            var reader = new Utf8JsonReader(body);
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject) return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isError = reader.ValueTextEquals("error"u8);
                reader.Read();
                if (isError && reader.TokenType == JsonTokenType.StartObject)
                {
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    return body.AsSpan(start, (int)reader.BytesConsumed - start);
                }
                reader.Skip();
            }
            return default;
        }

        private static string? ErrorCode(byte[] body)
        {
            var inner = ErrorObject(body);
            if (inner.IsEmpty) return null;
            using var doc = JsonDocument.Parse(inner.ToArray());
            return doc.RootElement.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String ? code.GetString() : null;
        }

        private static (long Prompt, long Completion) ReadUsage(byte[] body)
        {
            using var doc = JsonDocument.Parse(body);
            if (!doc.RootElement.TryGetProperty("usage", out var usage) || usage.ValueKind != JsonValueKind.Object) return (0, 0);
            return (Number(usage, "prompt_tokens"), Number(usage, "completion_tokens"));
        }

        private static long Number(JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;
    }
}
