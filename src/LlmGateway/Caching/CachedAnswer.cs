using System.Buffers.Binary;
using System.Text;
using LlmGateway.Providers;

namespace LlmGateway.Caching;

/// <summary>
/// A stored answer: the model that gave it, its usage, and the complete OpenAI chat.completion body
/// (a streamed answer is stored assembled into one). Serves both kinds of request: as the body, or
/// replayed as a stream by <see cref="CacheReplay"/>.
/// </summary>
public sealed record CachedAnswer(string Model, string Provider, TokenUsage Usage, ReadOnlyMemory<byte> Body)
{
    private const byte Version = 1;

    /// <summary>version, model, provider (length-prefixed UTF-8), prompt/completion/cached tokens, then the body.</summary>
    public byte[] Encode()
    {
        var model = Encoding.UTF8.GetBytes(Model);
        var provider = Encoding.UTF8.GetBytes(Provider);
        var bytes = new byte[1 + 2 + model.Length + 2 + provider.Length + 12 + Body.Length];
        var span = bytes.AsSpan();
        span[0] = Version;
        var at = 1;
        at = WriteString(span, at, model);
        at = WriteString(span, at, provider);
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], Usage.Prompt);
        BinaryPrimitives.WriteInt32LittleEndian(span[(at + 4)..], Usage.Completion);
        BinaryPrimitives.WriteInt32LittleEndian(span[(at + 8)..], Usage.CachedPrompt);
        Body.Span.CopyTo(span[(at + 12)..]);
        return bytes;
    }

    /// <summary>Null for anything that is not a well-formed entry of this version: a miss, never an error.</summary>
    public static CachedAnswer? Decode(byte[]? bytes)
    {
        if (bytes is null || bytes.Length < 1 + 2 + 2 + 12 || bytes[0] != Version) return null;
        var span = bytes.AsSpan();
        var at = 1;
        if (!TryReadString(span, ref at, out var model) || !TryReadString(span, ref at, out var provider) || span.Length - at < 12) return null;
        var usage = new TokenUsage(
            BinaryPrimitives.ReadInt32LittleEndian(span[at..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[(at + 4)..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[(at + 8)..]));
        at += 12;
        if (at >= bytes.Length) return null;
        return new CachedAnswer(model, provider, usage, bytes.AsMemory(at));
    }

    private static int WriteString(Span<byte> span, int at, byte[] value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)value.Length);
        value.CopyTo(span[(at + 2)..]);
        return at + 2 + value.Length;
    }

    private static bool TryReadString(ReadOnlySpan<byte> span, ref int at, out string value)
    {
        value = "";
        if (span.Length - at < 2) return false;
        var length = BinaryPrimitives.ReadUInt16LittleEndian(span[at..]);
        if (span.Length - at - 2 < length) return false;
        value = Encoding.UTF8.GetString(span.Slice(at + 2, length));
        at += 2 + length;
        return true;
    }
}
