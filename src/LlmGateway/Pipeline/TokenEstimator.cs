namespace LlmGateway.Pipeline;

/// <summary>
/// Token counts before a call, without a tokenizer (none restores here). The heuristic: about four
/// characters of English text or code per token (OpenAI's own rule of thumb for cl100k/o200k),
/// plus a few tokens of framing per message and a flat cost per image (a low-detail image is 85
/// tokens on OpenAI; high detail costs more, so this errs low for large images). It is only used
/// for routing, context-window checks and budget reservations; real usage from the provider
/// replaces it after every call.
/// </summary>
public static class TokenEstimator
{
    public const int CharsPerToken = 4;
    public const int TokensPerMessage = 4;
    public const int TokensPerImage = 85;
    public const int TokensPerReply = 3;

    public static int FromCharacters(long textChars, int messages, int images)
    {
        var tokens = (textChars + CharsPerToken - 1) / CharsPerToken + (long)messages * TokensPerMessage + (long)images * TokensPerImage + TokensPerReply;
        return tokens > int.MaxValue ? int.MaxValue : (int)tokens;
    }

    /// <summary>Tokens of a piece of generated text, for providers that report no usage.</summary>
    public static int FromText(string text) => text.Length == 0 ? 0 : (text.Length + CharsPerToken - 1) / CharsPerToken;
}
