using LlmGateway.Pipeline;

namespace LlmGateway.Tests.ChatCompletions;

/// <summary>
/// The chars/4 heuristic against real token counts. No tokenizer restores here, so the counts were
/// taken once with the js-tiktoken npm package (the port of OpenAI's tiktoken that ships the BPE
/// ranks) on exactly these strings, for cl100k_base (GPT-4, GPT-3.5) and o200k_base (GPT-4o, o-series).
/// The estimate only steers routing and limits; real usage replaces it after every call, so the
/// promise is the order of magnitude, and within a factor of two for Latin-script text.
/// </summary>
public class TokenEstimatorTests
{
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

    [Fact]
    public void A_request_adds_framing_per_message_and_a_flat_cost_per_image()
    {
        Assert.Equal(100 + 2 * TokenEstimator.TokensPerMessage + TokenEstimator.TokensPerImage + TokenEstimator.TokensPerReply,
            TokenEstimator.FromCharacters(400, messages: 2, images: 1));
    }
}
