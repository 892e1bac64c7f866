using System.IO.Pipelines;
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
    private readonly OpenAiIngress _chat = new(pipeline, options.Value.Limits.MaxRequestBytes, ChatRequest.TryParse, AuthEndpoints.ChecksKeys(options.Value));
    private OpenAiIngress? _other;

    public Task HandleAsync(HttpContext http) => _chat.RunAsync(http);

    public Task HandleAsync(HttpContext http, RequestParser parse)
    {
        // One ingress per parser, made on its first request: /v1/embeddings passes the same cached delegate every time.
        var ingress = _other;
        if (ingress is null || ingress.Parser != parse) _other = ingress = new(pipeline, options.Value.Limits.MaxRequestBytes, parse, AuthEndpoints.ChecksKeys(options.Value));
        return ingress.RunAsync(http);
    }

    /// <summary>
    /// The OpenAI dialect keeps no state of its own between reading and writing. Its turn is an empty struct rather than
    /// a null object: over a value type the skeleton's generic code (its state machine, its awaits) is compiled for
    /// this dialect alone, where over a reference type it is the code shared by every reference type, which looks its
    /// types up at run time (instantiating stubs, dictionary lookups) on every request.
    /// </summary>
    private readonly struct NoTurn;

    /// <summary>
    /// The OpenAI dialect of the shared ingress skeleton: its parser, its headers as hints, its shapes. Without the key
    /// check (<paramref name="checksKeys"/> false) no request carries a caller, and the feature lookup, a miss that Kestrel
    /// answers only after comparing the type with each of its own features and then the connection's, is not made.
    /// </summary>
    private sealed class OpenAiIngress(GatewayPipeline pipeline, int maxRequestBytes, RequestParser parse, bool checksKeys)
        : IngressRunner<NoTurn>(pipeline, maxRequestBytes)
    {
        public RequestParser Parser => parse;

        protected override ValueTask<IngressRequest<NoTurn>> PrepareAsync(HttpContext http, ReadOnlyMemory<byte> body, RequestStart start)
        {
            var request = parse(body, out var parseError);
            if (request is null) return new(IngressRequest<NoTurn>.Refuse(parseError!));
            var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var headerError);
            if (headerError is not null)
            {
                request.Dispose();
                return new(IngressRequest<NoTurn>.Refuse(headerError));
            }
            return new(IngressRequest<NoTurn>.Run(request, checksKeys ? CallerIdentity.Of(http) : null, hints));
        }

        protected override Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, NoTurn turn) =>
            ChatCompletionsHandler.WriteAsync(http, outcome);
    }

    private static readonly Task<Delivery> s_delivered = Task.FromResult(Delivery.Delivered);

    /// <summary>
    /// :: Step 6: the outcome in OpenAI's shapes; how far it got. An answer is one write of the upstream's body,
    /// which nearly always lands in the socket's buffers at once: then no state machine runs, and the result is
    /// a task made once (a <see cref="Task{Delivery}"/> is not one the runtime caches).
    /// </summary>
    private static Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome)
    {
        var response = http.Response;
        // The ingress skeleton set x-request-id (the outcome's id) before it read the body.
        GatewayHeaders.Write(response, outcome, requestIdSet: true);
        switch (outcome.Kind)
        {
            case OutcomeKind.Error:
                return WriteErrorAsync(response, outcome.Error!);
            case OutcomeKind.Stream:
                return StreamAsync(http, outcome.Stream!);
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.ContentLength = outcome.Body.Length;
        // Read once: Kestrel takes a lock on every read of it.
        var aborted = http.RequestAborted;
        // A large answer to a client that stopped reading is cut off like a stream (see ClientWriteTimeout).
        var write = ClientWriteTimeout.RunAsync(http, response.BodyWriter.WriteAsync(outcome.Body, aborted));
        if (!write.IsCompletedSuccessfully) return AnswerWrittenAsync(http, write);
        write.GetAwaiter().GetResult();
        // A write that did not wait armed no write timeout (the answer is this response's only write), so none can
        // have cut the client off: the client leaving is all there is to ask, without looking the timeout up among
        // the request's features.
        return !aborted.IsCancellationRequested ? s_delivered : Task.FromResult(Deliveries.Undelivered(http));
    }

    private static async Task<Delivery> AnswerWrittenAsync(HttpContext http, ValueTask<FlushResult> write)
    {
        await write.ConfigureAwait(false);
        return AnswerDelivery(http);
    }

    /// <summary>Cut off by the timeout, the write ends without an error: the client did not get the answer.</summary>
    private static Delivery AnswerDelivery(HttpContext http) => Deliveries.CutOff(http) ? Deliveries.Undelivered(http) : Delivery.Delivered;

    private static async Task<Delivery> WriteErrorAsync(HttpResponse response, ApiError error)
    {
        await error.WriteAsync(response).ConfigureAwait(false);
        return Delivery.Delivered;
    }

    private static async Task<Delivery> StreamAsync(HttpContext http, AnswerStream stream)
    {
        var response = http.Response;
        var wantsUsage = stream.ClientWantsUsage;
        SseResponseWriter.Start(response);
        // Taken once for the stream, not per chunk: the writer is the response's for its life, and Kestrel hands out the
        // same aborted token each time, under a lock.
        var writer = response.BodyWriter;
        var aborted = http.RequestAborted;
        var unflushed = false;
        while (true)
        {
            var ev = await stream.ReadAsync().ConfigureAwait(false);
            switch (ev.Kind)
            {
                case StreamEventKind.End:
                    return await SseResponseWriter.WriteDoneAsync(response, aborted).ConfigureAwait(false) ? Delivery.Delivered : Deliveries.Undelivered(http);
                case StreamEventKind.Failed:
                    await SseResponseWriter.BreakAsync(http, ev.Error!).ConfigureAwait(false);
                    return Delivery.Delivered;
                case StreamEventKind.Usage when !wantsUsage:
                    break;
                default:
                    SseResponseWriter.Write(writer, ev.Data.Span);
                    unflushed = true;
                    break;
            }
            // Events already in hand (read before the commit, replayed from the cache, or arrived with this one) go out
            // in one flush. A skipped usage event still flushes what came before it when nothing else is in hand.
            if (!unflushed || stream.HasBufferedEvents) continue;
            unflushed = false;
            if (!await SseResponseWriter.FlushAsync(http, writer, aborted).ConfigureAwait(false))
            {
                return Deliveries.Undelivered(http);
            }
        }
    }
}
