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
    public static async ValueTask<(byte[] Buffer, int Length, ApiError? Error)> ReadOrRefuseAsync(HttpContext http, int max)
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
        if (length == 0)
        {
            return (buffer, 0, ApiError.InvalidRequest("The request body is empty; send a JSON request.", code: ErrorCodes.InvalidJson));
        }
        return (buffer, length, null);
    }
}
