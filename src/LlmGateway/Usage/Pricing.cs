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
        return (uncached * model.CostPer1kInput
              + cached * (model.CostPer1kCachedInput ?? model.CostPer1kInput)
              + usage.Completion * model.CostPer1kOutput) / 1000m;
    }

    /// <summary>The most a request can cost: its estimated prompt and its full output allowance.</summary>
    public static decimal MaxCostUsd(ModelOptions model, int estimatedPromptTokens, int? maxTokens) =>
        CostUsd(model, new TokenUsage(estimatedPromptTokens, maxTokens ?? model.MaxOutputTokens));
}
