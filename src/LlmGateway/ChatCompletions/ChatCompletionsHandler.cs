using System.Buffers;
using System.Globalization;
using LlmGateway.Auth;
using LlmGateway.Caching;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Streaming;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LlmGateway.ChatCompletions;

/// <summary>Reads one endpoint's request body: the parsed request, or the 400 that says what is wrong.</summary>
public delegate GatewayRequest? RequestParser(ReadOnlyMemory<byte> body, out ApiError? error);

/// <summary>
/// POST /v1/chat/completions (and /v1/embeddings, which differs only in how its body is read and in
/// never streaming), start to finish. The steps are numbered; each capability (routing, resilience,
/// cache, budgets, keys) owns one of them.
/// </summary>
public sealed class ChatCompletionsHandler(
    IOptions<GatewayOptions> options,
    IModelRouter router,
    CandidateExecutor executor,
    ResponseCache cache,
    RequestRecorder recorder,
    KeyRateLimits keyLimits,
    ConversationService conversations,
    TimeProvider time,
    ILogger<ChatCompletionsHandler> logger)
{
    private readonly GatewayOptions _options = options.Value;

    public Task HandleAsync(HttpContext http) => HandleAsync(http, ChatRequest.TryParse);

    public async Task HandleAsync(HttpContext http, RequestParser parse)
    {
        var started = time.GetTimestamp();
        var record = new RequestRecord { RequestId = GatewayHeaders.NewRequestId(), StartedAt = time.GetUtcNow() };
        http.Response.Headers[GatewayHeaders.RequestId] = record.RequestId;
        byte[]? rented = null;
        GatewayRequest? request = null;
        GatewayContext? context = null;
        KeyLimitTicket? keyTicket = null;
        try
        {
            // :: Step 1: read the body under the size limit (413 before reading more than the limit).
            var (buffer, length, bodyError) = await ReadBodyAsync(http, _options.Limits.MaxRequestBytes).ConfigureAwait(false);
            rented = buffer;
            if (bodyError is not null)
            {
                await FailAsync(http, record, bodyError).ConfigureAwait(false);
                return;
            }

            // :: Step 2: parse, reading only the fields the gateway acts on (and the headers it echoes).
            request = parse(buffer.AsMemory(0, length), out var parseError);
            if (request is null)
            {
                await FailAsync(http, record, parseError!).ConfigureAwait(false);
                return;
            }
            if (HeaderValues.CheckEchoedHeaders(http.Request.Headers) is { } headerError)
            {
                await FailAsync(http, record, headerError).ConfigureAwait(false);
                return;
            }

            // :: Step 2a: conversation history (Conversations/): with X-Conversation-Id the stored turns go in front of the messages.
            ConversationTurn? turn = null;
            if (request is ChatRequest chat && http.Request.Headers.TryGetValue(ConversationService.IdHeader, out var conversationId))
            {
                turn = await conversations.BeginAsync(http, conversationId, chat).ConfigureAwait(false);
                if (turn.Error is not null)
                {
                    await FailAsync(http, record, turn.Error).ConfigureAwait(false);
                    return;
                }
                request = turn.Request;
            }
            record.RequestedModel = request.Model;
            record.Stream = request.Stream;
            context = new GatewayContext(http, request, record, started, time);

            // :: Step 2b: the caller's gateway key (Auth/, null when Gateway:Auth:Mode is none) may refuse the model.
            var caller = CallerIdentity.Of(http);
            record.KeyId = caller?.KeyId;
            if (caller is not null && !caller.MayRequest(request.Model))
            {
                await FailAsync(http, record, AuthErrors.ModelNotAllowed(caller.KeyId, request.Model)).ConfigureAwait(false);
                return;
            }

            // :: Step 3: route to the ordered candidates, without those the caller's key may not use.
            var route = router.Route(request, new RoutingContext(http.Request.Headers, caller?.LocalOnly ?? false));
            if (caller is not null) route = caller.FilterCandidates(route);
            context.Route = route;
            record.TaskType = route.TaskType;
            record.Route = route.Summary; // the log line says why, above all when nothing was left
            http.Response.Headers[GatewayHeaders.TaskType] = route.TaskType;
            if (route.Error is not null)
            {
                await FailAsync(http, record, route.Error).ConfigureAwait(false);
                return;
            }

            // :: Step 3b: the key's RPM and TPM (429 with Retry-After; x-ratelimit-* headers either way).
            if (caller is not null)
            {
                var (limitError, ticket) = await keyLimits.AdmitAsync(http, caller, KeyRateLimits.EstimateTokens(request, route)).ConfigureAwait(false);
                keyTicket = ticket;
                if (limitError is not null)
                {
                    await FailAsync(http, record, limitError).ConfigureAwait(false);
                    return;
                }
            }

            // :: Step 4: the response cache. A hit answers here; an identical request in flight is waited for.
            await using var cached = await cache.LookupAsync(context).ConfigureAwait(false);
            if (cached.Hit is { } hit)
            {
                if (turn is not null) await conversations.AppendAsync(turn, hit.Body).ConfigureAwait(false); // :: Step 6b, for a hit
                await cache.WriteHitAsync(context, hit).ConfigureAwait(false);
                return;
            }

            // :: Step 5: try the candidates until one commits.
            using var total = new TimedCancellation(time, http.RequestAborted);
            total.CancelAfter(TimeSpan.FromSeconds(_options.Resilience.TotalTimeoutSeconds));
            await using var execution = await executor.ExecuteAsync(context, total).ConfigureAwait(false);
            if (execution.Error is not null)
            {
                SetRouteHeaders(http, record);
                await FailAsync(http, record, execution.Error).ConfigureAwait(false);
                return;
            }

            // :: Step 6: answer, then keep a complete answer for the next identical request.
            if (execution.Response!.Stream is { } stream)
            {
                var observed = cached.Observe(stream, execution);
                await StreamAsync(context, execution, turn is null ? observed : turn.Observe(observed, execution)).ConfigureAwait(false);
            }
            else
            {
                // :: Step 6b: a conversation keeps the turn before the client has the answer (a stream keeps it before [DONE]).
                if (turn is not null) await conversations.AppendAsync(turn, execution.Response.Body).ConfigureAwait(false);
                await CompleteAsync(context, execution).ConfigureAwait(false);
            }
            await cache.CompleteAsync(cached, context, execution).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            record.Outcome = RequestOutcomes.Cancelled;
            record.Status = 499; // nginx's "client closed request": nobody received it
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await FailAsync(http, record, ApiError.RequestTooLarge(_options.Limits.MaxRequestBytes)).ConfigureAwait(false);
        }
        finally
        {
            // :: Step 7: record the outcome once, for the log, metrics, budgets and the ledger.
            record.Duration = time.GetElapsedTime(started);
            record.Overhead = context?.Overhead() ?? record.Duration;
            // A cache hit keeps its tokens (they were served) but cost nothing.
            if (record.CacheResult != CacheResults.Hit && !record.Usage.IsEmpty && _options.Models.TryGetValue(record.Model, out var model))
            {
                record.CostUsd = Pricing.CostUsd(model, record.Usage);
            }
            if (context?.Admission is { } ticket)
            {
                // Settled even for broken and cancelled streams: what was used was paid for.
                await ticket.SettleAsync(record.CostUsd).ConfigureAwait(false);
            }
            if (keyTicket is not null)
            {
                // The key's TPM was charged an estimate at admission; now it pays what was used.
                await keyTicket.SettleAsync(record.Usage).ConfigureAwait(false);
            }
            recorder.Record(record);
            request?.Dispose();
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task CompleteAsync(GatewayContext context, Execution execution)
    {
        var response = execution.Response!;
        var record = context.Record;
        record.Usage = response.Usage;
        record.Status = StatusCodes.Status200OK;
        var cost = Pricing.CostUsd(execution.Candidate!.Model, response.Usage);

        var http = context.Http;
        SetRouteHeaders(http, record);
        http.Response.Headers[GatewayHeaders.CostUsd] = cost.ToString("0.##########", CultureInfo.InvariantCulture);
        http.Response.Headers[GatewayHeaders.OverheadMs] = FormatMs(context.Overhead());
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = response.Body.Length;
        await http.Response.Body.WriteAsync(response.Body, http.RequestAborted).ConfigureAwait(false);
    }

    private async Task StreamAsync(GatewayContext context, Execution execution, ChatStream stream)
    {
        var http = context.Http;
        var record = context.Record;
        var wantsUsage = context.Chat.ClientWantsUsage;
        var cancellation = execution.Cancellation!;
        var idle = execution.StreamIdleTimeout;

        SetRouteHeaders(http, record);
        http.Response.Headers[GatewayHeaders.OverheadMs] = FormatMs(context.Overhead());
        SseResponseWriter.Start(http.Response);
        record.Status = StatusCodes.Status200OK;

        try
        {
            // The events read before the commit point, then everything else as it arrives.
            foreach (var (kind, data) in execution.Pending)
            {
                if (kind != StreamEventKind.Usage || wantsUsage) SseResponseWriter.Write(http.Response, data);
            }
            if (execution.EndedBeforeContent)
            {
                await SseResponseWriter.WriteDoneAsync(http.Response, http.RequestAborted).ConfigureAwait(false);
                return;
            }
            if (!await SseResponseWriter.FlushAsync(http.Response, http.RequestAborted).ConfigureAwait(false))
            {
                record.Outcome = RequestOutcomes.Cancelled;
                return;
            }
            record.TimeToFirstToken = time.GetElapsedTime(context.StartTimestamp);

            while (true)
            {
                cancellation.CancelAfter(idle);
                var readStarted = time.GetTimestamp();
                StreamEvent ev;
                try
                {
                    ev = await stream.ReadAsync(cancellation.Token).ConfigureAwait(false);
                }
                finally
                {
                    context.AddUpstreamTime(readStarted);
                }

                switch (ev.Kind)
                {
                    case StreamEventKind.End:
                        await SseResponseWriter.WriteDoneAsync(http.Response, http.RequestAborted).ConfigureAwait(false);
                        return;
                    case StreamEventKind.Failed:
                        await BreakStreamAsync(http, record, ev.Failure!.ToApiError()).ConfigureAwait(false);
                        return;
                    case StreamEventKind.Usage when !wantsUsage:
                        continue;
                }
                if (!await SseResponseWriter.WriteAndFlushAsync(http.Response, ev.Data.Span, http.RequestAborted).ConfigureAwait(false))
                {
                    record.Outcome = RequestOutcomes.Cancelled;
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (!http.RequestAborted.IsCancellationRequested)
        {
            // The idle or the total timeout, after the client already has part of the answer.
            var error = ApiError.UpstreamTimeout($"Provider '{record.Provider}' stopped sending in the middle of the answer.");
            await BreakStreamAsync(http, record, error).ConfigureAwait(false);
        }
        finally
        {
            // Whatever happened, the usage seen so far is recorded: a broken stream was still paid for.
            record.Usage = stream.Usage;
        }
    }

    private static readonly TimeSpan BrokenStreamGrace = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Ends a stream that already started: one error event, then the connection is aborted so no client
    /// can mistake the truncated answer for a complete one (there is no [DONE]).
    /// </summary>
    private async Task BreakStreamAsync(HttpContext http, RequestRecord record, ApiError error)
    {
        record.Outcome = RequestOutcomes.Broken;
        record.ErrorCode = error.Code;
        logger.LogWarning("Stream {RequestId} from {Provider} broke after it started: {Error}", record.RequestId, record.Provider, error.Message);
        try
        {
            await SseResponseWriter.WriteErrorAsync(http.Response, error, http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The client is already gone.
        }
        // A clean end, even without [DONE], lets a client return the truncated text as if it were
        // complete (the OpenAI .NET SDK does); an aborted connection makes every client fail. Kestrel
        // drops bytes still queued for the socket when it aborts, so the client first gets a moment
        // (real time: this is the network's, not the gateway's) to receive the error event, or to hang up.
        try
        {
            await Task.Delay(BrokenStreamGrace, http.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        http.Abort();
    }

    private static Task FailAsync(HttpContext http, RequestRecord record, ApiError error)
    {
        record.Outcome = RequestOutcomes.Error;
        record.Status = error.Status;
        record.ErrorCode = error.Code;
        return error.WriteAsync(http.Response);
    }

    private static void SetRouteHeaders(HttpContext http, RequestRecord record)
    {
        var headers = http.Response.Headers;
        if (record.Provider.Length > 0) headers[GatewayHeaders.Provider] = record.Provider;
        if (record.Model.Length > 0) headers[GatewayHeaders.Model] = record.Model;
        headers[GatewayHeaders.Attempts] = record.Attempts.ToString(CultureInfo.InvariantCulture);
        headers[GatewayHeaders.Cache] = record.CacheResult;
    }

    private static string FormatMs(TimeSpan t) => t.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>Reads the body into a pooled buffer, refusing anything over <paramref name="max"/> bytes.</summary>
    private static async Task<(byte[] Buffer, int Length, ApiError? Error)> ReadBodyAsync(HttpContext http, int max)
    {
        var request = http.Request;
        if (request.ContentLength > max)
        {
            return ([], 0, ApiError.RequestTooLarge(max));
        }
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = max;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is { } known ? (int)Math.Max(known, 1) : 16 * 1024);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > max) return (buffer, 0, ApiError.RequestTooLarge(max));
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, max + 1));
                    Buffer.BlockCopy(buffer, 0, bigger, 0, length);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length), http.RequestAborted).ConfigureAwait(false);
                if (read == 0) break;
                length += read;
                if (length > max) return (buffer, 0, ApiError.RequestTooLarge(max));
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        if (length == 0)
        {
            return (buffer, 0, ApiError.InvalidRequest("The request body is empty; send a JSON request.", code: ErrorCodes.InvalidJson));
        }
        return (buffer, length, null);
    }
}

public static class GatewayHeaders
{
    public const string RequestId = "x-request-id";
    public const string Provider = "x-gateway-provider";
    public const string Model = "x-gateway-model";
    public const string TaskType = "x-gateway-task-type";
    public const string Cache = "x-gateway-cache";
    public const string Attempts = "x-gateway-attempts";
    public const string CostUsd = "x-gateway-cost-usd";
    public const string OverheadMs = "x-gateway-overhead-ms";

    public static string NewRequestId() => "req_" + Guid.NewGuid().ToString("N");
}
