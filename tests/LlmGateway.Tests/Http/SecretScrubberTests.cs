using LlmGateway.Http;

namespace LlmGateway.Tests.Http;

public class SecretScrubberTests
{
    // Registered once per process; unique to this class so other tests' secrets don't matter.
    private const string Secret = "sk-scrubber-test-Zq8vN2mP4rT6wY1xK3";

    public SecretScrubberTests() => SecretScrubber.Register(Secret);

    [Fact]
    public void A_registered_secret_is_redacted_wherever_it_appears()
    {
        var scrubbed = SecretScrubber.Scrub($"bad key {Secret}, really: '{Secret}'");
        Assert.DoesNotContain(Secret, scrubbed);
        Assert.Contains("[redacted]", scrubbed);
        Assert.StartsWith("bad key ", scrubbed);
    }

    [Theory]
    [InlineData("…scrubber-test-Zq8vN2mP…")]          // the middle of it
    [InlineData("sk-scrubber-test-Zq8v****")]          // cut and masked
    [InlineData("key=Zq8vN2mP4rT6wY1xK3")]              // the part after the prefix
    [InlineData("mP4rT6wY1xK3 was refused")]            // the tail
    public void Long_pieces_of_a_registered_secret_are_redacted_too(string text)
    {
        var scrubbed = SecretScrubber.Scrub(text);
        for (var i = 0; i + SecretScrubber.FragmentLength <= Secret.Length; i++)
        {
            Assert.DoesNotContain(Secret.Substring(i, SecretScrubber.FragmentLength), scrubbed);
        }
    }

    [Theory]
    [InlineData("Incorrect API key provided: sk-proj-abcdefghijklmnop1234.", "sk-proj-abcdefghijklmnop1234")]
    [InlineData("header Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "eyJhbGciOi")]
    [InlineData("https://generativelanguage.googleapis.com/v1/models?key=AIzaSyA1234567890abcdefghijklmnop", "AIzaSyA1234567890abcdefghijklmnop")]
    [InlineData("{\"api_key\": \"abcd1234efgh5678\"}", "abcd1234efgh5678")]
    [InlineData("x-goog-api-key: q1w2e3r4t5y6u7i8", "q1w2e3r4t5y6u7i8")]
    [InlineData("client_secret=s3cr3tvalue99", "s3cr3tvalue99")]
    [InlineData("groq says gsk_abcdefghijklmnopqrstuvwx is wrong", "gsk_abcdefghijklmnopqrstuvwx")]
    [InlineData("token hf_abcdefghijklmnopqrstuv", "hf_abcdefghijklmnopqrstuv")]
    [InlineData("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE")]
    [InlineData("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==")]
    [InlineData("gateway key gw-AbCdEfGhIjKlMnOpQrStUv was revoked", "gw-AbCdEfGhIjKlMnOpQrStUv")]
    public void Key_shaped_text_is_redacted_even_when_never_registered(string text, string secret)
    {
        var scrubbed = SecretScrubber.Scrub(text);
        Assert.DoesNotContain(secret, scrubbed);
        Assert.Contains("[redacted]", scrubbed);
    }

    [Theory]
    [InlineData("max_tokens: 100000000 is too large")]
    [InlineData("This model's maximum context length is 128000 tokens. However, you requested 130000 tokens.")]
    [InlineData("Invalid value for 'temperature': expected a number between 0 and 2.")]
    [InlineData("Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000.")]
    public void Ordinary_error_messages_are_left_alone(string text) => Assert.Equal(text, SecretScrubber.Scrub(text));

    [Fact]
    public void Short_or_empty_secrets_are_not_registered_and_nothing_throws()
    {
        SecretScrubber.Register("");
        SecretScrubber.Register(null);
        SecretScrubber.Register("abc");
        Assert.Equal("abc def", SecretScrubber.Scrub("abc def"));
        Assert.Equal("", SecretScrubber.Scrub(null));
    }

    [Fact]
    public void Large_and_hostile_text_is_scrubbed_without_throwing()
    {
        // 64 KB (the most of an error body ever read) of near-misses of key shapes.
        var hostile = string.Concat(Enumerable.Repeat("api_key=api_key=Bearer sk-ab Bearer AIza key: ", 1500));
        var scrubbed = SecretScrubber.Scrub(hostile + Secret);
        Assert.DoesNotContain(Secret, scrubbed);
    }
}
