using System.Text.RegularExpressions;

namespace LlmGateway.Http;

/// <summary>
/// Removes anything key-like from text that came from outside (upstream error bodies, exception
/// messages) before it reaches a client or a log: the configured secret values themselves, long
/// pieces of them (an upstream that echoes a key cut or wrapped), and the shapes provider keys take
/// (sk-…, AIza…, Bearer …, api-key=…). It never throws: text it cannot check in time is withheld.
/// </summary>
public static partial class SecretScrubber
{
    public const string Redacted = "[redacted]";

    /// <summary>Secrets shorter than this are not registered: redacting every "abc" would garble text and protect nothing.</summary>
    public const int MinSecretLength = 6;

    /// <summary>
    /// Runs of this many characters of a registered secret are redacted wherever they appear. OpenAI
    /// itself echoes a masked key ("sk-abc1****wxyz", seven characters and four), so shorter pieces
    /// are treated as safe; anything longer is too much of the key.
    /// </summary>
    public const int FragmentLength = 10;

    public const string Withheld = "[message withheld: it could not be checked for secrets]";

    private static readonly Lock s_lock = new();
    private static volatile string[] s_secrets = [];

    /// <summary>Registers a secret value so it, and long pieces of it, are redacted wherever they appear.</summary>
    public static void Register(string? secret)
    {
        if (string.IsNullOrEmpty(secret) || secret.Length < MinSecretLength) return;
        lock (s_lock)
        {
            if (Array.IndexOf(s_secrets, secret) >= 0) return;
            // Longest first, so a secret that contains another is redacted whole.
            s_secrets = [.. s_secrets.Append(secret).OrderByDescending(s => s.Length)];
        }
    }

    public static string Scrub(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        try
        {
            foreach (var secret in s_secrets)
            {
                text = RedactSecret(text, secret);
            }
            return KeyShapes().Replace(text, static m => m.Groups["prefix"].Value + Redacted);
        }
        catch (RegexMatchTimeoutException)
        {
            // Text built to make the patterns slow: better no message than an unchecked one.
            return Withheld;
        }
    }

    /// <summary>The secret itself, then every run of <see cref="FragmentLength"/> or more of its characters.</summary>
    private static string RedactSecret(string text, string secret)
    {
        if (text.Contains(secret, StringComparison.Ordinal)) text = text.Replace(secret, Redacted, StringComparison.Ordinal);
        if (secret.Length < FragmentLength || text.Length < FragmentLength) return text;

        // Slide over the text; wherever a window equals some window of the secret, extend the match
        // as far as the secret continues and cut it out. Quadratic in the worst case, but secrets are
        // short and this only ever sees error text (at most 64 KB).
        System.Text.StringBuilder? result = null;
        var copied = 0;
        var i = 0;
        while (i <= text.Length - FragmentLength)
        {
            var length = LongestRunAt(text, i, secret);
            if (length >= FragmentLength)
            {
                result ??= new System.Text.StringBuilder(text.Length);
                result.Append(text, copied, i - copied).Append(Redacted);
                i += length;
                copied = i;
            }
            else
            {
                i++;
            }
        }
        if (result is null) return text;
        return result.Append(text, copied, text.Length - copied).ToString();
    }

    /// <summary>The longest stretch of <paramref name="text"/> from <paramref name="at"/> that also occurs in <paramref name="secret"/>.</summary>
    private static int LongestRunAt(string text, int at, string secret)
    {
        var window = text.AsSpan(at, FragmentLength);
        var best = 0;
        var from = 0;
        while (from <= secret.Length - FragmentLength)
        {
            var found = secret.AsSpan(from).IndexOf(window, StringComparison.Ordinal);
            if (found < 0) break;
            var s = from + found;
            var length = FragmentLength;
            while (at + length < text.Length && s + length < secret.Length && text[at + length] == secret[s + length]) length++;
            best = Math.Max(best, length);
            from = s + 1;
        }
        return best;
    }

    // Key-shaped text: a value with a letter in it after a key-ish name (api_key=, "x-api-key": ,
    // token: , password=; "max_tokens: 100000" is a number, not a secret),
    // an Authorization scheme's credentials, and the prefixes providers give their keys: OpenAI and
    // Anthropic sk-, Google AIza, Groq gsk_, xAI xai-, Hugging Face hf_, GitHub ghp_/github_pat_,
    // AWS access key ids, JWTs, and this gateway's own gw- keys.
    [GeneratedRegex("""
        (?<prefix>\b(?:[a-z]+[-_])?(?:api[-_]?key|apikey|key|token|secret|password|passwd|authorization|credential)s?["']?\s*[:=]\s*["']?(?:Bearer\s+|Basic\s+)?)(?=[A-Za-z0-9._~+/=-]*[A-Za-z])[A-Za-z0-9._~+/=-]{8,}
        |(?<prefix>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}
        |(?<prefix>)\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}
        |(?<prefix>)\bAIza[0-9A-Za-z_-]{20,}
        |(?<prefix>)\b(?:gsk|hf|ghp|gho|ghs|github_pat|glpat)_[A-Za-z0-9_]{16,}
        |(?<prefix>)\bxai-[A-Za-z0-9_-]{16,}
        |(?<prefix>)\b(?:AKIA|ASIA)[0-9A-Z]{16}\b
        |(?<prefix>)\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}
        |(?<prefix>)\bgw-[A-Za-z0-9_-]{16,}
        """,
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.IgnorePatternWhitespace, matchTimeoutMilliseconds: 200)]
    private static partial Regex KeyShapes();
}
