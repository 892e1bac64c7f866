using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Streaming;

/// <summary>
/// Writes the client's SSE stream: one <c>data:</c> event per chunk, flushed as it is written so
/// nothing between the upstream and the client holds a chunk back.
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
    }

    /// <summary>Writes one event without flushing.</summary>
    public static void Write(HttpResponse response, ReadOnlySpan<byte> data)
    {
        var writer = response.BodyWriter;
        var length = DataPrefix.Length + data.Length + EventEnd.Length;
        var span = writer.GetSpan(length);
        DataPrefix.CopyTo(span);
        data.CopyTo(span[DataPrefix.Length..]);
        EventEnd.CopyTo(span[(DataPrefix.Length + data.Length)..]);
        writer.Advance(length);
    }

    /// <summary>Flushes what was written; false when the client is gone.</summary>
    public static async ValueTask<bool> FlushAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        var result = await response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
        return !result.IsCanceled && !result.IsCompleted;
    }

    public static ValueTask<bool> WriteAndFlushAsync(HttpResponse response, ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        Write(response, data);
        return FlushAsync(response, cancellationToken);
    }

    public static ValueTask<bool> WriteDoneAsync(HttpResponse response, CancellationToken cancellationToken)
    {
        response.BodyWriter.Write(Done);
        return FlushAsync(response, cancellationToken);
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
}
