using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using LlmGateway.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Streaming;

/// <summary>
/// Writes the client's SSE stream: one <c>data:</c> event per chunk, flushed as it is written so
/// nothing between the upstream and the client holds a chunk back. Every flush runs under the
/// response's <see cref="ClientWriteTimeout"/>: a client that stops reading is cut off, whatever dialect.
/// </summary>
public static class SseResponseWriter
{
    private static ReadOnlySpan<byte> DataPrefix => "data: "u8;
    private static ReadOnlySpan<byte> EventEnd => "\n\n"u8;
    private static ReadOnlySpan<byte> Done => "data: [DONE]\n\n"u8;

    public static void Start(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no"; // nginx in front must not buffer either
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        // The write timeout is made by the first flush that waits on the client (ClientWriteTimeout.RunAsync), not here.
    }

    /// <summary>Writes one event without flushing.</summary>
    public static void Write(HttpResponse response, ReadOnlySpan<byte> data) => Write(response.BodyWriter, data);

    /// <summary>Writes one event to the response's <paramref name="writer"/> without flushing (a relay takes the writer once, not per event).</summary>
    public static void Write(PipeWriter writer, ReadOnlySpan<byte> data)
    {
        var length = DataPrefix.Length + data.Length + EventEnd.Length;
        var span = writer.GetSpan(length);
        DataPrefix.CopyTo(span);
        data.CopyTo(span[DataPrefix.Length..]);
        EventEnd.CopyTo(span[(DataPrefix.Length + data.Length)..]);
        writer.Advance(length);
    }

    /// <summary>Flushes what was written; false when the client is gone.</summary>
    public static ValueTask<bool> FlushAsync(HttpResponse response, CancellationToken cancellationToken) =>
        FlushAsync(response.HttpContext, response.BodyWriter, cancellationToken);

    /// <summary>
    /// Flushes what was written to <paramref name="http"/>'s response <paramref name="writer"/>; false when the client is
    /// gone. A flush that completed at once (the socket's buffers took it, as nearly every one does) runs no state machine.
    /// </summary>
    public static ValueTask<bool> FlushAsync(HttpContext http, PipeWriter writer, CancellationToken cancellationToken)
    {
        var flush = ClientWriteTimeout.RunAsync(http, writer.FlushAsync(cancellationToken));
        return flush.IsCompletedSuccessfully ? new(Flushed(flush.Result)) : FlushedAsync(flush);
    }

    private static bool Flushed(FlushResult result) => !result.IsCanceled && !result.IsCompleted;

    private static async ValueTask<bool> FlushedAsync(ValueTask<FlushResult> flush) => Flushed(await flush.ConfigureAwait(false));

    public static ValueTask<bool> WriteAndFlushAsync(HttpResponse response, ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        Write(response, data);
        return FlushAsync(response, cancellationToken);
    }

    /// <summary>
    /// [DONE] and the end of the response (the chunked body's terminator) in one write: flushed, then completed, they were
    /// two sends, and the terminator waited for the request to be settled (budgets, ledger, log) after the handler returned.
    /// False when the client is gone or was cut off.
    /// </summary>
    public static async ValueTask<bool> WriteDoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        response.BodyWriter.Write(Done);
        await ClientWriteTimeout.RunAsync(response.HttpContext, new ValueTask(response.CompleteAsync())).ConfigureAwait(false);
        return !cancellationToken.IsCancellationRequested && !ClientWriteTimeout.FiredFor(response.HttpContext);
    }

    /// <summary>The one error event that ends a stream that had already started.</summary>
    public static ValueTask<bool> WriteErrorAsync(HttpResponse response, ApiError error, CancellationToken cancellationToken)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, ApiError.JsonOptions))
        {
            error.WriteTo(w);
        }
        return WriteAndFlushAsync(response, buffer.WrittenSpan, cancellationToken);
    }

    internal static readonly TimeSpan BrokenStreamGrace = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// The key of a <see cref="TimeProvider"/> that times <see cref="BrokenStreamGrace"/> instead of real time: only a test
    /// registers one, to abort once its client has read the last event rather than after 200 ms of a loaded machine's
    /// time. Not the gateway's clock: tests that fake that one for timeouts and latencies would never see a broken stream end.
    /// </summary>
    public const string GraceClockKey = "LlmGateway.Streaming.BrokenStreamGrace";

    /// <summary>
    /// Ends a stream that already started: one error event, then the connection is aborted so no client
    /// can mistake the truncated answer for a complete one (there is no [DONE]).
    /// </summary>
    public static Task BreakAsync(HttpContext http, ApiError error) =>
        AbortAfterAsync(http, static (http, error) => WriteErrorAsync(http.Response, error, http.RequestAborted), error);

    /// <summary>
    /// Aborts the connection once <paramref name="lastEvent"/> (writing a dialect's own error event) is done:
    /// a clean end, even without [DONE], lets a client return the truncated text as if it were complete
    /// (the OpenAI .NET SDK does); an aborted connection makes every client fail.
    /// </summary>
    public static async Task AbortAfterAsync<TState>(HttpContext http, Func<HttpContext, TState, ValueTask<bool>> lastEvent, TState state)
    {
        try
        {
            await lastEvent(http, state).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The client is already gone.
        }
        // Kestrel drops bytes still queued for the socket when it aborts, so the client first gets a
        // moment (real time: this is the network's, not the gateway's) to receive the error event, or to hang up.
        try
        {
            var clock = http.RequestServices.GetKeyedService<TimeProvider>(GraceClockKey) ?? TimeProvider.System;
            await Task.Delay(BrokenStreamGrace, clock, http.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        http.Abort();
    }
}
