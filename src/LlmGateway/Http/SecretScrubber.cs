using System.Text.RegularExpressions;

namespace LlmGateway.Http;

/// <summary>
/// Removes anything key-like from text that came from outside (upstream error bodies, exception
/// messages) before it reaches a client or a log: the configured secret values themselves, and the
/// shapes provider keys take (sk-…, AIza…, Bearer …, api-key=…).
/// </summary>
public static partial class SecretScrubber
{
    private static volatile string[] s_secrets = [];

    /// <summary>Registers a secret value so it is redacted wherever it appears.</summary>
    public static void Register(string? secret)
    {
        if (string.IsNullOrEmpty(secret) || secret.Length < 6) return;
        lock (typeof(SecretScrubber))
        {
            if (Array.IndexOf(s_secrets, secret) >= 0) return;
            s_secrets = [.. s_secrets, secret];
        }
    }

    public static string Scrub(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        foreach (var secret in s_secrets)
        {
            if (text.Contains(secret, StringComparison.Ordinal)) text = text.Replace(secret, "[redacted]", StringComparison.Ordinal);
        }
        return KeyShapes().Replace(text, m => m.Groups["prefix"].Value + "[redacted]");
    }

    [GeneratedRegex(@"(?<prefix>\b(?:api[-_]?key|x-api-key|x-goog-api-key|key|token|authorization)[""']?\s*[:=]\s*[""']?(?:Bearer\s+)?)[A-Za-z0-9._~+/-]{8,}|(?<prefix>Bearer\s+)[A-Za-z0-9._~+/-]{8,}|(?<prefix>)\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|(?<prefix>)\bAIza[0-9A-Za-z_-]{20,}|(?<prefix>)\bgw-[A-Za-z0-9_-]{16,}",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, matchTimeoutMilliseconds: 200)]
    private static partial Regex KeyShapes();
}
