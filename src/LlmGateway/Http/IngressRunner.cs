using System.Buffers;
using LlmGateway.Auth;

namespace LlmGateway.Http;

/// <summary>
/// What an ingress made of a request's body: the neutral request to run (with its caller and hints), or
/// the refusal to answer instead; either way, the dialect's own state for writing the outcome (the
/// turn), which <see cref="IngressRunner{TTurn}.Release"/> gets back at the end.
/// </summary>
public readonly record struct IngressRequest<TTurn>(GatewayRequest? Request, CallerIdentity? Caller, RequestHints? Hints, ApiError? Refusal, TTurn? Turn)
{
    public static IngressRequest<TTurn> Run(GatewayRequest request, CallerIdentity? caller, RequestHints hints, TTurn? turn = default) =>
        new(request, caller, hints, null, turn);

    public static IngressRequest<TTurn> Refuse(ApiError refusal, TTurn? turn = default) => new(null, null, null, refusal, turn);
}

/// <summary>
/// The skeleton every ingress of the <see cref="GatewayPipeline"/> shares (chat completions, embeddings,
/// Responses, Messages), so that each dialect keeps only what is its own: how its body becomes the
/// neutral request (<see cref="PrepareAsync"/>) and how an outcome is written in its shapes
/// (<see cref="WriteAsync"/>, refusals included). One instance per dialect, made once: a request costs
/// no more than the hand-written skeleton did.
/// </summary>
public abstract class IngressRunner<TTurn>(GatewayPipeline pipeline, int maxRequestBytes)
{
    protected GatewayPipeline Pipeline => pipeline;

    public async Task RunAsync(HttpContext http)
    {
        var start = pipeline.Start();
        // Set first, so every answer the ingress writes names the request, a refusal before the body is read too
        // (GatewayHeaders.Write does not set it again). The error handler's 500 clears it and sets it again (RememberRequestId).
        SetRequestId(http.Response, start.RequestId);
        // Read once: Kestrel takes a lock on every read of it.
        var aborted = http.RequestAborted;
        byte[]? rented = null;
        PipelineOutcome? outcome = null;
        TTurn? turn = default;
        try
        {
            // :: Step 1: read the body under the size limit (413 before reading more than the limit).
            (rented, var length, var refusal) = await RequestBody.ReadOrRefuseAsync(http, maxRequestBytes, aborted).ConfigureAwait(false);

            // :: Step 2: the dialect's body as the neutral request and hints, then the pipeline (steps 2a to 6 are its own).
            if (refusal is null)
            {
                var prepared = await PrepareAsync(http, rented.AsMemory(0, length), start).ConfigureAwait(false);
                turn = prepared.Turn;
                if (prepared.Request is { } request)
                {
                    try
                    {
                        outcome = await pipeline.ExecuteAsync(request, prepared.Caller, prepared.Hints!, aborted, start).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (aborted.IsCancellationRequested)
                    {
                        return; // the client left while the pipeline ran: recorded there
                    }
                }
                else
                {
                    refusal = prepared.Refusal;
                }
            }
            outcome ??= pipeline.Refuse(refusal!, start);

            // :: Step 6: the outcome in the dialect's shapes; how far it got.
            var delivery = await WriteAsync(http, outcome, turn).ConfigureAwait(false);
            await outcome.CompleteAsync(delivery).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // Nobody to answer. The pipeline recorded it if it ran; otherwise it is recorded here.
            outcome ??= pipeline.Refuse(ApiError.InvalidRequest("The client closed the request."), start);
            await outcome.CompleteAsync(Delivery.ClientGone).ConfigureAwait(false);
        }
        catch (Exception) when (ErrorHandlingExtensions.RememberRequestId(http, start.RequestId))
        {
            // Never entered: the filter only hands the request's id to the error handler's 500 and lets the exception go on.
        }
        finally
        {
            if (outcome is not null) await outcome.DisposeAsync().ConfigureAwait(false);
            Release(turn);
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The request id on the answer, under the names the dialect's clients read.</summary>
    protected virtual void SetRequestId(HttpResponse response, string requestId) =>
        response.Headers[GatewayHeaders.RequestId] = requestId;

    /// <summary>
    /// The body (valid until the answer is written) parsed into the neutral request, the headers read as
    /// hints; or the refusal. A request not run is disposed here, before returning the refusal.
    /// </summary>
    protected abstract ValueTask<IngressRequest<TTurn>> PrepareAsync(HttpContext http, ReadOnlyMemory<byte> body, RequestStart start);

    /// <summary>The outcome, a refusal included, in the dialect's shapes, with the gateway's headers; how far it got.</summary>
    protected abstract Task<Delivery> WriteAsync(HttpContext http, PipelineOutcome outcome, TTurn? turn);

    /// <summary>The turn's own resources, after the outcome is written and disposed.</summary>
    protected virtual void Release(TTurn? turn)
    {
    }
}
