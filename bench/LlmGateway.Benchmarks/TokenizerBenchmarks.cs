using System.Text;
using BenchmarkDotNet.Attributes;
using LlmGateway.Pipeline;

namespace LlmGateway.Benchmarks;

/// <summary>
/// What the tokenizer adds to step 2 (issue 17: the cost in µs per request is in the bench). The same chat body
/// parsed for a model of a known family (gpt-4o-mini: o200k_base, counted by Microsoft.ML.Tokenizers) and for
/// an unknown one (the heuristic, what the bench's load rows use), at the bench's size (about 1 KB of text)
/// and ten times it. A known family's counts are kept per text: "Seen" sends the same body again (a system
/// prompt or a repeated request: the count comes from the cache), "Unseen" a body whose every text is new
/// (the tokenizer counts it all).
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private byte[] _known = null!, _unknown = null!, _knownLarge = null!, _unknownLarge = null!;
    private byte[][] _unseen = null!, _unseenLarge = null!;
    private int _next;

    /// <summary>More distinct bodies than the count cache holds, so a body is never seen again while it is cached.</summary>
    private const int Variations = 16_384;

    [GlobalSetup]
    public void Setup()
    {
        TokenEstimator.WarmAsync().GetAwaiter().GetResult();
        var body = Encoding.UTF8.GetString(Samples.MissBody);
        // Ten user turns instead of one: the same words, ten times the text.
        var start = body.IndexOf("{\"role\":\"user\"", StringComparison.Ordinal);
        var end = body.IndexOf('}', start) + 1;
        var turn = body[start..end];
        var large = body[..start] + string.Join(",", Enumerable.Repeat(turn, 10)) + body[end..];
        _known = Encoding.UTF8.GetBytes(body.Replace("\"bench-model\"", "\"gpt-4o-mini\"", StringComparison.Ordinal));
        _unknown = Encoding.UTF8.GetBytes(body);
        _knownLarge = Encoding.UTF8.GetBytes(large.Replace("\"bench-model\"", "\"gpt-4o-mini\"", StringComparison.Ordinal));
        _unknownLarge = Encoding.UTF8.GetBytes(large);
        if (Parse(_known) == Parse(_unknown)) throw new InvalidOperationException("the known family was not counted by its tokenizer");
        // Every text of the body made new: a number in front of each message's content.
        static byte[] Unseen(string body, int i) => Encoding.UTF8.GetBytes(body.Replace("\"content\":\"", $"\"content\":\"{i} ", StringComparison.Ordinal));
        var known = Encoding.UTF8.GetString(_known);
        var knownLarge = Encoding.UTF8.GetString(_knownLarge);
        _unseen = [.. Enumerable.Range(0, Variations).Select(i => Unseen(known, i))];
        _unseenLarge = [.. Enumerable.Range(0, Variations).Select(i => Unseen(knownLarge, i))];
    }

    private static int Parse(byte[] body)
    {
        using var chat = ChatRequest.TryParse(body, out var error) ?? throw new InvalidOperationException(error!.Message);
        return chat.EstimatedPromptTokens;
    }

    [Benchmark(Baseline = true)]
    public int Parse_UnknownFamily_Heuristic() => Parse(_unknown);

    [Benchmark]
    public int Parse_Gpt4oMini_O200k_Seen() => Parse(_known);

    [Benchmark]
    public int Parse_Gpt4oMini_O200k_Unseen() => Parse(_unseen[_next++ % Variations]);

    [Benchmark]
    public int Parse_UnknownFamily_Heuristic_10x() => Parse(_unknownLarge);

    [Benchmark]
    public int Parse_Gpt4oMini_O200k_10x_Seen() => Parse(_knownLarge);

    [Benchmark]
    public int Parse_Gpt4oMini_O200k_10x_Unseen() => Parse(_unseenLarge[_next++ % Variations]);
}
