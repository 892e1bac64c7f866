using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests;

public class ModelsAndHealthTests
{
    [Fact]
    public async Task Models_are_listed_in_openai_shape_and_readable_by_the_sdk()
    {
        await using var gateway = new GatewayFactory([], useShippedSettings: true);
        using var http = gateway.CreateClient();
        var sdk = new OpenAI.Models.OpenAIModelClient(new System.ClientModel.ApiKeyCredential("x"),
            new OpenAI.OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "/v1"), Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(http) });

        var models = (await sdk.GetModelsAsync()).Value;
        Assert.Contains(models, m => m.Id == "mock-echo" && m.OwnedBy == "mock");
        Assert.Contains(models, m => m.Id == "auto");

        var one = (await sdk.GetModelAsync("mock-echo")).Value;
        Assert.Equal("mock-echo", one.Id);

        using var missing = await http.GetAsync("/v1/models/not-a-model");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var error = (await missing.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Live_answers_and_ready_needs_a_usable_provider()
    {
        await using var ready = new GatewayFactory([], useShippedSettings: true);
        using (var http = ready.CreateClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/live")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
        }

        // Only a provider whose key variable is unset: alive, but not ready.
        var settings = GatewayFactory.OpenAiSettings("http://127.0.0.1:9", keyEnv: "HEALTH_TEST_KEY_THAT_IS_NEVER_SET");
        await using var notReady = new GatewayFactory(settings);
        using var client = notReady.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
        using var response = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("HEALTH_TEST_KEY_THAT_IS_NEVER_SET", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_provider_that_needs_no_key_counts_for_ready_only_once_it_has_answered()
    {
        // A keyless local server (an Ollama, a vLLM) and nothing else: its address alone proves nothing.
        await using var upstream = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("local answer")));
        var settings = GatewayFactory.OpenAiSettings(upstream.BaseUrl, provider: "local", model: "local-model");
        await using var gateway = new GatewayFactory(settings);
        using var client = gateway.CreateClient();

        using (var before = await client.GetAsync("/health/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, before.StatusCode);
            Assert.Contains("has not answered yet", await before.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(0, upstream.Calls);

        using (var chat = await client.PostAsync("/v1/chat/completions", new StringContent("""{"model":"local-model","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }
        using var after = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_never_reached_ollama_does_not_make_the_gateway_ready()
    {
        await using var gateway = new GatewayFactory(new()
        {
            ["Gateway:Providers:ollama:Type"] = "ollama",
            ["Gateway:Providers:ollama:BaseUrl"] = $"http://127.0.0.1:{LlmGateway.IntegrationTests.Telemetry.RepoFiles.FreePort()}",
            ["Gateway:Models:llama:Provider"] = "ollama",
            ["Gateway:Models:llama:UpstreamModel"] = "llama3.2",
        });
        using var client = gateway.CreateClient();
        using var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("ollama", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_mock_model_streams_chunk_by_chunk_with_zero_setup()
    {
        await using var gateway = new GatewayFactory([], useShippedSettings: true);
        var pieces = new List<string>();
        await foreach (var update in gateway.ChatClient("mock-echo").CompleteChatStreamingAsync([new OpenAI.Chat.UserChatMessage("one two three four five six seven eight nine ten")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                if (part.Text.Length > 0) pieces.Add(part.Text);
            }
        }
        Assert.True(pieces.Count > 1);
        Assert.Equal("one two three four five six seven eight nine ten", string.Concat(pieces));
    }

    [Fact]
    public async Task Swagger_ui_and_document_are_served()
    {
        await using var gateway = new GatewayFactory([], useShippedSettings: true);
        using var http = gateway.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/swagger/index.html")).StatusCode);
        var doc = await http.GetStringAsync("/swagger/v1/swagger.json");
        Assert.Contains("/v1/chat/completions", doc);
    }

    [Fact]
    public async Task The_public_OpenAPI_document_does_not_list_the_admin_routes()
    {
        Environment.SetEnvironmentVariable("SWAGGER_TESTS_ADMIN_KEY", "swagger-tests-admin-key-0123456789");
        await using var gateway = new GatewayFactory(new() { ["Gateway:Auth:AdminKeyEnv"] = "SWAGGER_TESTS_ADMIN_KEY" }, useShippedSettings: true);
        using var http = gateway.CreateClient();

        var doc = await http.GetStringAsync("/swagger/v1/swagger.json");

        Assert.Contains("/v1/embeddings", doc);
        Assert.DoesNotContain("/admin", doc);
        // The routes are still there, behind the admin key.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/budgets");
        request.Headers.Authorization = new("Bearer", "swagger-tests-admin-key-0123456789");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(request)).StatusCode);
    }
}
