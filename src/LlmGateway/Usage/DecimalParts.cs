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
}
