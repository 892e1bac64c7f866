using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace LlmGateway.Http;

/// <summary>
/// Reads a JSON request body for an ingress: into a pooled buffer, never past the size limit. ValueTasks: a
/// body already received completes at once, and a Task would be allocated for its result on every request.
/// </summary>
public static class RequestBody
{
    /// <summary>
    /// <see cref="ReadAsync"/> with Kestrel's own 413 (its limit is set to <paramref name="max"/>) as the
    /// same refusal as a Content-Length over the limit, so every ingress answers it alike.
    /// </summary>
    public static ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadOrRefuseAsync(HttpContext http, int max) =>
        ReadOrRefuseAsync(http, max, http.RequestAborted);

    /// <inheritdoc cref="ReadOrRefuseAsync(HttpContext, int)"/>
    /// <param name="aborted">The request's <see cref="HttpContext.RequestAborted"/>, which the caller has read already.</param>
    public static ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadOrRefuseAsync(HttpContext http, int max, CancellationToken aborted)
    {
        var request = http.Request;
        // A Content-Length within the limit, the SDKs' requests: read without the general loop's async levels.
        if (request.ContentLength is { } known && known > 0 && known <= max) return ReadKnownLength(request.Body, (int)known, max, aborted);
        return ReadOrRefuseSlowAsync(http, max);
    }

    private static async ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadOrRefuseSlowAsync(HttpContext http, int max)
    {
        try
        {
            return await ReadAsync(http, max).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return ([], 0, ApiError.RequestTooLarge(max)); // ReadAsync gave its buffer back before throwing
        }
    }

    /// <summary>
    /// A body whose Content-Length is within the limit, read into a buffer of that size, and done once that many bytes
    /// are in: Kestrel ends a body at its Content-Length (a client that sends less fails the read), so the read that
    /// would only return 0 is not made, and Kestrel's limit (twice <paramref name="max"/>, see
    /// <see cref="KestrelLimits"/>) is not looked up and lowered, since such a body can't reach it. A body that has
    /// arrived, nearly every one, is read without a state machine; the rest continue in <see cref="ReadRestAsync"/>.
    /// A stream that ends early gives what it had, as the general loop does (Kestrel's never does).
    /// </summary>
    private static ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadKnownLength(Stream body, int length, int max, CancellationToken aborted)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var read = 0;
        try
        {
            while (true)
            {
                var pending = body.ReadAsync(buffer.AsMemory(read, length - read), aborted);
                if (!pending.IsCompletedSuccessfully) return ReadRestAsync(body, buffer, read, length, max, pending, aborted);
                var got = pending.Result;
                read += got;
                if (got == 0 || read == length) return new(Read(buffer, read));
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return new(([], 0, ApiError.RequestTooLarge(max)));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static async ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadRestAsync(
        Stream body, byte[] buffer, int read, int length, int max, ValueTask<int> pending, CancellationToken aborted)
    {
        try
        {
            while (true)
            {
                var got = await pending.ConfigureAwait(false);
                read += got;
                if (got == 0 || read == length) return Read(buffer, read);
                pending = body.ReadAsync(buffer.AsMemory(read, length - read), aborted);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return ([], 0, ApiError.RequestTooLarge(max));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static (byte[] Buffer, int Length, ApiError? Error) Read(byte[] buffer, int length) =>
        length == 0 ? (buffer, 0, EmptyBody()) : (buffer, length, null);

    private static ApiError EmptyBody() => ApiError.InvalidRequest("The request body is empty; send a JSON request.", code: ErrorCodes.InvalidJson);

    /// <summary>
    /// The body in a buffer rented from <see cref="ArrayPool{T}.Shared"/> (the caller returns it, even
    /// with an error), or the error: 413 for anything over <paramref name="max"/> bytes (known from
    /// Content-Length before a byte is read), 400 for an empty body. Kestrel's own limit is set to
    /// <paramref name="max"/> too, so it may throw <see cref="BadHttpRequestException"/> with 413.
    /// </summary>
    public static async ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadAsync(HttpContext http, int max)
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

        var (buffer, length) = await PooledRead.ToEndAsync(
            request.Body, request.ContentLength is { } known ? (int)known : 16 * 1024, max, http.RequestAborted).ConfigureAwait(false);
        if (length > max) return (buffer, 0, ApiError.RequestTooLarge(max));
        if (length == 0) return (buffer, 0, EmptyBody());
        return (buffer, length, null);
    }
}
