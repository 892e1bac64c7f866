using System.Globalization;

namespace LlmGateway.Http;

/// <summary>
/// A count of thousandths (of a millisecond, of a second) as the shortest text of the value it stands for: the whole
/// part, then a point and up to three digits with trailing zeros cut ("312.3", "0.05", "7"). Below 10^9 that is the
/// text the double rounded to three decimals prints in its shortest round-trip form, written without that general
/// algorithm: x-gateway-overhead-ms (<see cref="GatewayHeaders.FormatMs"/>) and the log line's durations
/// (<c>JsonLogLineFormatter</c>) both write it per request, from this one place.
/// </summary>
internal static class Thousandths
{
    /// <summary>Room enough for any count: 16 digits of a long's thousands, a point and three.</summary>
    public const int MaxLength = 20;

    /// <summary>Writes the text of <paramref name="thousandths"/> (not negative) as ASCII into <paramref name="into"/>; its length.</summary>
    public static int Write(long thousandths, Span<byte> into)
    {
        var whole = thousandths / 1000;
        var fraction = (int)(thousandths - whole * 1000);
        whole.TryFormat(into, out var length, default, CultureInfo.InvariantCulture);
        if (fraction == 0) return length;
        into[length] = (byte)'.';
        into[length + 1] = (byte)('0' + fraction / 100);
        into[length + 2] = (byte)('0' + fraction / 10 % 10);
        into[length + 3] = (byte)('0' + fraction % 10);
        return length + (fraction % 100 == 0 ? 2 : fraction % 10 == 0 ? 3 : 4);
    }
}
