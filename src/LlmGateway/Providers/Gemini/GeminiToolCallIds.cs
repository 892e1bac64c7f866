namespace LlmGateway.Providers.Gemini;

/// <summary>
/// Gemini answers a function call by name and gives the call no id of its own, but its thinking
/// models attach a <c>thoughtSignature</c> that must come back with the call in the next turn (Gemini
/// 3 refuses the turn without it). OpenAI clients send back only the tool call id, so the signature
/// travels inside it, base64url-encoded so the id stays within the characters every provider accepts
/// for ids (letters, digits, '_' and '-'), in case the client switches models mid-conversation.
/// </summary>
public static class GeminiToolCallIds
{
    private const string Marker = "__thought__";

    public static string Create(string? signature) =>
        string.IsNullOrEmpty(signature) ? NativeProvider.NewToolCallId() : NativeProvider.NewToolCallId() + Marker + ToBase64Url(signature);

    /// <summary>The signature carried by an id this class created, else null.</summary>
    public static string? Signature(string id)
    {
        var at = id.IndexOf(Marker, StringComparison.Ordinal);
        return at < 0 ? null : FromBase64Url(id.AsSpan(at + Marker.Length));
    }

    private static string ToBase64Url(string base64) => base64.TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string FromBase64Url(ReadOnlySpan<char> encoded)
    {
        var padding = (4 - encoded.Length % 4) % 4;
        return string.Create(encoded.Length + padding, (encoded.ToString(), padding), static (span, s) =>
        {
            for (var i = 0; i < s.Item1.Length; i++)
            {
                span[i] = s.Item1[i] switch { '-' => '+', '_' => '/', var c => c };
            }
            span[s.Item1.Length..].Fill('=');
        });
    }
}
