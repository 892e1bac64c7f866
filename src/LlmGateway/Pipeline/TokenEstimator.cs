using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace LlmGateway.Pipeline;

/// <summary>
/// Token counts before a call (budget reservations, TPM pre-charges, context-window filtering). For a
/// model whose family is known by its name, the prompt is counted with that family's tokenizer
/// (<c>o200k_base</c> for gpt-4o, gpt-4.1, gpt-5 and the o-series; <c>cl100k_base</c> for gpt-4 and gpt-3.5),
/// through Microsoft.ML.Tokenizers. Other models (Claude, Gemini, Llama…, configured aliases, <c>auto</c>)
/// use the heuristic: about four characters of English text or code per token (OpenAI's own rule of thumb),
/// plus a few tokens of framing per message and a flat cost per image (a low-detail image is 85 tokens on
/// OpenAI; high detail costs more, so this errs low for large images). Real usage from the provider
/// replaces the estimate after every call.
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

    /// <summary>
    /// Beyond this much text the heuristic is used even for a known family: counting costs about 0.1 µs per
    /// character here (measured: ~100 µs for a 1.5 KB prompt, ~1 ms for 15 KB), so a 4 MB body would cost
    /// hundreds of ms of CPU, and an estimate of a prompt that size needs no precision.
    /// </summary>
    public const long MaxTokenizedChars = 32 * 1024;

    private static readonly FamilyTokenizer s_o200k = new("o200k_base");
    private static readonly FamilyTokenizer s_cl100k = new("cl100k_base");

    /// <summary>The count the o200k_base cache holds for <paramref name="text"/>, if any (tests).</summary>
    internal static int? CachedO200kCount(string text) => s_o200k.Cached(text);

    /// <summary>Loads both tokenizers now (tests; a host that wants exact estimates from its first request).</summary>
    public static Task WarmAsync() => Task.WhenAll(s_o200k.LoadAsync(), s_cl100k.LoadAsync());

    /// <summary>
    /// The tokenizer of the model's family when its name says it and it is loaded, else null (the heuristic).
    /// The first ask starts loading it in the background (o200k takes most of a second) rather than
    /// holding that request; the requests meanwhile get the heuristic.
    /// </summary>
    public static Tokenizer? TokenizerFor(string model) => FamilyOf(model)?.Loaded;

    private static FamilyTokenizer? FamilyOf(string model)
    {
        var name = model.AsSpan();
        // A provider prefix some clients send ("openai/gpt-4o").
        if (name.LastIndexOf('/') is var slash and >= 0) name = name[(slash + 1)..];
        if (StartsWith(name, "gpt-4o") || StartsWith(name, "chatgpt-4o") || StartsWith(name, "gpt-4.1") || StartsWith(name, "gpt-4.5")
            || StartsWith(name, "gpt-5") || IsOSeries(name))
        {
            return s_o200k;
        }
        if (StartsWith(name, "gpt-4") || StartsWith(name, "gpt-3.5") || StartsWith(name, "gpt-35")) return s_cl100k;
        return null;
    }

    /// <summary>
    /// Texts shorter than this are counted every time: hashing them for a lookup would cost about as much.
    /// </summary>
    internal const int MinCachedChars = 128;

    /// <summary>The counts kept per encoding, in characters of their texts; past it the cache starts over.</summary>
    internal const int MaxCachedChars = 4 * 1024 * 1024;

    /// <summary>
    /// One tiktoken encoding, loaded once, off the request path, with the counts of texts it has seen: a system
    /// prompt or a tool schema sent with every request is counted once, not per request (counting costs about
    /// 15 µs per KB of text; a lookup, one hash of the text). Bounded by <see cref="MaxCachedChars"/>: when
    /// full it is cleared, so a stream of unique prompts costs a count each, as without it.
    /// </summary>
    private sealed class FamilyTokenizer(string encoding)
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
        private long _cachedChars;

        public int Count(Tokenizer tokenizer, string text)
        {
            if (text.Length < MinCachedChars) return tokenizer.CountTokens(text);
            if (_counts.TryGetValue(text, out var known)) return known;
            var count = tokenizer.CountTokens(text);
            if (Interlocked.Add(ref _cachedChars, text.Length) > MaxCachedChars)
            {
                _counts.Clear();
                Interlocked.Exchange(ref _cachedChars, text.Length);
            }
            _counts.TryAdd(text, count);
            return count;
        }

        /// <summary>The count kept for <paramref name="text"/>, if any (tests).</summary>
        public int? Cached(string text) => _counts.TryGetValue(text, out var count) ? count : null;

        private readonly Lazy<Task<Tokenizer?>> _load = new(() => Task.Run(() =>
        {
            try
            {
                return (Tokenizer?)TiktokenTokenizer.CreateForEncoding(encoding);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or NotSupportedException or ArgumentException)
            {
                // The data package missing or unreadable: the heuristic, as for an unknown family.
                return null;
            }
        }));

        public Tokenizer? Loaded
        {
            get
            {
                var load = _load.Value;
                return load.IsCompletedSuccessfully ? load.Result : null;
            }
        }

        public Task LoadAsync() => _load.Value;
    }

    /// <summary>o1, o3, o4-mini…: "o", a digit, then the end or a dash.</summary>
    private static bool IsOSeries(ReadOnlySpan<char> name) =>
        name.Length >= 2 && (name[0] is 'o' or 'O') && char.IsAsciiDigit(name[1]) && (name.Length == 2 || name[2] == '-');

    private static bool StartsWith(ReadOnlySpan<char> name, string prefix) => name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The prompt of a Chat Completions body: counted with the family's tokenizer when
    /// the model names a known family and the text is not huge, else
    /// <see cref="FromCharacters"/> over <paramref name="textChars"/> (the characters <paramref name="chat"/>'s reader counted). Counts what the heuristic counts:
    /// message text, tool calls and tool schemas (as JSON), plus the same framing per message, image and reply.
    /// </summary>
    public static int ForChat(ChatRequest chat, long textChars, int images)
    {
        var messages = chat.MessageCount;
        if (textChars > MaxTokenizedChars || FamilyOf(chat.Model) is not { Loaded: { } tokenizer } family) return FromCharacters(textChars, messages, images);
        // Only a tokenizer reads the texts again, from the body's document (made here).
        var root = chat.Root;
        long tokens = 0;
        if (root.TryGetProperty("messages"u8, out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in list.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object) continue;
                if (m.TryGetProperty("content"u8, out var content))
                {
                    if (content.ValueKind == JsonValueKind.String) tokens += family.Count(tokenizer, content.GetString()!);
                    else if (content.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var part in content.EnumerateArray())
                        {
                            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text"u8, out var text) && text.ValueKind == JsonValueKind.String)
                                tokens += family.Count(tokenizer, text.GetString()!);
                        }
                    }
                }
                if (m.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array) tokens += family.Count(tokenizer, calls.GetRawText());
            }
        }
        if (root.TryGetProperty("tools"u8, out var tools) && tools.ValueKind == JsonValueKind.Array) tokens += family.Count(tokenizer, tools.GetRawText());
        tokens += (long)messages * TokensPerMessage + (long)images * TokensPerImage + TokensPerReply;
        return tokens > int.MaxValue ? int.MaxValue : (int)tokens;
    }
}
