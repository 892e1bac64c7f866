using System.Buffers;
using System.Runtime.CompilerServices;

namespace LlmGateway.Http;

/// <summary>
/// A stream read to its end into a buffer rented from <see cref="ArrayPool{T}.Shared"/>, grown by doubling as
/// bytes arrive: what a client's request body (<see cref="RequestBody"/>) and an upstream's answer
/// (<c>ProviderHttp.ReadPooledAsync</c>) both need, the one with a limit, the other without.
/// </summary>
public static class PooledRead
{
    /// <summary>
    /// The bytes of <paramref name="stream"/> in a rented buffer that the caller returns. Reading stops at the
    /// end or as soon as more than <paramref name="max"/> bytes have arrived, so a <c>Length</c> over
    /// <paramref name="max"/> says "too large" and the buffer never grows past <paramref name="max"/> + 1 bytes
    /// by much. <paramref name="firstSize"/> is the first buffer's size (a Content-Length, capped by the
    /// caller). On an exception nothing is left rented.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<(byte[] Buffer, int Length)> ToEndAsync(Stream stream, int firstSize, int max, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(firstSize, 1));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > max) return (buffer, length);
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(length * 2L, Math.Min(max + 1L, Array.MaxLength)));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0) return (buffer, length);
                length += read;
                if (length > max) return (buffer, length);
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}
