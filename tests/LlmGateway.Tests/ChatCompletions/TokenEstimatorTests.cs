using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;

namespace LlmGateway.Tests.ChatCompletions;

/// <summary>
/// Token counts before a call. The reference counts were taken once with the js-tiktoken npm package
/// (the port of OpenAI's tiktoken that ships the BPE ranks) on exactly these strings, for cl100k_base
/// (GPT-4, GPT-3.5) and o200k_base (GPT-4o, o-series): Microsoft.ML.Tokenizers must give the same
/// numbers for a known family, and the chars/4 heuristic (unknown families) must stay within an order
/// of magnitude, and a factor of two for Latin-script text.
/// </summary>
public class TokenEstimatorTests : IAsyncLifetime
{
    // The tokenizers load in the background at first use; these tests want them ready.
    public Task InitializeAsync() => TokenEstimator.WarmAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private const string Prose =
        "The gateway sits between your applications and the model providers. Every request is read once, routed to the model that fits the task, and sent on; " +
        "if that provider is slow or down, the next candidate takes over before the client sees a byte. Costs are estimated before the call and corrected " +
        "afterwards from the usage the provider reports, so budgets stay honest even when a stream breaks halfway.";

    private const string Code =
        "public static int Fibonacci(int n)\n{\n    if (n < 0) throw new ArgumentOutOfRangeException(nameof(n));\n    int a = 0, b = 1;\n" +
        "    for (var i = 0; i < n; i++)\n    {\n        (a, b) = (b, a + b);\n    }\n    return a;\n}\n";

    private const string Json =
        "{\"id\":\"order-1042\",\"customer\":{\"name\":\"Ada Lovelace\",\"email\":\"ada@example.com\"},\"items\":[{\"sku\":\"KB-88\",\"qty\":2,\"price\":49.5}," +
        "{\"sku\":\"MS-12\",\"qty\":1,\"price\":19.99}],\"paid\":true,\"created\":\"2024-05-01T12:30:00Z\"}";

    // Japanese needs about one token per character, four times the heuristic's assumption: the worst
    // common case, still inside an order of magnitude.
    private const string Japanese = "ゲートウェイはアプリケーションとモデルプロバイダーの間にあり、各リクエストをタスクに合ったモデルへ送ります。";

    public static TheoryData<string, string, int, int> Texts => new()
    {
        // name, text, cl100k_base tokens, o200k_base tokens
        { "English prose", Prose, 77, 77 },
        { "C# code", Code, 72, 76 },
        { "JSON", Json, 78, 80 },
        { "Japanese", Japanese, 56, 36 },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void The_estimate_is_within_an_order_of_magnitude_of_real_token_counts(string name, string text, int cl100k, int o200k)
    {
        var estimate = TokenEstimator.FromText(text);
        foreach (var actual in new[] { cl100k, o200k })
        {
            Assert.True(estimate >= actual / 10.0 && estimate <= actual * 10.0, $"{name}: estimated {estimate}, actual {actual}");
        }
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public void The_estimate_is_within_a_factor_of_two_for_latin_script_text(string name, string text, int cl100k, int o200k)
    {
        if (name == "Japanese") return;
        var estimate = TokenEstimator.FromText(text);
        foreach (var actual in new[] { cl100k, o200k })
        {
            Assert.True(estimate >= actual / 2.0 && estimate <= actual * 2.0, $"{name}: estimated {estimate}, actual {actual}");
        }
    }

    [Fact]
    public void The_texts_are_the_ones_that_were_counted()
    {
        // The reference counts hold only for these exact strings: the SHA-256 prefixes of their UTF-8
        // bytes as counted. Editing a text without recounting fails here.
        static string Hash(string s) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(s)))[..16];
        Assert.Equal(["bd31e24e77c9cb75", "07eea4d7d3573d37", "312056e9dfb81704", "be95c9be82cf5e5f"], new[] { Hash(Prose), Hash(Code), Hash(Json), Hash(Japanese) });
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public void The_family_tokenizers_count_exactly_what_tiktoken_counts(string name, string text, int cl100k, int o200k)
    {
        Assert.True(cl100k == TokenEstimator.TokenizerFor("gpt-4")!.CountTokens(text), $"{name}, cl100k_base");
        Assert.True(o200k == TokenEstimator.TokenizerFor("gpt-4o")!.CountTokens(text), $"{name}, o200k_base");
    }

    [Theory]
    [InlineData("gpt-4o", "o200k")]
    [InlineData("GPT-4o-mini-2024-07-18", "o200k")]
    [InlineData("openai/gpt-4o", "o200k")]
    [InlineData("chatgpt-4o-latest", "o200k")]
    [InlineData("gpt-4.1-nano", "o200k")]
    [InlineData("gpt-5", "o200k")]
    [InlineData("o1", "o200k")]
    [InlineData("o3-mini", "o200k")]
    [InlineData("o4-mini-high", "o200k")]
    [InlineData("gpt-4", "cl100k")]
    [InlineData("gpt-4-turbo", "cl100k")]
    [InlineData("gpt-3.5-turbo", "cl100k")]
    [InlineData("gpt-35-turbo", "cl100k")]
    [InlineData("claude-3-5-sonnet", null)]
    [InlineData("gemini-2.0-flash", null)]
    [InlineData("llama3", null)]
    [InlineData("omni-model", null)]
    [InlineData("o", null)]
    [InlineData("auto", null)]
    [InlineData("", null)]
    public void A_model_name_picks_its_family_tokenizer_or_none(string model, string? family)
    {
        var tokenizer = TokenEstimator.TokenizerFor(model);
        Assert.Equal(family switch
        {
            "o200k" => TokenEstimator.TokenizerFor("gpt-4o"),
            "cl100k" => TokenEstimator.TokenizerFor("gpt-4"),
            _ => null,
        }, tokenizer);
        if (family is not null) Assert.NotSame(TokenEstimator.TokenizerFor("gpt-4o"), TokenEstimator.TokenizerFor("gpt-4"));
    }

    private static int Estimate(string model, string content)
    {
        var body = Encoding.UTF8.GetBytes($$"""{"model":{{JsonSerializer.Serialize(model)}},"messages":[{"role":"user","content":{{JsonSerializer.Serialize(content)}}}]}""");
        using var request = ChatRequest.TryParse(body, out var error);
        Assert.Null(error);
        return request!.EstimatedPromptTokens;
    }

    [Fact]
    public void A_chat_request_for_a_known_family_is_estimated_with_its_tokenizer_and_others_with_the_heuristic()
    {
        const int framing = TokenEstimator.TokensPerMessage + TokenEstimator.TokensPerReply;

        Assert.Equal(36 + framing, Estimate("gpt-4o-mini", Japanese));
        Assert.Equal(56 + framing, Estimate("gpt-3.5-turbo", Japanese));
        Assert.Equal(TokenEstimator.FromCharacters(Japanese.Length, 1, 0), Estimate("claude-3-5-haiku", Japanese));
        Assert.Equal(72 + framing, Estimate("gpt-4", Code));
    }

    [Fact]
    public void A_text_seen_before_is_counted_from_the_cache_with_the_same_count()
    {
        // A text of its own, so no other test has put it in the shared cache.
        var text = Prose + " " + Guid.NewGuid().ToString("N");
        Assert.Null(TokenEstimator.CachedO200kCount(text));

        var first = Estimate("gpt-4o-mini", text);
        var exact = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("o200k_base").CountTokens(text);
        Assert.Equal(exact, TokenEstimator.CachedO200kCount(text));
        Assert.Equal(first, Estimate("gpt-4o-mini", text));

        // Short texts are counted each time: hashing them would cost as much as counting.
        var shortText = "hi " + Guid.NewGuid().ToString("N");
        Assert.True(shortText.Length < TokenEstimator.MinCachedChars);
        Estimate("gpt-4o-mini", shortText);
        Assert.Null(TokenEstimator.CachedO200kCount(shortText));
    }

    [Fact]
    public void Tool_calls_and_tool_schemas_count_toward_a_known_family_estimate()
    {
        var body = Encoding.UTF8.GetBytes("""
            {"model":"gpt-4o","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "messages":[{"role":"user","content":"Weather in Paris?"},
                         {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}]}
            """);
        using var request = ChatRequest.TryParse(body, out var error);
        Assert.Null(error);
        using var doc = JsonDocument.Parse(body);
        var o200k = TokenEstimator.TokenizerFor("gpt-4o")!;
        var root = doc.RootElement;
        var expected = o200k.CountTokens("Weather in Paris?") + o200k.CountTokens(root.GetProperty("messages")[1].GetProperty("tool_calls").GetRawText())
            + o200k.CountTokens(root.GetProperty("tools").GetRawText()) + 2 * TokenEstimator.TokensPerMessage + TokenEstimator.TokensPerReply;
        Assert.Equal(expected, request!.EstimatedPromptTokens);
    }

    [Fact]
    public void A_huge_prompt_is_estimated_with_the_heuristic_even_for_a_known_family()
    {
        var huge = new string('x', (int)TokenEstimator.MaxTokenizedChars + 1);
        Assert.Equal(TokenEstimator.FromCharacters(huge.Length, 1, 0), Estimate("gpt-4o", huge));
    }

    [Fact]
    public void A_request_adds_framing_per_message_and_a_flat_cost_per_image()
    {
        Assert.Equal(100 + 2 * TokenEstimator.TokensPerMessage + TokenEstimator.TokensPerImage + TokenEstimator.TokensPerReply,
            TokenEstimator.FromCharacters(400, messages: 2, images: 1));
    }
}
