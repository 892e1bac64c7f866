namespace LlmGateway.Providers;

/// <summary>Tokens of one request as the provider reported them (or as estimated where it reported none).</summary>
public readonly record struct TokenUsage(int Prompt, int Completion, int CachedPrompt = 0, int CacheWrite = 0)
{
    public int Total => Prompt + Completion;
    public bool IsEmpty => Prompt == 0 && Completion == 0;
}
