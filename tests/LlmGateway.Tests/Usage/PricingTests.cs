using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Usage;

namespace LlmGateway.Tests.Usage;

/// <summary>
/// <see cref="Pricing.CostUsd"/> works on the prices' integers; its answers must be the decimal expression's, bit for
/// bit (value and scale: the log line, the ledger and the cost header print the scale's digits).
/// </summary>
public sealed class PricingTests
{
    private static decimal InDecimal(ModelOptions model, TokenUsage usage)
    {
        var cached = Math.Min(usage.CachedPrompt, usage.Prompt);
        var uncached = usage.Prompt - cached;
        return (uncached * model.CostPer1kInput + cached * (model.CostPer1kCachedInput ?? model.CostPer1kInput) + usage.Completion * model.CostPer1kOutput) / 1000m;
    }

    private static void AssertSameAsDecimal(ModelOptions model, TokenUsage usage)
    {
        var expected = InDecimal(model, usage);
        var actual = Pricing.CostUsd(model, usage);
        Assert.True(decimal.GetBits(expected).AsSpan().SequenceEqual(decimal.GetBits(actual)),
            $"{model.CostPer1kInput}/{model.CostPer1kCachedInput}/{model.CostPer1kOutput} for {usage}: {expected} expected, {actual} given");
    }

    public static TheoryData<decimal, decimal?, decimal, int, int, int> Cases => new()
    {
        { 0.00015m, null, 0.0006m, 236, 58, 0 },
        { 0.00015m, null, 0.0006m, 0, 0, 0 },
        { 0m, null, 0m, 1000, 1000, 0 },
        { 2.5m, 1.25m, 10m, 1000, 1000, 500 },
        { 2.50m, 1.250m, 10.0m, 1000, 1000, 500 },
        { 3m, 0.3m, 15m, 2000, 4096, 2000 },
        { 0.001m, null, 0.002m, 1, 1, 0 },
        { 0.0000000000000000000000001m, null, 0.0000000000000000000000001m, 7, 3, 0 },
        { 0.00000000000000000000000001m, null, 1m, 7, 3, 0 }, // a scale of 26: the decimal expression's, rounded
        { 79228162514264337593543950335m, null, 0m, 1, 0, 0 }, // a price over 64 bits
        { 18446744073709551615m, null, 1m, int.MaxValue, int.MaxValue, 0 }, // a sum over 64 bits
        { 0.00015m, null, 0.0006m, 100, 10, 250 }, // more cached than prompt
        { 0.00015m, null, 0.0006m, 100, 10, -5 }, // a negative count
        { 0.00015m, -0.0001m, 0.0006m, 100, 10, 50 }, // a negative price (refused by the validator)
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void CostUsd_IsTheDecimalExpressionBitForBit(decimal input, decimal? cachedInput, decimal output, int prompt, int completion, int cached) =>
        AssertSameAsDecimal(new ModelOptions { CostPer1kInput = input, CostPer1kCachedInput = cachedInput, CostPer1kOutput = output }, new TokenUsage(prompt, completion, cached));

    [Fact]
    public void CostUsd_IsTheDecimalExpressionBitForBit_OnRandomPricesAndCounts()
    {
        var random = new Random(7);
        decimal Price() => random.Next(6) switch
        {
            0 => 0m,
            // Prices as they are configured: a few digits, any scale.
            1 or 2 => new decimal(random.Next(1, 100_000), 0, 0, false, (byte)random.Next(0, 12)),
            3 => new decimal(random.Next(), 0, 0, false, (byte)random.Next(0, 29)),
            4 => new decimal(random.Next(), random.Next(), 0, false, (byte)random.Next(0, 29)),
            _ => new decimal(random.Next(), random.Next(), random.Next(0, 3), false, (byte)random.Next(0, 29)),
        };
        int Count() => random.Next(4) switch
        {
            0 => 0,
            1 => random.Next(0, 10),
            2 => random.Next(0, 200_000),
            _ => random.Next(),
        };
        for (var i = 0; i < 200_000; i++)
        {
            var model = new ModelOptions { CostPer1kInput = Price(), CostPer1kCachedInput = random.Next(2) == 0 ? null : Price(), CostPer1kOutput = Price() };
            var usage = new TokenUsage(Count(), Count(), Count());
            try
            {
                InDecimal(model, usage);
            }
            catch (OverflowException)
            {
                Assert.Throws<OverflowException>(() => Pricing.CostUsd(model, usage));
                continue;
            }
            AssertSameAsDecimal(model, usage);
        }
    }
}
