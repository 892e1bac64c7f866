using System.Buffers;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Streaming;
using Microsoft.Extensions.Options;

namespace LlmGateway.ChatCompletions;

/// <summary>Reads one endpoint's request body: the parsed request, or the 400 that says what is wrong.</summary>
public delegate GatewayRequest? RequestParser(ReadOnlyMemory<byte> body, out ApiError? error);

/// <summary>
/// The OpenAI ingress of POST /v1/chat/completions (and /v1/embeddings, which differs only in how its
/// body is read and in never streaming): reads the body and the headers into a request, hints and a
/// caller, runs the <see cref="GatewayPipeline"/>, and writes its outcome in OpenAI's shapes (a JSON
/// body, an SSE stream of chunks, an error body), always with the gateway's headers.
/// </summary>
public sealed class ChatCompletionsHandler(IOptions<GatewayOptions> options, GatewayPipeline pipeline)
{
    private readonly int _maxRequestBytes = options.Value.Limits.MaxRequestBytes;

    public Task HandleAsync(HttpContext http) => HandleAsync(http, ChatRequest.TryParse);

    public async Task HandleAsync(HttpContext http, RequestParser parse)
    {
        var start = pipeline.Start();
        // Set first, so even the error middleware's 500 names the request.
        http.Response.Headers[GatewayHeaders.RequestId] = start.RequestId;
        byte[]? rented = null;
        PipelineOutcome? outcome = null;
        try
        {
            // :: Step 1: read the body under the size limit (413 before reading more than the limit).
            ApiError? refusal;
            var length = 0;
            try
            {
                (rented, length, refusal) = await RequestBody.ReadAsync(http, _maxRequestBytes).ConfigureAwait(false);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                refusal = ApiError.RequestTooLarge(_maxRequestBytes);
            }

            // :: Step 2: parse, read the hints, and run the pipeline (steps 2a to 6 are its own).
            outcome = refusal is not null
                ? pipeline.Refuse(refusal, start)
                : await RunAsync(http, parse, rented.AsMemory(0, length), start).ConfigureAwait(false);
            if (outcome is null) return; // the client left while the pipeline ran: recorded there

            var delivery = await WriteAsync(http, outcome).ConfigureAwait(false);
            await outcome.CompleteAsync(delivery).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // Nobody to answer. The pipeline recorded it if it ran; otherwise it is recorded here.
            outcome ??= pipeline.Refuse(ApiError.InvalidRequest("The client closed the request."), start);
            await outcome.CompleteAsync(Delivery.ClientGone).ConfigureAwait(false);
        }
        finally
        {
            if (outcome is not null) await outcome.DisposeAsync().ConfigureAwait(false);
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The body parsed, the headers read as hints, then the pipeline; null when the client left while it ran.</summary>
    private async Task<PipelineOutcome?> RunAsync(HttpContext http, RequestParser parse, ReadOnlyMemory<byte> body, RequestStart start)
    {
        var request = parse(body, out var parseError);
        if (request is null) return pipeline.Refuse(parseError!, start);
        var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var headerError);
        if (headerError is not null)
        {
            request.Dispose();
            return pipeline.Refuse(headerError, start);
        }

        try
        {
            return await pipeline.ExecuteAsync(request, CallerIdentity.Of(http), hints, http.RequestAborted, start).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>:: Step 6: the outcome in OpenAI's shapes; how far it got.</summary>
    private static async Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome)
    {
        var response = http.Response;
        GatewayHeaders.Write(response, outcome);
        switch (outcome.Kind)
        {
            case OutcomeKind.Error:
                await outcome.Error!.WriteAsync(response).ConfigureAwait(false);
                return Delivery.Delivered;
            case OutcomeKind.Answer:
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = "application/json";
                response.ContentLength = outcome.Body.Length;
                // A large answer to a client that stopped reading is cut off like a stream (see ClientWriteTimeout).
                await ClientWriteTimeout.For(http).RunAsync(response.Body.WriteAsync(outcome.Body, http.RequestAborted)).ConfigureAwait(false);
                return Delivery.Delivered;
            default:
                return await StreamAsync(http, outcome.Stream!).ConfigureAwait(false);
        }
    }

    private static async Task<Delivery> StreamAsync(HttpContext http, AnswerStream stream)
    {
        var response = http.Response;
        var wantsUsage = stream.ClientWantsUsage;
        SseResponseWriter.Start(response);
        while (true)
        {
            var ev = await stream.ReadAsync().ConfigureAwait(false);
            switch (ev.Kind)
            {
                case StreamEventKind.End:
                    return await SseResponseWriter.WriteDoneAsync(response, http.RequestAborted).ConfigureAwait(false) ? Delivery.Delivered : Deliveries.Undelivered(http);
                case StreamEventKind.Failed:
                    await SseResponseWriter.BreakAsync(http, ev.Error!).ConfigureAwait(false);
                    return Delivery.Delivered;
                case StreamEventKind.Usage when !wantsUsage:
                    continue;
            }
            // What was read before the commit (or replayed from the cache) goes out in one flush.
            SseResponseWriter.Write(response, ev.Data.Span);
            if (stream.HasBufferedEvents) continue;
            if (!await SseResponseWriter.FlushAsync(response, http.RequestAborted).ConfigureAwait(false))
            {
                return Deliveries.Undelivered(http);
            }
        }
    }
}
