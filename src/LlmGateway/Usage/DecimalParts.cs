namespace LlmGateway.Usage;

/// <summary>
/// A decimal as its sign, its integer and its scale (the value is <c>Integer / 10^Scale</c>): what pricing, the budgets'
/// nanos and the log line's numbers compute and print from on every request, instead of decimal arithmetic or the
/// general formatter. <see cref="Integer"/> holds the value's integer only when <see cref="Fits"/> (it fits in 64 bits).
/// </summary>
internal readonly record struct DecimalParts(bool Negative, bool Fits, ulong Integer, int Scale)
{
    public static DecimalParts Of(decimal value)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        return new(bits[3] < 0, bits[2] == 0, (ulong)(uint)bits[1] << 32 | (uint)bits[0], value.Scale);
    }

    /// <summary>Room enough for <see cref="WritePositional"/> ("0." and 28 digits, or 20 digits and a point) and <see cref="WriteInvariant"/> (a sign too, 29 digits).</summary>
    public const int MaxPositionalLength = 32;

    /// <summary>
    /// <paramref name="value"/> as its invariant default text, the bytes <c>decimal.TryFormat</c> writes ("0.0000702",
    /// "12.50"): from its integer and scale by <see cref="WritePositional"/> when the integer fits in 64 bits and it is
    /// not negative (a cost always is), without the general formatter; any other through it. Its length; the log
    /// line's and the usage ledger's costs, per request.
    /// </summary>
    public static int WriteInvariant(decimal value, Span<byte> into)
    {
        var parts = Of(value);
        if (!parts.Fits || parts.Negative)
        {
            value.TryFormat(into, out var written, default, System.Globalization.CultureInfo.InvariantCulture);
            return written;
        }
        return WritePositional(parts.Integer, parts.Scale, into);
    }

    /// <summary>
    /// <paramref name="integer"/> / 10^<paramref name="scale"/> (scale at most 28) as ASCII positional text with every
    /// digit of the scale, trailing zeros kept ("0.0000702", "12.50", "7"), as a decimal's invariant default text is
    /// written; its length. The log line's costs and x-gateway-cost-usd both write it per request, from this one place.
    /// </summary>
    public static int WritePositional(ulong integer, int scale, Span<byte> into)
    {
        Span<byte> digits = stackalloc byte[20]; // a ulong's digits
        integer.TryFormat(digits, out var length, default, System.Globalization.CultureInfo.InvariantCulture);
        digits = digits[..length];
        if (scale == 0)
        {
            digits.CopyTo(into);
            return length;
        }
        var whole = length - scale;
        if (whole > 0)
        {
            digits[..whole].CopyTo(into);
            into[whole] = (byte)'.';
            digits[whole..].CopyTo(into[(whole + 1)..]);
            return length + 1;
        }
        // 0.0000702: a zero, the point, then zeros up to the first digit.
        into[0] = (byte)'0';
        into[1] = (byte)'.';
        into.Slice(2, -whole).Fill((byte)'0');
        digits.CopyTo(into[(2 - whole)..]);
        return 2 - whole + length;
    }
}
