using System.Collections.Frozen;

namespace LlmGateway.PassThrough;

/// <summary>Which /v1 paths are forwarded, where to, and the low-cardinality label each call is recorded under.</summary>
public static class PassThroughPaths
{
    public static readonly PathString Prefix = "/v1";

    /// <summary>The label of a path whose first segment is not one of OpenAI's known resources.</summary>
    public const string OtherLabel = "passthrough:other";

    /// <summary>
    /// First segments the gateway answers itself. A catch-all route would otherwise take the methods
    /// their explicit routes don't map (GET /v1/chat/completions is OpenAI's stored-completions list),
    /// and forwarding those would bypass routing, budgets and key model lists.
    /// </summary>
    private static readonly FrozenSet<string> s_owned = FrozenSet.Create(StringComparer.OrdinalIgnoreCase,
        "chat", "models", "embeddings", "conversations", "batch", "responses");

    /// <summary>
    /// OpenAI's top-level resources, each its own label. Anything else is <see cref="OtherLabel"/>:
    /// the first segment comes from the client, and labels (the ledger's task type) must stay bounded.
    /// </summary>
    private static readonly FrozenDictionary<string, string> s_labels = new[]
    {
        "moderations", "audio", "images", "files", "uploads", "responses", "completions", "batches", "vector_stores",
        "fine_tuning", "assistants", "threads", "realtime", "containers", "evals", "videos",
    }.ToFrozenDictionary(s => s, s => "passthrough:" + s, StringComparer.OrdinalIgnoreCase);

    private static readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> s_ownedBySpan = s_owned.GetAlternateLookup<ReadOnlySpan<char>>();
    private static readonly FrozenDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> s_labelsBySpan = s_labels.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The part of <paramref name="path"/> after <c>/v1</c> (case-insensitive, like routing), or false when it isn't under /v1.</summary>
    public static bool TryGetRemainder(PathString path, out PathString remainder) =>
        path.StartsWithSegments(Prefix, StringComparison.OrdinalIgnoreCase, out remainder);

    /// <summary>The first segment of a remainder such as <c>/audio/transcriptions</c>: <c>audio</c>.</summary>
    public static ReadOnlySpan<char> FirstSegment(PathString remainder)
    {
        var s = remainder.Value.AsSpan().TrimStart('/');
        var slash = s.IndexOf('/');
        return slash < 0 ? s : s[..slash];
    }

    public static bool IsGatewayOwned(ReadOnlySpan<char> firstSegment) => s_ownedBySpan.Contains(firstSegment);

    public static string Label(ReadOnlySpan<char> firstSegment) =>
        s_labelsBySpan.TryGetValue(firstSegment, out var label) ? label : OtherLabel;

    /// <summary>
    /// The upstream URL: the remainder and query string appended to the provider's BaseUrl, which ends
    /// in /v1 like OpenAI's (<c>/v1/moderations</c> to <c>{BaseUrl}/moderations</c>). Path and query keep
    /// their escaping.
    /// </summary>
    public static Uri Target(string baseUrlWithoutTrailingSlash, PathString remainder, QueryString query) =>
        new(string.Concat(baseUrlWithoutTrailingSlash, remainder.ToUriComponent(), query.ToUriComponent()));
}
