using System.Net;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>
/// Per-key RPM and TPM with OpenAI's x-ratelimit-* headers. The gateway's clock is a manual one,
/// so windows pass when the test says so, not by sleeping.
/// </summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private const string Secret = "limited-key-0123456789";
    private readonly ManualClock _clock = new(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
    private FakeUpstream _upstream = null!;

    /// <summary>What the upstream reports as usage for the next answers (prompt, completion); 500s when null.</summary>
    private (int Prompt, int Completion)? _usage = (11, 7);

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, received) =>
        {
            if (_usage is not { } u) return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", "server_error"), 500);
            if (received.Json.TryGetProperty("stream", out var s) && s.GetBoolean())
            {
                return OpenAiWire.WriteStreamAsync(http, ["a", "b"], u.Prompt, u.Completion);
            }
            return OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok", u.Prompt, u.Completion));
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Gateway(int rpm = 0, int tpm = 0)
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl).WithKeys(new AuthKit.Key("limited", Secret, Rpm: rpm, Tpm: tpm));
        settings["Gateway:Resilience:MaxRetries"] = "0";
        return new GatewayFactory(settings)
        {
            TestServices = services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(_clock);
            },
        };
    }

    /// <summary>"hi" in one user message: 1 token of text + 4 of framing + 3 for the reply (TokenEstimator).</summary>
    private const int PromptEstimate = 8;

    [Fact]
    public async Task Requests_over_the_keys_rpm_get_a_429_with_retry_after_and_the_request_headers()
    {
        await using var gateway = Gateway(rpm: 2);
        using var client = gateway.CreateClient();

        using (var first = await client.SendChatAsync(AuthKit.ValidBody, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("2", first.Header("x-ratelimit-limit-requests"));
            Assert.Equal("1", first.Header("x-ratelimit-remaining-requests"));
            Assert.Equal("30s", first.Header("x-ratelimit-reset-requests"));
            Assert.Null(first.Header("x-ratelimit-limit-tokens"));
        }
        using (var second = await client.SendChatAsync(AuthKit.ValidBody, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.Equal("0", second.Header("x-ratelimit-remaining-requests"));
            Assert.Equal("1m0s", second.Header("x-ratelimit-reset-requests"));
        }
        using (var third = await client.SendChatAsync(AuthKit.ValidBody, Secret))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            var error = await AuthKit.ErrorAsync(third);
            Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
            Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
            // Two per minute: one slot frees up every 30 s.
            Assert.Equal(TimeSpan.FromSeconds(30), third.Headers.RetryAfter?.Delta);
            Assert.Equal("2", third.Header("x-ratelimit-limit-requests"));
            Assert.Equal("0", third.Header("x-ratelimit-remaining-requests"));
        }
        Assert.Equal(2, _upstream.Calls);

        _clock.Advance(TimeSpan.FromSeconds(29));
        using (var early = await client.SendChatAsync(AuthKit.ValidBody, Secret))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, early.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), early.Headers.RetryAfter?.Delta);
        }
        _clock.Advance(TimeSpan.FromSeconds(1));
        using (var later = await client.SendChatAsync(AuthKit.ValidBody, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, later.StatusCode);
            Assert.Equal("0", later.Header("x-ratelimit-remaining-requests"));
        }
        Assert.Equal(3, _upstream.Calls);
    }

    [Fact]
    public async Task Tpm_charges_the_estimate_at_admission_and_the_real_usage_at_the_end()
    {
        await using var gateway = Gateway(tpm: 1000);
        using var client = gateway.CreateClient();

        // Admission charges the estimate: 8 prompt + 100 max_tokens.
        _usage = (400, 500);
        using (var first = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 100), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("1000", first.Header("x-ratelimit-limit-tokens"));
            Assert.Equal((1000 - PromptEstimate - 100).ToString(System.Globalization.CultureInfo.InvariantCulture), first.Header("x-ratelimit-remaining-tokens"));
        }

        // It used 900, so 100 are left: a request that may need 8 + 200 waits until enough refills
        // (108 more tokens at 1000 a minute: 6.48 s, rounded up).
        using (var refused = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 200), Secret))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("rate_limit_exceeded", (await AuthKit.ErrorAsync(refused)).GetProperty("code").GetString());
            Assert.Equal("100", refused.Header("x-ratelimit-remaining-tokens"));
            Assert.Equal(TimeSpan.FromSeconds(7), refused.Headers.RetryAfter?.Delta);
            Assert.Equal("54s", refused.Header("x-ratelimit-reset-tokens"));
        }
        Assert.Equal(1, _upstream.Calls);

        _clock.Advance(TimeSpan.FromSeconds(7));
        _usage = (5, 5);
        using (var admitted = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 200), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, admitted.StatusCode);
        }

        // The estimate of 208 was corrected to the 10 used: most of it came back.
        using (var next = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 1), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            // 900 - 7 s of refill (116.67) + 10 used + 9 for this one = 802.33 in use.
            Assert.Equal("197", next.Header("x-ratelimit-remaining-tokens"));
        }
    }

    [Fact]
    public async Task A_request_that_fails_upstream_gives_its_tokens_back()
    {
        await using var gateway = Gateway(tpm: 1000);
        using var client = gateway.CreateClient();

        _usage = null;
        using (var failed = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 900), Secret))
        {
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        }
        _usage = (11, 7);
        using var after = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 900), Secret);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal((1000 - PromptEstimate - 900).ToString(System.Globalization.CultureInfo.InvariantCulture), after.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task A_request_bigger_than_the_whole_tpm_takes_all_of_it_instead_of_never_passing()
    {
        await using var gateway = Gateway(tpm: 50);
        using var client = gateway.CreateClient();
        using var big = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 500), Secret);
        Assert.Equal(HttpStatusCode.OK, big.StatusCode);
        Assert.Equal("0", big.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task A_request_refused_for_tokens_gives_its_request_slot_back()
    {
        await using var gateway = Gateway(rpm: 2, tpm: 50);
        using var client = gateway.CreateClient();

        // Uses 18 of 50 tokens (11 + 7 reported), and one of two requests.
        using (var first = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 20), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        // Needs 8 + 40 tokens; only 32 are left.
        using (var refused = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 40), Secret))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Contains("tokens", (await AuthKit.ErrorAsync(refused)).GetProperty("message").GetString());
            Assert.Equal("1", refused.Header("x-ratelimit-remaining-requests"));
        }
        // So the second request of the minute is still there.
        using (var second = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 1), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.Equal("0", second.Header("x-ratelimit-remaining-requests"));
        }
        using (var overRpm = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 1), Secret))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, overRpm.StatusCode);
            Assert.Contains("requests", (await AuthKit.ErrorAsync(overRpm)).GetProperty("message").GetString());
            // A refusal for requests still reports the tokens' state.
            Assert.NotNull(overRpm.Header("x-ratelimit-remaining-tokens"));
        }
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task Streamed_answers_carry_the_rate_limit_headers_and_charge_the_streamed_usage()
    {
        await using var gateway = Gateway(rpm: 10, tpm: 1000);
        using var client = gateway.CreateClient();

        _usage = (300, 300);
        using (var streamed = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 10, stream: true), Secret))
        {
            Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
            Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType?.MediaType);
            Assert.Equal("9", streamed.Header("x-ratelimit-remaining-requests"));
            Assert.Equal("982", streamed.Header("x-ratelimit-remaining-tokens"));
            Assert.EndsWith("data: [DONE]\n\n", await streamed.Content.ReadAsStringAsync());
        }
        using var next = await client.SendChatAsync(AuthKit.ChatBody("test-model", maxTokens: 10), Secret);
        Assert.Equal((1000 - 600 - PromptEstimate - 10).ToString(System.Globalization.CultureInfo.InvariantCulture), next.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task The_official_openai_sdk_sees_a_429_with_the_openai_error()
    {
        await using var gateway = Gateway(rpm: 1);
        var chat = gateway.ChatClient("test-model", apiKey: Secret);
        await chat.CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]);
        var refused = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() => chat.CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]));
        Assert.Equal(429, refused.Status);
        Assert.Contains("Rate limit reached", refused.Message);
    }
}
