using LlmGateway.Configuration;
using LlmGateway.Providers;

namespace LlmGateway.Usage;

public static class Pricing
{
    /// <summary>
    /// Cost of a request: uncached prompt tokens at the input price, cached ones at the cached price
    /// (the input price when none is set), completion tokens at the output price.
    /// </summary>
    public static decimal CostUsd(ModelOptions model, TokenUsage usage)
    {
        var cached = Math.Min(usage.CachedPrompt, usage.Prompt);
        var uncached = usage.Prompt - cached;
        var cachedPrice = model.CostPer1kCachedInput ?? model.CostPer1kInput;
        if (TryCostInIntegers(uncached, model.CostPer1kInput, cached, cachedPrice, usage.Completion, model.CostPer1kOutput, out var cost)) return cost;
        return (uncached * model.CostPer1kInput
              + cached * cachedPrice
              + usage.Completion * model.CostPer1kOutput) / 1000m;
    }

    /// <summary>The most a request can cost: its estimated prompt and its full output allowance.</summary>
    public static decimal MaxCostUsd(ModelOptions model, int estimatedPromptTokens, int? maxTokens) =>
        CostUsd(model, new TokenUsage(estimatedPromptTokens, maxTokens ?? model.MaxOutputTokens));

    /// <summary>
    /// The decimal expression of <see cref="CostUsd"/>, the same value with the same scale (so the log line, the ledger
    /// and the headers print the same digits), computed on the prices' integers instead of in decimal
    /// arithmetic: a request prices itself about five times (routing, admission, the answer, settling), and three
    /// multiplications, two additions and a division in decimal were about 65 ns each time (PipelineBenchmarks.Pricing_CostUsd).
    /// False when a count or a price is negative, a price has more than nine digits or the sum does not fit in 64 bits;
    /// the decimal expression then.
    /// </summary>
    /// <remarks>
    /// Decimal arithmetic is exact here and fixes the scale: a token count times a price keeps the price's scale, a sum
    /// takes the larger scale, so the sum is the integer <c>S</c> at the largest of the three scales, <c>s</c>. Its
    /// division by 1000 is <c>S / 1000</c> at scale <c>s</c> when that is exact; otherwise the quotient is worked out to
    /// more digits and its trailing zeros cut, which is <c>S</c> at scale <c>s + 3</c> without its trailing zeros.
    /// PricingTests compares the two on many prices and counts.
    /// </remarks>
    private static bool TryCostInIntegers(int uncached, decimal inputPrice, int cached, decimal cachedPrice, int completion, decimal outputPrice, out decimal cost)
    {
        cost = 0;
        if ((uncached | cached | completion) < 0) return false;
        if (!TryInteger(inputPrice, out var input, out var inputScale)
            || !TryInteger(cachedPrice, out var cachedInput, out var cachedScale)
            || !TryInteger(outputPrice, out var output, out var outputScale)) return false;
        var scale = Math.Max(inputScale, Math.Max(cachedScale, outputScale));
        if (scale > 25) return false; // 28, the most a decimal has, once divided by 1000
        if (!TryTerm(uncached, input, scale - inputScale, out var sum)
            || !TryTerm(cached, cachedInput, scale - cachedScale, out var term) || !TryAdd(ref sum, term)
            || !TryTerm(completion, output, scale - outputScale, out term) || !TryAdd(ref sum, term)) return false;

        if (sum % 1000 == 0)
        {
            cost = new decimal((int)(uint)(sum / 1000), (int)(uint)(sum / 1000 >> 32), 0, false, (byte)scale);
            return true;
        }
        scale += 3;
        while (sum % 10 == 0)
        {
            sum /= 10;
            scale--;
        }
        cost = new decimal((int)(uint)sum, (int)(uint)(sum >> 32), 0, false, (byte)scale);
        return true;
    }

    /// <summary>
    /// A price's integer and scale, when the integer fits in 32 bits (nine digits: any price as configured) and it is
    /// not negative. Beyond 32 bits decimal multiplication takes another path, which gives a zero product another scale.
    /// </summary>
    private static bool TryInteger(decimal value, out ulong integer, out int scale)
    {
        var parts = DecimalParts.Of(value);
        integer = parts.Integer;
        scale = parts.Scale;
        return parts.Fits && integer <= uint.MaxValue && !parts.Negative;
    }

    /// <summary><paramref name="tokens"/> times <paramref name="price"/> raised by <paramref name="pow10"/> powers of ten, when it fits in 64 bits.</summary>
    private static bool TryTerm(int tokens, ulong price, int pow10, out ulong term)
    {
        term = (ulong)tokens;
        for (var i = 0; i < pow10; i++)
        {
            if (Math.BigMul(price, 10, out price) != 0) return false;
        }
        return Math.BigMul(term, price, out term) == 0;
    }

    private static bool TryAdd(ref ulong sum, ulong term)
    {
        var before = sum;
        sum += term;
        return sum >= before;
    }
}
