namespace LlmGateway.Auth;

/// <summary>
/// The models a key may use: names or globs (<c>*</c> any run of characters, <c>?</c> one), compared
/// case-insensitively like the model names in Gateway:Models. <c>["*"]</c> is everything.
/// </summary>
public sealed class ModelPatterns
{
    public static readonly ModelPatterns All = new(["*"]);

    private readonly string[] _patterns;
    private readonly bool _all;

    public ModelPatterns(IEnumerable<string> patterns)
    {
        _patterns = [.. patterns];
        _all = Array.IndexOf(_patterns, "*") >= 0;
    }

    public IReadOnlyList<string> Patterns => _patterns;

    public bool Allows(string model)
    {
        if (_all) return true;
        foreach (var p in _patterns)
        {
            if (Glob(p, model)) return true;
        }
        return false;
    }

    /// <summary>Iterative glob match with one backtrack point: linear in practice, no regex, no allocation.</summary>
    internal static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || char.ToLowerInvariant(pattern[p]) == char.ToLowerInvariant(text[t])))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}
