using System.Security.Cryptography;

namespace LlmGateway.Http;

/// <summary>
/// The random part of the ids the gateway makes (request, response, completion ids): 128 bits from the
/// operating system's CSPRNG, as lowercase hex, the shape <c>Guid.NewGuid().ToString("N")</c> had.
/// <para>
/// Why not <c>Guid.NewGuid()</c>: on Linux each call is a read of /dev/urandom, one system call per id, and
/// every request makes at least one (perf on the bench, 2026-12-02: about 1 % of a miss's CPU in
/// <c>NewRequestId</c>, most of it in the kernel). Here each thread takes its ids from a 4 KB block filled by
/// one call, 256 ids per system call, and the ids stay unguessable: a stored response is fetched by its id.
/// </para>
/// </summary>
public static class RandomIds
{
    private const int BlockBytes = 4096;

    [ThreadStatic] private static byte[]? t_block;
    [ThreadStatic] private static int t_used;

    /// <summary><paramref name="prefix"/> followed by <paramref name="hexDigits"/> random lowercase hex digits (at most 64).</summary>
    public static string New(string prefix, int hexDigits = 32)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hexDigits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hexDigits, 64);
        var bytes = (hexDigits + 1) / 2;
        var block = t_block;
        if (block is null || t_used + bytes > BlockBytes)
        {
            block ??= t_block = new byte[BlockBytes];
            RandomNumberGenerator.Fill(block);
            t_used = 0;
        }
        var offset = t_used;
        t_used += bytes;
        return string.Create(prefix.Length + hexDigits, (prefix, block, offset, bytes), static (chars, s) =>
        {
            s.prefix.CopyTo(chars);
            Span<char> hex = stackalloc char[64];
            Convert.TryToHexStringLower(s.block.AsSpan(s.offset, s.bytes), hex, out _);
            hex[..(chars.Length - s.prefix.Length)].CopyTo(chars[s.prefix.Length..]);
        });
    }
}
