using System.Net;
using System.Net.Http.Headers;
using LlmGateway.IntegrationTests.Infrastructure;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>Gateway:Auth:Mode none and keys, and the three places a client may put its key.</summary>
public sealed class AuthModeTests : IAsyncLifetime
{
    private const string TeamKey = "team-a-secret-key-0123456789";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok")));
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory KeysGateway() =>
        new(GatewayFactory.OpenAiSettings(_upstream.BaseUrl).WithKeys(new AuthKit.Key("team-a", TeamKey)));

    [Fact]
    public async Task Mode_none_serves_requests_that_carry_no_key()
    {
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl));
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ValidBody);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, _upstream.Calls);
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/V1/CHAT/COMPLETIONS")]
    [InlineData("/v1/models")]
    [InlineData("/v1/models/test-model")]
    [InlineData("/v1/no-such-endpoint")]
    public async Task Mode_keys_refuses_every_v1_path_without_a_key_with_an_openai_shaped_401(string path)
    {
        await using var gateway = KeysGateway();
        using var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(path.Contains("chat", StringComparison.OrdinalIgnoreCase) ? HttpMethod.Post : HttpMethod.Get, path)
        {
            Content = path.Contains("chat", StringComparison.OrdinalIgnoreCase) ? new StringContent(AuthKit.ValidBody, System.Text.Encoding.UTF8, "application/json") : null,
        };
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("authentication_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Theory]
    [InlineData("wrong-key-0123456789")]
    [InlineData("team-a-secret-key-012345678")]      // one character short
    [InlineData("TEAM-A-SECRET-KEY-0123456789")]     // keys are case-sensitive
    public async Task Mode_keys_refuses_an_unknown_key_without_repeating_it(string presented)
    {
        await using var gateway = KeysGateway();
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ValidBody, bearer: presented);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.DoesNotContain(presented[..10], error.GetProperty("message").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Theory]
    [InlineData("Authorization")]
    [InlineData("api-key")]
    [InlineData("x-api-key")]
    public async Task Mode_keys_accepts_a_configured_key_in_each_header_the_sdks_use(string header)
    {
        await using var gateway = KeysGateway();
        using var client = gateway.CreateClient();
        using var request = AuthKit.Chat(AuthKit.ValidBody);
        if (header == "Authorization") request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TeamKey);
        else request.Headers.Add(header, TeamKey);
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task The_official_openai_sdk_authenticates_with_its_api_key()
    {
        await using var gateway = KeysGateway();

        var result = await gateway.ChatClient("test-model", apiKey: TeamKey).CompleteChatAsync([new UserChatMessage("Hello")]);
        Assert.Equal("ok", result.Value.Content[0].Text);

        var refused = await Assert.ThrowsAsync<System.ClientModel.ClientResultException>(() =>
            gateway.ChatClient("test-model", apiKey: "not-a-gateway-key-42").CompleteChatAsync([new UserChatMessage("Hello")]));
        Assert.Equal(401, refused.Status);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task A_key_in_another_authorization_scheme_or_sent_twice_is_not_accepted()
    {
        await using var gateway = KeysGateway();
        using var client = gateway.CreateClient();

        using var basic = AuthKit.Chat(AuthKit.ValidBody);
        basic.Headers.Authorization = new AuthenticationHeaderValue("Basic", TeamKey);
        using var basicResponse = await client.SendAsync(basic);
        Assert.Equal(HttpStatusCode.Unauthorized, basicResponse.StatusCode);

        using var twice = AuthKit.Chat(AuthKit.ValidBody);
        twice.Headers.TryAddWithoutValidation("api-key", [TeamKey, "something-else-entirely"]);
        using var twiceResponse = await client.SendAsync(twice);
        Assert.Equal(HttpStatusCode.Unauthorized, twiceResponse.StatusCode);

        // A non-Bearer Authorization header does not hide a good key in api-key.
        using var both = AuthKit.Chat(AuthKit.ValidBody);
        both.Headers.Authorization = new AuthenticationHeaderValue("Basic", "dXNlcjpwYXNz");
        both.Headers.Add("x-api-key", TeamKey);
        using var bothResponse = await client.SendAsync(both);
        Assert.Equal(HttpStatusCode.OK, bothResponse.StatusCode);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task Paths_outside_v1_need_no_gateway_key()
    {
        await using var gateway = KeysGateway();
        using var client = gateway.CreateClient();
        using var live = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }

    [Fact]
    public async Task The_key_id_reaches_the_request_log_and_the_secret_does_not()
    {
        var logs = new LogCapture();
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl).WithKeys(new AuthKit.Key("team-a", TeamKey)))
        {
            TestServices = logs.AddTo,
        };
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ValidBody, bearer: TeamKey);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // The request is recorded (step 7) once the answer has gone out, so the line may come just after the client has it.
        await LlmGateway.IntegrationTests.Storage.StoreTestKit.EventuallyAsync(
            () => Task.FromResult((logs.Lines.Any(l => l.Contains("KeyId=", StringComparison.Ordinal)), logs.Lines.Count)), "the request's log line");
        var line = Assert.Single(logs.Lines, l => l.Contains("KeyId=", StringComparison.Ordinal));
        Assert.Contains("KeyId=team-a", line);
        Assert.DoesNotContain(logs.Lines, l => l.Contains(TeamKey, StringComparison.Ordinal));
    }
}
