using System.Buffers;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Storage;
using LlmGateway.Streaming;
using Microsoft.Extensions.Options;

namespace LlmGateway.Responses;

/// <summary>
/// The Responses API ingress: <c>POST /v1/responses</c> is translated into a chat request and run by
/// the one <see cref="GatewayPipeline"/> (so routing, keys, RPM/TPM, cache, budgets, retries, fallbacks,
/// the ledger and metrics are the chat path's own), and its outcome is written back as a Response
/// object or the Responses event stream. Errors keep OpenAI's shape and the chat path's statuses, with
/// the gateway's headers on every answer.
/// </summary>
public sealed class ResponsesHandler(IOptions<GatewayOptions> options, GatewayPipeline pipeline, ResponseStore responses, TimeProvider time)
{
    private CreateIngress? _create;

    /// <summary>What one POST holds from parsing to the end of its answer.</summary>
    private sealed class Turn(ResponsesRequest request, CallerIdentity? caller, StoredResponse? previous, RequestStart start)
    {
        public ResponsesRequest Request { get; } = request;
        public CallerIdentity? Caller { get; } = caller;
        public StoredResponse? Previous { get; } = previous;
        public RequestStart Start { get; } = start;
    }

    // Made on the first request: a field initializer can't pass the handler itself.
    public Task CreateAsync(HttpContext http) => (_create ??= new(this, pipeline, options.Value.Limits.MaxRequestBytes)).RunAsync(http);

    /// <summary>The Responses dialect of the shared ingress skeleton: the handler's own steps 2 and 6.</summary>
    private sealed class CreateIngress(ResponsesHandler handler, GatewayPipeline pipeline, int maxRequestBytes) : IngressRunner<Turn>(pipeline, maxRequestBytes)
    {
        protected override ValueTask<IngressRequest<Turn>> PrepareAsync(HttpContext http, ReadOnlyMemory<byte> body, RequestStart start) =>
            handler.PrepareAsync(http, body, start);

        protected override Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, Turn? turn) =>
            handler.WriteAsync(http, outcome, turn);

        protected override void Release(Turn? turn) => turn?.Request.Dispose();
    }

    /// <summary>
    /// :: Step 2: the body parsed and translated (a previous response's turns in front); the headers as hints.
    /// </summary>
    private async ValueTask<IngressRequest<Turn>> PrepareAsync(HttpContext http, ReadOnlyMemory<byte> body, RequestStart start)
    {
        var request = ResponsesRequest.Parse(body, out var parseError);
        if (request is null) return IngressRequest<Turn>.Refuse(parseError!);
        try
        {
            var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var headerError);
            if (headerError is not null) return Refused(request, headerError);

            var caller = CallerIdentity.Of(http);
            StoredResponse? previous = null;
            if (request.PreviousResponseId is { } previousId)
            {
                try
                {
                    previous = await responses.GetAsync(caller, previousId).ConfigureAwait(false);
                }
                catch (StoreUnavailableException)
                {
                    return Refused(request, StoreUnavailable());
                }
                if (previous is null) return Refused(request, PreviousNotFound(previousId));
            }

            var chat = ChatRequest.TryParse(request.ToChatBody(previous?.History.Messages() ?? []), out var chatError);
            if (chat is null) return Refused(request, chatError!);
            return IngressRequest<Turn>.Run(chat, caller, hints, new Turn(request, caller, previous, start));
        }
        catch
        {
            request.Dispose();
            throw;
        }
    }

    private static IngressRequest<Turn> Refused(ResponsesRequest request, ApiError error)
    {
        request.Dispose();
        return IngressRequest<Turn>.Refuse(error);
    }

    /// <summary>:: Step 6: the outcome in the Responses API's shapes; how far it got.</summary>
    private async Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, Turn? turn)
    {
        var response = http.Response;
        GatewayHeaders.Write(response, outcome);
        if (outcome.Kind == OutcomeKind.Error || turn is null)
        {
            await outcome.Error!.WriteAsync(response).ConfigureAwait(false);
            return Delivery.Delivered;
        }

        var answer = new ResponseObject(ResponseIds.NewResponseId(), turn.Start.StartedAt.ToUnixTimeSeconds(),
            outcome.Model.Length > 0 ? outcome.Model : turn.Request.Model, ResponseEcho.From(turn.Request.Root));
        if (outcome.Kind == OutcomeKind.Stream) return await StreamAsync(http, outcome.Stream!, answer, turn).ConfigureAwait(false);

        if (!ResponseTranslator.FromChatCompletion(outcome.Body.Span, answer, time.GetUtcNow().ToUnixTimeSeconds()))
        {
            await ApiError.UpstreamError("The provider's answer could not be read as a chat completion.").WriteAsync(response).ConfigureAwait(false);
            return Delivery.Delivered;
        }
        answer.Usage ??= Estimated(outcome.Usage);
        // Kept before the client has it, so a next turn sent as soon as it arrives finds it.
        if (turn.Request.Store) await responses.SaveAsync(turn.Caller, answer, turn.Previous?.History, turn.Request.InputMessages, InputItems(turn, answer)).ConfigureAwait(false);
        var body = answer.ToJson();
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
        return Delivery.Delivered;
    }

    private async Task<Delivery> StreamAsync(HttpContext http, AnswerStream stream, ResponseObject answer, Turn turn)
    {
        var response = http.Response;
        // Read once: Kestrel takes a lock on every read of it (the chat relay does the same).
        var aborted = http.RequestAborted;
        SseResponseWriter.Start(response);
        var events = new ResponsesStreamTranslator(answer, response.BodyWriter, time);
        events.Start();
        if (!await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false)) return Deliveries.Undelivered(http);
        while (true)
        {
            var ev = await stream.ReadAsync().ConfigureAwait(false);
            switch (ev.Kind)
            {
                case StreamEventKind.End:
                    // A provider that reported no usage still gets the pipeline's estimate, as the ledger does.
                    answer.Usage ??= Estimated(stream.Usage);
                    events.Complete();
                    // Kept before response.completed leaves, as a non-streamed answer is kept before its body.
                    if (turn.Request.Store) await responses.SaveAsync(turn.Caller, answer, turn.Previous?.History, turn.Request.InputMessages, InputItems(turn, answer)).ConfigureAwait(false);
                    return await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false) ? Delivery.Delivered : Deliveries.Undelivered(http);
                case StreamEventKind.Failed:
                    // response.failed is the Responses API's own end for a broken answer: a client reads it as
                    // a failure (never as complete), so the stream ends there, as OpenAI ends it.
                    events.Fail(ev.Error!);
                    await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false);
                    return Delivery.Delivered;
                default:
                    events.Chunk(ev.Data.Span);
                    break;
            }
            if (!await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false)) return Deliveries.Undelivered(http);
        }
    }

    private static ResponseUsage? Estimated(TokenUsage usage) =>
        usage.IsEmpty ? null : new ResponseUsage(usage.Prompt, usage.Completion, usage.CachedPrompt);

    public async Task<IResult> GetAsync(HttpContext http, string id)
    {
        http.Response.Headers[GatewayHeaders.RequestId] = GatewayHeaders.NewRequestId();
        var (stored, error) = await FindAsync(http, id).ConfigureAwait(false);
        return stored is null ? error!.ToResult() : Results.Bytes(stored.Response, "application/json");
    }

    /// <summary>The caller's stored response, or the 404 (unknown, foreign, malformed id) or 503 (store down).</summary>
    private async Task<(StoredResponse? Stored, ApiError? Error)> FindAsync(HttpContext http, string id)
    {
        if (!ResponseIds.IsResponseId(id)) return (null, NotFound(id));
        try
        {
            var stored = await responses.GetAsync(CallerIdentity.Of(http), id).ConfigureAwait(false);
            return stored is null ? (null, NotFound(id)) : (stored, null);
        }
        catch (StoreUnavailableException)
        {
            return (null, StoreUnavailable());
        }
    }

    private static byte[] InputItems(Turn turn, ResponseObject answer) =>
        ResponseInputItems.Write(turn.Request.Root.TryGetProperty("input"u8, out var input) ? input : default, answer.Id);

    /// <summary>
    /// GET /v1/responses/{id}/input_items: the stored response's input items, a page at a time, in OpenAI's
    /// list shape; the same scope as GET /v1/responses/{id} (another key's response is simply not found).
    /// </summary>
    public async Task<IResult> ListInputItemsAsync(HttpContext http, string id)
    {
        http.Response.Headers[GatewayHeaders.RequestId] = GatewayHeaders.NewRequestId();
        if (ResponseInputItems.ReadQuery(http.Request.Query, out var query) is { } queryError) return queryError.ToResult();
        var (stored, error) = await FindAsync(http, id).ConfigureAwait(false);
        if (stored is null) return error!.ToResult();
        var page = ResponseInputItems.Page(stored.InputItems, query, out var pageError);
        return page is null ? pageError!.ToResult() : Results.Bytes(page, "application/json");
    }

    public async Task<IResult> DeleteAsync(HttpContext http, string id)
    {
        http.Response.Headers[GatewayHeaders.RequestId] = GatewayHeaders.NewRequestId();
        if (!ResponseIds.IsResponseId(id)) return NotFound(id).ToResult();
        bool deleted;
        try
        {
            deleted = await responses.DeleteAsync(CallerIdentity.Of(http), id).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            return StoreUnavailable().ToResult();
        }
        if (!deleted) return NotFound(id).ToResult();
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id"u8, id);
            w.WriteString("object"u8, "response.deleted"u8);
            w.WriteBoolean("deleted"u8, true);
            w.WriteEndObject();
        }
        return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
    }

    // The same answer for an id that never existed, expired, was deleted, was not stored, or belongs to another key.
    private static ApiError NotFound(string id) =>
        new(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, ErrorCodes.NotFound, $"Response with id '{Short(id)}' not found.", "response_id");

    private static ApiError PreviousNotFound(string id) =>
        new(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, "previous_response_not_found", $"Previous response with id '{Short(id)}' not found.", "previous_response_id");

    private static ApiError StoreUnavailable() =>
        new(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, "store_unavailable", "Stored responses can't be read right now: the gateway's store is unreachable.");

    private static string Short(string s) => s.Length <= 128 ? s : s[..128] + "…";
}
