using System.Buffers;
using System.Globalization;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Streaming;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Options;

namespace LlmGateway.Messages;

public static class MessagesEndpoints
{
    public static IServiceCollection AddMessages(this IServiceCollection services)
    {
        services.AddSingleton<MessagesHandler>();
        return services;
    }

    /// <summary>
    /// POST /v1/messages and /v1/messages/count_tokens, the Anthropic Messages API (Anthropic's SDKs,
    /// Claude Code with ANTHROPIC_BASE_URL). Every error on them, the key check's included, is in
    /// Anthropic's shape (<see cref="AnthropicErrorDialect"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapMessages(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/messages", app.Calling<MessagesHandler>(static (handler, http) => handler.HandleAsync(http)))
            .WithMetadata(AnthropicErrorDialect.Instance)
            .WithRequestTelemetry(logContent: true)
            .WithName("CreateMessage")
            .WithTags("Anthropic Messages")
            .WithSummary("Anthropic Messages API, streamed (SSE) or not, answered by any provider")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status404NotFound);
        app.MapPost("/v1/messages/count_tokens", (HttpContext http, MessagesHandler handler) => handler.CountTokensAsync(http))
            .WithMetadata(AnthropicErrorDialect.Instance)
            .WithName("CountMessageTokens")
            .WithTags("Anthropic Messages")
            .WithSummary("The gateway's estimate of a Messages request's input tokens")
            .Produces(StatusCodes.Status200OK, contentType: "application/json");
        return app;
    }
}

/// <summary>
/// The Anthropic ingress: reads a Messages request, translates it to the gateway's chat request
/// (<see cref="MessagesRequestTranslator"/>) with the client's own body beside it (<see cref="NativeBody"/>),
/// runs the <see cref="GatewayPipeline"/> like any chat request (routing, keys, limits, cache, budgets,
/// retries, fallbacks, the ledger), and writes the outcome as Anthropic does: a Message, Anthropic's SSE
/// events, or an error in Anthropic's shape, with the gateway's headers on every answer. An
/// anthropic-type provider answers natively, and that answer passes unchanged; any other provider's
/// chat answer is translated.
/// </summary>
public sealed class MessagesHandler(IOptions<GatewayOptions> options, GatewayPipeline pipeline, TimeProvider time)
{
    private readonly GatewayOptions _options = options.Value;

    private MessagesIngress? _ingress;

    // Made on the first request: a field initializer can't pass the handler itself.
    public Task HandleAsync(HttpContext http) => (_ingress ??= new(this, pipeline, _options.Limits.MaxRequestBytes)).RunAsync(http);

    /// <summary>The Anthropic dialect of the shared ingress skeleton; the turn is the model the client named.</summary>
    private sealed class MessagesIngress(MessagesHandler handler, GatewayPipeline pipeline, int maxRequestBytes) : IngressRunner<string>(pipeline, maxRequestBytes)
    {
        protected override void SetRequestId(HttpResponse response, string requestId) => MessagesHandler.SetRequestId(response, requestId);

        protected override ValueTask<IngressRequest<string>> PrepareAsync(HttpContext http, ReadOnlyMemory<byte> body, RequestStart start) =>
            new(handler.Prepare(http, body));

        // :: Step 6: the outcome in Anthropic's shapes.
        protected override Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, string? model) =>
            MessagesHandler.WriteAsync(http, outcome, model ?? "");
    }

    /// <summary>:: Step 2: the body translated from Anthropic's dialect, parsed; the headers as hints.</summary>
    private IngressRequest<string> Prepare(HttpContext http, ReadOnlyMemory<byte> body)
    {
        var translation = Translate(body, countTokens: false);
        if (translation.Error is not null) return IngressRequest<string>.Refuse(translation.Error, "");
        var request = ChatRequest.TryParse(translation.ChatBody, out var parseError);
        if (request is null) return IngressRequest<string>.Refuse(parseError!, translation.Model);
        var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var headerError);
        // A conversation's history is spliced into the chat request, so the request is translated for every
        // provider: what the translation can't carry is refused, as when no provider takes Messages natively.
        headerError ??= hints.ConversationId is not null ? translation.Untranslatable : null;
        var forwarded = ForwardedHeaders(http.Request.Headers, ref headerError);
        if (headerError is not null)
        {
            request.Dispose();
            return IngressRequest<string>.Refuse(headerError, translation.Model);
        }
        // The client's own body rides along: an anthropic-type provider sends it as it is (AnthropicNative).
        request.Native = new NativeBody(NativeDialects.AnthropicMessages, body, forwarded, translation.Untranslatable);
        return IngressRequest<string>.Run(request, CallerIdentity.Of(http), hints, translation.Model);
    }

    /// <summary>
    /// The headers of Anthropic's API an upstream Anthropic must see to read the client's body as the client
    /// meant it: the API version and the betas it opted into. Never its key (x-api-key, Authorization: the
    /// gateway's key), nor anything else.
    /// </summary>
    private static List<KeyValuePair<string, string>> ForwardedHeaders(IHeaderDictionary headers, ref ApiError? error)
    {
        var forwarded = new List<KeyValuePair<string, string>>(2);
        foreach (var name in s_forwardedHeaders)
        {
            var values = headers[name];
            // A handful of short tokens ("2023-06-01", beta names): anything else is the client's mistake (400), not the upstream's.
            if (values.Count > MaxForwardedValues) error ??= ApiError.InvalidRequest($"At most {MaxForwardedValues} '{name}' headers are accepted.", name);
            foreach (var value in values)
            {
                if (string.IsNullOrEmpty(value)) continue;
                if (!HeaderValues.IsSafe(value, MaxForwardedLength))
                {
                    error ??= ApiError.InvalidRequest($"The '{name}' header must be 1 to {MaxForwardedLength} printable ASCII characters.", name);
                    continue;
                }
                forwarded.Add(new(name, value));
            }
        }
        return forwarded;
    }

    private static readonly string[] s_forwardedHeaders = ["anthropic-version", "anthropic-beta"];
    private const int MaxForwardedValues = 16;
    private const int MaxForwardedLength = 1024;

    /// <summary>The body translated to the gateway's chat request; its error when it can't be (400).</summary>
    private static MessagesTranslation Translate(ReadOnlyMemory<byte> body, bool countTokens) =>
        MessagesRequestTranslator.Translate(body, countTokens, native: !countTokens);

    private static async Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, string model)
    {
        var response = http.Response;
        // The ingress skeleton set x-request-id and request-id (the outcome's id) before it read the body.
        GatewayHeaders.Write(response, outcome, requestIdSet: true);
        switch (outcome.Kind)
        {
            case OutcomeKind.Error:
                await MessagesErrors.WriteAsync(response, outcome.Error!).ConfigureAwait(false);
                return Delivery.Delivered;
            case OutcomeKind.Answer:
                // Anthropic's own Message passes as it came; a chat answer (any other provider) is translated.
                var body = outcome.Dialect == NativeDialects.AnthropicMessages ? outcome.Body : MessageResponseTranslator.Translate(outcome.Body.Span, model);
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = "application/json";
                response.ContentLength = body.Length;
                await response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
                return Delivery.Delivered;
            default:
                return outcome.Dialect == NativeDialects.AnthropicMessages
                    ? await StreamNativeAsync(http, outcome).ConfigureAwait(false)
                    : await StreamAsync(http, outcome, model).ConfigureAwait(false);
        }
    }

    /// <summary>Each chat chunk as Anthropic's events, flushed as they come; a failure is one error event, then the connection is cut.</summary>
    private static async Task<Delivery> StreamAsync(HttpContext http, PipelineOutcome outcome, string model)
    {
        var response = http.Response;
        // Read once: Kestrel takes a lock on every read of it (the chat relay does the same).
        var aborted = http.RequestAborted;
        var stream = outcome.Stream!;
        var translator = new MessagesStreamTranslator(model, outcome.Request?.EstimatedPromptTokens ?? 0);
        var events = new ArrayBufferWriter<byte>(1024);
        SseResponseWriter.Start(response);
        while (true)
        {
            var ev = await stream.ReadAsync().ConfigureAwait(false);
            events.ResetWrittenCount();
            switch (ev.Kind)
            {
                case StreamEventKind.End:
                    translator.End(events);
                    return await WriteEventsAsync(response, events.WrittenSpan, aborted).ConfigureAwait(false)
                        ? Delivery.Delivered : Deliveries.Undelivered(http);
                case StreamEventKind.Failed:
                    translator.Fail(ev.Error!, outcome.RequestId, events);
                    await SseResponseWriter.AbortAfterAsync(http, static (http, bytes) => WriteEventsAsync(http.Response, bytes.Span, http.RequestAborted), events.WrittenMemory).ConfigureAwait(false);
                    return Delivery.Delivered;
                default:
                    // Usage chunks too: their usage is what message_delta reports.
                    translator.Chunk(ev.Data.Span, events);
                    break;
            }
            if (events.WrittenCount > 0 && !await WriteEventsAsync(response, events.WrittenSpan, aborted).ConfigureAwait(false))
            {
                return Deliveries.Undelivered(http);
            }
        }
    }

    /// <summary>
    /// Anthropic's own events as they came, each flushed (those read before the commit go out in one write);
    /// a failure after the start is one <c>event: error</c>, then the connection is cut, never a message_stop.
    /// </summary>
    private static async Task<Delivery> StreamNativeAsync(HttpContext http, PipelineOutcome outcome)
    {
        var response = http.Response;
        // Read once: Kestrel takes a lock on every read of it.
        var aborted = http.RequestAborted;
        var stream = outcome.Stream!;
        SseResponseWriter.Start(response);
        while (true)
        {
            var ev = await stream.ReadAsync().ConfigureAwait(false);
            switch (ev.Kind)
            {
                case StreamEventKind.End:
                    return await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false)
                        ? Delivery.Delivered : Deliveries.Undelivered(http);
                case StreamEventKind.Failed:
                    var error = MessagesStreamTranslator.ErrorEvent(ev.Error!, outcome.RequestId);
                    await SseResponseWriter.AbortAfterAsync(http, static (http, bytes) => WriteEventsAsync(http.Response, bytes.Span, http.RequestAborted), (ReadOnlyMemory<byte>)error).ConfigureAwait(false);
                    return Delivery.Delivered;
            }
            response.BodyWriter.Write(ev.Data.Span);
            if (!stream.HasBufferedEvents)
            {
                if (!await SseResponseWriter.FlushAsync(response, aborted).ConfigureAwait(false)) return Deliveries.Undelivered(http);
            }
        }
    }

    /// <summary>Whole events (<c>event:</c> and <c>data:</c> lines, already framed), flushed; false when the client is gone.</summary>
    private static ValueTask<bool> WriteEventsAsync(HttpResponse response, ReadOnlySpan<byte> events, CancellationToken cancellationToken)
    {
        response.BodyWriter.Write(events);
        return SseResponseWriter.FlushAsync(response, cancellationToken);
    }

    /// <summary>
    /// POST /v1/messages/count_tokens: the gateway's own estimate of the request's input tokens (the
    /// same one routing, context-window checks and budget reservations use), for a model the caller may
    /// use. No provider is called: the answer is the same whichever provider would serve the model.
    /// </summary>
    public async Task CountTokensAsync(HttpContext http)
    {
        var started = time.GetTimestamp();
        var requestId = GatewayHeaders.NewRequestId();
        SetRequestId(http.Response, requestId);
        http.Response.Headers[GatewayHeaders.Attempts] = "0";
        byte[]? rented = null;
        try
        {
            (rented, var length, var error) = await RequestBody.ReadOrRefuseAsync(http, _options.Limits.MaxRequestBytes).ConfigureAwait(false);
            var translation = error is null ? Translate(rented.AsMemory(0, length), countTokens: true) : null;
            error ??= translation!.Error;
            using var request = error is null ? ChatRequest.TryParse(translation!.ChatBody, out error) : null;
            if (request is not null)
            {
                http.Response.Headers[GatewayHeaders.Model] = request.Model;
                var caller = CallerIdentity.Of(http);
                // Gateway:Limits, as the pipeline checks them for /v1/messages (this path doesn't run it).
                error = request.CheckLimits(_options.Limits)
                    ?? (!IsKnownModel(request.Model) ? ApiError.ModelNotFound(request.Model)
                        : caller is not null && !caller.MayRequest(request.Model) ? AuthErrors.ModelNotAllowed(caller.KeyId, request.Model)
                        : null);
            }
            http.Response.Headers[GatewayHeaders.OverheadMs] = GatewayHeaders.FormatMs(time.GetElapsedTime(started));
            if (error is not null)
            {
                await MessagesErrors.WriteAsync(http.Response, error).ConfigureAwait(false);
                return;
            }
            var body = System.Text.Encoding.UTF8.GetBytes($"{{\"input_tokens\":{request!.EstimatedPromptTokens.ToString(CultureInfo.InvariantCulture)}}}");
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = body.Length;
            await http.Response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>A configured model or auto, named in any case, as routing takes it.</summary>
    private bool IsKnownModel(string model) =>
        string.Equals(model, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase) ||
        _options.Models.Keys.Any(name => string.Equals(name, model, StringComparison.OrdinalIgnoreCase));

    /// <summary>x-request-id, and request-id as Anthropic names it (the Anthropic SDKs read that one into their errors).</summary>
    private static void SetRequestId(HttpResponse response, string requestId)
    {
        response.Headers[GatewayHeaders.RequestId] = requestId;
        response.Headers["request-id"] = requestId;
    }
}
