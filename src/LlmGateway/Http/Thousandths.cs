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

    /// <summary>
    /// Whether <paramref name="value"/> is the double nearest to <paramref name="thousandths"/> / 1000, not negative and
    /// below 10^9: then <see cref="Write"/> writes its shortest round-trip text, what the general algorithm (<c>"R"</c>,
    /// the default format, System.Text.Json) prints for it. That text is the multiple itself, trailing zeros cut: it
    /// reads back as the value, and any shorter text would be another multiple of 0.001 within the value's rounding
    /// interval, which below 10^9 is far narrower than 0.001. The log line's durations and the usage ledger's rely on it.
    /// </summary>
    public static bool TryOf(double value, out long thousandths)
    {
        thousandths = 0;
        // Not NaN, not negative (nor -0, written "-0"), and in the range where positional notation is used.
        if (!(value >= 0 && value < 1e9) || double.IsNegative(value)) return false;
        var rounded = Math.Round(value * 1000);
        // Division of two doubles that are exact integers is correctly rounded: the double nearest to n / 1000.
        if (rounded / 1000 != value) return false;
        thousandths = (long)rounded;
        return true;
    }

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
