using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using static LlmGateway.IntegrationTests.Messages.MessagesProviderTests;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// Every error the chat path knows, on /v1/messages, in Anthropic's shape
/// (<c>{"type":"error","error":{"type","message"},"request_id"}</c>) with the gateway's status and headers.
/// </summary>
public sealed class MessagesErrorTests : IAsyncLifetime
{
    private const string Secret = "gw-messages-tests-key-0123456789";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler("openai", FakeAnswer.Text));

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private static string Body(string model = "target-model", bool stream = false) =>
        $$"""{"model":"{{model}}","max_tokens":50,"messages":[{"role":"user","content":"hi"}],"stream":{{(stream ? "true" : "false")}}}""";

    private static async Task<JsonElement> AnthropicErrorAsync(HttpResponseMessage response, string type)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("error", body.GetProperty("type").GetString());
        var error = body.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(response.Headers.GetValues("x-request-id").Single(), body.GetProperty("request_id").GetString());
        return error;
    }

    private async Task<HttpResponseMessage> SendAsync(GatewayFactory gateway, string body, string? key = null, string path = "/v1/messages", Action<HttpRequestMessage>? edit = null)
    {
        using var client = gateway.CreateClient();
        using var request = Post(body, path);
        request.Headers.Remove("x-api-key");
        if (key is not null) request.Headers.Add("x-api-key", key);
        edit?.Invoke(request);
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    [Fact]
    public async Task An_unknown_model_is_anthropics_not_found_error()
    {
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl));
        using var response = await SendAsync(gateway, Body("claude-nonexistent"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await AnthropicErrorAsync(response, "not_found_error");
        Assert.Contains("claude-nonexistent", error.GetProperty("message").GetString());
        AssertGatewayHeaders(response, attempts: null);
        Assert.Equal("0", response.Headers.GetValues("x-gateway-attempts").Single());
        Assert.Equal(0, _upstream.Calls);
    }

    [Theory]
    [InlineData("""{"model":"target-model","messages":[{"role":"user","content":"hi"}]}""", "max_tokens")]
    [InlineData("""{"model":"target-model","max_tokens":5,"top_k":3,"messages":[{"role":"user","content":"hi"}]}""", "top_k")]
    [InlineData("""{"model":"target-model","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}""", "document")]
    [InlineData("""{"model":"target-model","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":1024}}""", "thinking")]
    [InlineData("""{"model":"target-model","max_tokens":5,""", "JSON")]
    [InlineData("", "empty")]
    public async Task Bad_or_unhonourable_requests_are_invalid_request_errors_before_any_call(string body, string mentioned)
    {
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl));
        using var response = await SendAsync(gateway, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await AnthropicErrorAsync(response, "invalid_request_error");
        Assert.Contains(mentioned, error.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_request_too_large()
    {
        var settings = ProviderFakes.Settings("openai", _upstream.BaseUrl);
        settings["Gateway:Limits:MaxRequestBytes"] = "1000";
        await using var gateway = new GatewayFactory(settings);
        using var response = await SendAsync(gateway, Body().Replace("\"hi\"", JsonSerializer.Serialize(new string('x', 2000)), StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AnthropicErrorAsync(response, "request_too_large");
    }

    [Fact]
    public async Task Gateway_keys_in_x_api_key_are_checked_and_refusals_are_anthropic_shaped()
    {
        var settings = ProviderFakes.Settings("openai", _upstream.BaseUrl).WithKeys(
            new AuthKit.Key("team-a", Secret, Models: ["target-model"]),
            new AuthKit.Key("team-b", Secret + "-b", Models: ["other-*"]));
        await using var gateway = new GatewayFactory(settings);

        using (var missing = await SendAsync(gateway, Body()))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
            await AnthropicErrorAsync(missing, "authentication_error");
        }
        using (var wrong = await SendAsync(gateway, Body(), key: "gw-not-a-key"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            await AnthropicErrorAsync(wrong, "authentication_error");
        }
        using (var forbidden = await SendAsync(gateway, Body(), key: Secret + "-b"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
            await AnthropicErrorAsync(forbidden, "permission_error");
        }
        // Claude Code's ANTHROPIC_AUTH_TOKEN arrives as a bearer token; the SDK's apiKey as x-api-key.
        using (var bearer = await SendAsync(gateway, Body(), edit: r => r.Headers.Authorization = new("Bearer", Secret)))
        {
            Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);
        }
        using var ok = await SendAsync(gateway, Body(), key: Secret);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("Bonjour!", JsonDocument.Parse(await ok.Content.ReadAsStringAsync()).RootElement.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task A_keys_rate_limit_is_rate_limit_error_with_retry_after()
    {
        var settings = ProviderFakes.Settings("openai", _upstream.BaseUrl).WithKeys(new AuthKit.Key("slow", Secret, Rpm: 1));
        await using var gateway = new GatewayFactory(settings);

        using (var first = await SendAsync(gateway, Body(), key: Secret)) Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await SendAsync(gateway, Body(), key: Secret);

        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        await AnthropicErrorAsync(second, "rate_limit_error");
        Assert.NotNull(second.Headers.RetryAfter?.Delta);
        Assert.True(second.Headers.Contains("x-ratelimit-remaining-requests"));
    }

    [Fact]
    public async Task Every_candidate_failing_upstream_is_an_api_error_with_the_gateways_502()
    {
        _upstream.Handler = (http, _) => ProviderFakes.Json(http, OpenAiWire.Error("boom", "server_error"), 500);
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl));
        using var response = await SendAsync(gateway, Body());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        await AnthropicErrorAsync(response, "api_error");
        AssertGatewayHeaders(response, attempts: "1");
    }

    [Fact]
    public async Task An_upstreams_own_400_reaches_the_client_as_an_invalid_request_error()
    {
        _upstream.Handler = (http, _) => ProviderFakes.Json(http, OpenAiWire.Error("'stop' has too many entries", "invalid_request_error", param: "stop"), 400);
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl));
        using var response = await SendAsync(gateway, Body());

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await AnthropicErrorAsync(response, "invalid_request_error");
        Assert.Contains("too many entries", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_stream_that_breaks_after_it_started_ends_with_one_error_event_and_no_message_stop()
    {
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk("partial "));
            await cut.Task.WaitAsync(TimeSpan.FromSeconds(15), http.RequestAborted);
            http.Abort();
        };
        var grace = new ManualTimeProvider();
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl)) { TestServices = s => s.Hold(grace) };
        using var response = await SendAsync(gateway, Body(stream: true));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var sse = await AnthropicSse.ReadBrokenAsync(response, grace, (name, _) =>
        {
            if (name == "content_block_delta") cut.TrySetResult();
        });

        Assert.Equal("partial ", sse.Text);
        Assert.Equal("error", sse.Names.Last());
        Assert.DoesNotContain("message_stop", sse.Names);
        Assert.DoesNotContain("message_delta", sse.Names);
        var error = sse.Events.Last().Data.GetProperty("error");
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.NotNull(sse.Error); // the connection was cut, so no client can take the partial answer for a whole one
    }

    [Fact]
    public async Task Count_tokens_answers_the_gateways_estimate_without_calling_a_provider()
    {
        await using var gateway = new GatewayFactory(ProviderFakes.Settings("openai", _upstream.BaseUrl));
        const string small = """{"model":"target-model","messages":[{"role":"user","content":"hi"}]}""";
        var large = """{"model":"target-model","system":"SYSTEM","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}"""
            .Replace("SYSTEM", new string('a', 4000), StringComparison.Ordinal);

        using var smallResponse = await SendAsync(gateway, small, path: "/v1/messages/count_tokens");
        using var largeResponse = await SendAsync(gateway, large, path: "/v1/messages/count_tokens");

        Assert.Equal(HttpStatusCode.OK, smallResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, largeResponse.StatusCode);
        var smallCount = JsonDocument.Parse(await smallResponse.Content.ReadAsStringAsync()).RootElement;
        var largeCount = JsonDocument.Parse(await largeResponse.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(["input_tokens"], smallCount.EnumerateObject().Select(p => p.Name));
        Assert.InRange(smallCount.GetProperty("input_tokens").GetInt32(), 1, 50);
        Assert.InRange(largeCount.GetProperty("input_tokens").GetInt32(), 1000, 5000);
        Assert.StartsWith("req_", smallResponse.Headers.GetValues("x-request-id").Single());
        Assert.Equal(0, _upstream.Calls);

        using var unknown = await SendAsync(gateway, small.Replace("target-model", "claude-nope", StringComparison.Ordinal), path: "/v1/messages/count_tokens");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        await AnthropicErrorAsync(unknown, "not_found_error");

        using var bad = await SendAsync(gateway, """{"model":"target-model"}""", path: "/v1/messages/count_tokens");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        await AnthropicErrorAsync(bad, "invalid_request_error");
    }
}
