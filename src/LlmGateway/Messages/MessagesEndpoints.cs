using System.Buffers;
using System.Globalization;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
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
        app.MapPost("/v1/messages", (HttpContext http, MessagesHandler handler) => handler.HandleAsync(http))
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
/// (<see cref="MessagesRequestTranslator"/>), runs the <see cref="GatewayPipeline"/> like any chat
/// request (routing, keys, limits, cache, budgets, retries, fallbacks, the ledger), and writes the
/// outcome as Anthropic does: a Message, Anthropic's SSE events, or an error in Anthropic's shape,
/// with the gateway's headers on every answer.
/// </summary>
public sealed class MessagesHandler(IOptions<GatewayOptions> options, GatewayPipeline pipeline, TimeProvider time)
{
    private readonly GatewayOptions _options = options.Value;

    public async Task HandleAsync(HttpContext http)
    {
        var start = pipeline.Start();
        SetRequestId(http.Response, start.RequestId);
        byte[]? rented = null;
        PipelineOutcome? outcome = null;
        string model = "";
        try
        {
            // :: Steps 1 and 2: the body under the size limit, translated from Anthropic's dialect, parsed; the headers as hints.
            (outcome, model) = await RunAsync(http, start, buffer => rented = buffer).ConfigureAwait(false);
            if (outcome is null) return; // the client left while the pipeline ran: recorded there
            // :: Step 6: the outcome in Anthropic's shapes.
            var delivery = await WriteAsync(http, outcome, model).ConfigureAwait(false);
            await outcome.CompleteAsync(delivery).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            outcome ??= pipeline.Refuse(ApiError.InvalidRequest("The client closed the request."), start);
            await outcome.CompleteAsync(Delivery.ClientGone).ConfigureAwait(false);
        }
        finally
        {
            if (outcome is not null) await outcome.DisposeAsync().ConfigureAwait(false);
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task<(PipelineOutcome? Outcome, string Model)> RunAsync(HttpContext http, RequestStart start, Action<byte[]> rented)
    {
        var (translation, bodyError) = await ReadAsync(http, countTokens: false, rented).ConfigureAwait(false);
        if (bodyError is not null) return (pipeline.Refuse(bodyError, start), "");
        var request = ChatRequest.TryParse(translation!.ChatBody, out var parseError);
        if (request is null) return (pipeline.Refuse(parseError!, start), translation.Model);
        var hints = GatewayHeaders.ReadHints(http.Request.Headers, out var headerError);
        if (headerError is not null)
        {
            request.Dispose();
            return (pipeline.Refuse(headerError, start), translation.Model);
        }
        try
        {
            return (await pipeline.ExecuteAsync(request, CallerIdentity.Of(http), hints, http.RequestAborted, start).ConfigureAwait(false), translation.Model);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return (null, translation.Model);
        }
    }

    /// <summary>The body read under the size limit and translated; or the 400/413 that says why not.</summary>
    private async Task<(MessagesTranslation? Translation, ApiError? Error)> ReadAsync(HttpContext http, bool countTokens, Action<byte[]> rented)
    {
        var max = _options.Limits.MaxRequestBytes;
        byte[] buffer;
        int length;
        ApiError? bodyError;
        try
        {
            (buffer, length, bodyError) = await RequestBody.ReadAsync(http, max).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, ApiError.RequestTooLarge(max));
        }
        rented(buffer);
        if (bodyError is not null) return (null, bodyError);
        var translation = MessagesRequestTranslator.Translate(buffer.AsMemory(0, length), countTokens);
        return translation.Error is null ? (translation, null) : (null, translation.Error);
    }

    private static async Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, string model)
    {
        var response = http.Response;
        GatewayHeaders.Write(response, outcome);
        SetRequestId(response, outcome.RequestId);
        switch (outcome.Kind)
        {
            case OutcomeKind.Error:
                await MessagesErrors.WriteAsync(response, outcome.Error!).ConfigureAwait(false);
                return Delivery.Delivered;
            case OutcomeKind.Answer:
                var body = MessageResponseTranslator.Translate(outcome.Body.Span, model);
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = "application/json";
                response.ContentLength = body.Length;
                await response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
                return Delivery.Delivered;
            default:
                return await StreamAsync(http, outcome, model).ConfigureAwait(false);
        }
    }

    /// <summary>Each chat chunk as Anthropic's events, flushed as they come; a failure is one error event, then the connection is cut.</summary>
    private static async Task<Delivery> StreamAsync(HttpContext http, PipelineOutcome outcome, string model)
    {
        var response = http.Response;
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
                    return await WriteEventsAsync(response, events.WrittenSpan, http.RequestAborted).ConfigureAwait(false)
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
            if (events.WrittenCount > 0 && !await WriteEventsAsync(response, events.WrittenSpan, http.RequestAborted).ConfigureAwait(false))
            {
                return Deliveries.Undelivered(http);
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
            var (translation, error) = await ReadAsync(http, countTokens: true, buffer => rented = buffer).ConfigureAwait(false);
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
