using System.Net;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>A key's allowed models: the model asked for, the fallbacks tried, the task-type router's picks, local-only.</summary>
public sealed class ModelRestrictionTests : IAsyncLifetime
{
    private const string Narrow = "narrow-key-0123456789";
    private const string Wide = "wide-key-0123456789";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        // "upstream-a" always fails (so its fallbacks are tried); the others answer with their own name.
        _upstream = await FakeUpstream.StartAsync((http, received) =>
        {
            var model = received.Json.GetProperty("model").GetString()!;
            return model == "upstream-a"
                ? OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), 500)
                : OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from " + model, model: model));
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>Models a, b, c on one upstream; a falls back to b then c; auto picks b then c.</summary>
    private Dictionary<string, string?> Settings(params AuthKit.Key[] keys)
    {
        var s = GatewayFactory.OpenAiSettings(_upstream.BaseUrl, model: "model-a", upstreamModel: "upstream-a");
        s["Gateway:Models:model-b:Provider"] = "up";
        s["Gateway:Models:model-b:UpstreamModel"] = "upstream-b";
        s["Gateway:Models:model-c:Provider"] = "up";
        s["Gateway:Models:model-c:UpstreamModel"] = "upstream-c";
        s["Gateway:Models:model-a:Fallbacks:0"] = "model-b";
        s["Gateway:Models:model-a:Fallbacks:1"] = "model-c";
        s["Gateway:Routing:DefaultTaskType"] = "general";
        s["Gateway:Routing:TaskTypes:general:Models:0"] = "model-b";
        s["Gateway:Routing:TaskTypes:general:Models:1"] = "model-c";
        s["Gateway:Resilience:MaxRetries"] = "0";
        return s.WithKeys(keys);
    }

    private string[] UpstreamModels() => [.. _upstream.Requests.Select(r => r.Json.GetProperty("model").GetString()!)];

    [Fact]
    public async Task The_model_list_shows_a_key_only_the_models_it_may_use()
    {
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("narrow", Narrow, ["model-b*"]), new AuthKit.Key("wide", Wide)));
        using var client = gateway.CreateClient();

        async Task<string[]> ListAsync(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            using var response = await client.SendAsync(request);
            var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            return [.. body.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
        }
        async Task<HttpStatusCode> RetrieveAsync(string key, string model)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models/" + model);
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            using var response = await client.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(["auto", "model-b"], await ListAsync(Narrow));
        Assert.Equal(["auto", "model-a", "model-b", "model-c"], (await ListAsync(Wide)).Order());
        Assert.Equal(HttpStatusCode.OK, await RetrieveAsync(Narrow, "model-b"));
        Assert.Equal(HttpStatusCode.NotFound, await RetrieveAsync(Narrow, "model-c"));
        Assert.Equal(HttpStatusCode.OK, await RetrieveAsync(Wide, "model-c"));
    }

    [Fact]
    public async Task A_model_outside_the_keys_patterns_is_a_403_model_not_allowed()
    {
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("narrow", Narrow, ["model-c"])));
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ChatBody("model-b"), bearer: Narrow);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("permission_error", error.GetProperty("type").GetString());
        Assert.Equal("model_not_allowed", error.GetProperty("code").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
        Assert.Equal(0, _upstream.Calls);

        using var allowed = await client.SendChatAsync(AuthKit.ChatBody("model-c"), bearer: Narrow);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task Fallbacks_the_key_may_not_use_are_skipped()
    {
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("narrow", Narrow, ["model-a", "model-c"])));
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ChatBody("model-a"), bearer: Narrow);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("model-c", response.Header("x-gateway-model"));
        Assert.Equal(["upstream-a", "upstream-c"], UpstreamModels());
    }

    [Fact]
    public async Task The_same_fallback_chain_uses_every_model_for_a_key_that_may()
    {
        // The control for the test above: the chain really does go through model-b when allowed.
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("wide", Wide, ["*"])));
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ChatBody("model-a"), bearer: Wide);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("model-b", response.Header("x-gateway-model"));
        Assert.Equal(["upstream-a", "upstream-b"], UpstreamModels());
    }

    [Fact]
    public async Task Auto_routes_only_to_allowed_models_and_is_a_403_when_none_is()
    {
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("narrow", Narrow, ["model-c"]), new AuthKit.Key("only-a", Wide, ["model-a"])));
        using var client = gateway.CreateClient();

        using var routed = await client.SendChatAsync(AuthKit.ChatBody("auto"), bearer: Narrow);
        Assert.Equal(HttpStatusCode.OK, routed.StatusCode);
        Assert.Equal("model-c", routed.Header("x-gateway-model"));
        Assert.Equal(["upstream-c"], UpstreamModels());

        using var refused = await client.SendChatAsync(AuthKit.ChatBody("auto"), bearer: Wide);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("model_not_allowed", (await AuthKit.ErrorAsync(refused)).GetProperty("code").GetString());
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task Patterns_match_names_case_insensitively_with_wildcards()
    {
        await using var gateway = new GatewayFactory(Settings(new AuthKit.Key("narrow", Narrow, ["MODEL-?"])));
        using var client = gateway.CreateClient();
        using var response = await client.SendChatAsync(AuthKit.ChatBody("model-b"), bearer: Narrow);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_local_only_key_never_reaches_a_remote_provider()
    {
        var settings = Settings(new AuthKit.Key("local", Narrow, LocalOnly: true));
        settings["Gateway:Providers:mock:Type"] = "mock";
        settings["Gateway:Models:mock-echo:Provider"] = "mock";
        await using var gateway = new GatewayFactory(settings);
        using var client = gateway.CreateClient();

        using var remote = await client.SendChatAsync(AuthKit.ChatBody("model-b"), bearer: Narrow);
        // Local-only leaves no candidate: the router refuses it as a policy matter (403 model_not_allowed).
        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
        Assert.Equal(0, _upstream.Calls);

        using var local = await client.SendChatAsync(AuthKit.ChatBody("mock-echo"), bearer: Narrow);
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        Assert.Equal("mock", local.Header("x-gateway-provider"));
    }
}
