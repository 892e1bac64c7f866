using LlmGateway.Storage;

namespace LlmGateway.Tests.Storage;

/// <summary><see cref="Nanos"/> converts from the amount's integer; its answers must be the decimal expressions', overflow included.</summary>
public sealed class NanosTests
{
    private static long? Ceiling(decimal usd)
    {
        try
        {
            return usd <= 0 ? 0 : (long)Math.Ceiling(usd * Nanos.PerUsd);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private static long? Rounded(decimal usd)
    {
        try
        {
            return usd <= 0 ? 0 : (long)Math.Round(usd * Nanos.PerUsd, MidpointRounding.AwayFromZero);
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    private static void AssertSameAsDecimal(decimal usd)
    {
        if (Ceiling(usd) is { } ceiling) Assert.Equal(ceiling, Nanos.FromUsdCeiling(usd));
        else Assert.Throws<OverflowException>(() => Nanos.FromUsdCeiling(usd));
        if (Rounded(usd) is { } rounded) Assert.Equal(rounded, Nanos.FromUsd(usd));
        else Assert.Throws<OverflowException>(() => Nanos.FromUsd(usd));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-0.5")]
    [InlineData("0.0000702")]
    [InlineData("0.0000000005")]
    [InlineData("0.0000000015")]
    [InlineData("0.00000000049999999999")]
    [InlineData("0.0000000000000000000000000001")]
    [InlineData("1.000000000")]
    [InlineData("9223372036.854775807")]
    [InlineData("9223372036.854775808")]
    [InlineData("9223372036.8547758075")]
    [InlineData("18446744073709551615")]
    [InlineData("79228162514264337593543950335")]
    public void FromUsd_IsTheDecimalExpression(string usd) => AssertSameAsDecimal(decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void FromUsd_IsTheDecimalExpression_OnRandomAmounts()
    {
        var random = new Random(11);
        for (var i = 0; i < 200_000; i++)
        {
            var scale = (byte)random.Next(0, 29);
            AssertSameAsDecimal(random.Next(3) switch
            {
                0 => new decimal(random.Next(), 0, 0, false, scale),
                1 => new decimal(random.Next(), random.Next(), 0, random.Next(8) == 0, scale),
                _ => new decimal(random.Next(), random.Next(), random.Next(0, 3), false, scale),
            });
        }
    }
}
