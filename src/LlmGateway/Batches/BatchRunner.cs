using System.Globalization;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
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
    internal static readonly HashSet<string> ResultHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        GatewayHeaders.RequestId, GatewayHeaders.Provider, GatewayHeaders.Model, GatewayHeaders.TaskType,
        GatewayHeaders.Cache, GatewayHeaders.Attempts, GatewayHeaders.CostUsd, "retry-after",
    };

    private readonly BatchOptions _options = options.Value.Batches;

    /// <summary>Each item is held to the limit of a request of its own.</summary>
    internal int MaxItemBytes { get; } = options.Value.Limits.MaxRequestBytes;

    // Properties rather than captured parameters: each BatchRun uses them.
    internal GatewayPipeline Pipeline { get; } = pipeline;
    internal BatchMetrics Metrics { get; } = metrics;
    internal GatewayMetrics ChatMetrics { get; } = chatMetrics;
    internal ILogger Logger { get; } = logger;

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
        var run = new BatchRun(this, items, parallelism, capUsd is { } cap ? new BatchCostGate(cap) : null,
            CallerIdentity.Of(http), hints with { ConversationId = null }, hintError, http.RequestAborted);
        http.Response.Headers[BatchIdHeader] = run.Id;
        Metrics.BatchStarted();
        Logger.LogInformation("Batch {BatchId} started: {Items} items, parallelism {Parallelism}, max cost {MaxCostUsd}",
            run.Id, items.Count, parallelism, capUsd?.ToString(CultureInfo.InvariantCulture) ?? "none");
        try
        {
            await run.ExecuteAsync().ConfigureAwait(false);
        }
        finally
        {
            Metrics.BatchEnded();
            Logger.LogInformation("Batch {BatchId} ended: {Items} items, {Succeeded} succeeded, {Failed} failed, {Skipped} skipped, cost {CostUsd} USD",
                run.Id, items.Count, run.Succeeded, run.Failed, run.Skipped, run.CostUsd);
        }
        if (http.RequestAborted.IsCancellationRequested) return; // nobody to answer

        // :: Step 4: one answer with every item's result in input order; 200 even when items failed.
        var json = BatchResultJson.Write(run);
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
    internal (decimal Cheapest, decimal Dearest) EstimateCost(ArraySegment<byte> item, RequestHints hints, CallerIdentity? caller)
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
}
