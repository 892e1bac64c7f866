using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using Microsoft.AspNetCore.Http;
using OpenAI.Embeddings;

namespace LlmGateway.IntegrationTests.Embeddings;

/// <summary>
/// POST /v1/embeddings through the gateway, driven by the official OpenAI .NET SDK's EmbeddingClient,
/// against fake upstreams speaking OpenAI's, Azure's, Gemini's (embedContent, batchEmbedContents) and
/// Ollama's (/api/embed) wire formats; and the pipeline around it (cache, fallback, budgets, usage).
/// </summary>
public sealed class EmbeddingsTests : IAsyncLifetime
{
    private const string OpenAiKeyEnv = "EMB_TESTS_OPENAI_KEY";
    private const string OpenAiKey = "sk-emb-test-openai-0123456789abcdef";
    private const string AzureKeyEnv = "EMB_TESTS_AZURE_KEY";
    private const string AzureKey = "azure-emb-test-key-0123456789abcdef";
    private const string GeminiKeyEnv = "EMB_TESTS_GEMINI_KEY";
    private const string GeminiKey = "AIzaSyEmbTestKey0123456789abcdefghij";
    private const string AdminEnv = "EMB_TESTS_ADMIN_KEY";

    private static readonly float[] Alpha = [0.125f, -0.5f, 0.75f];
    private static readonly float[] Beta = [-0.25f, 0.0625f, 1f];

    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private FakeUpstream _openai = null!;
    private FakeUpstream _azure = null!;
    private FakeUpstream _gemini = null!;
    private FakeUpstream _ollama = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(OpenAiKeyEnv, OpenAiKey);
        Environment.SetEnvironmentVariable(AzureKeyEnv, AzureKey);
        Environment.SetEnvironmentVariable(GeminiKeyEnv, GeminiKey);
        _openai = await FakeUpstream.StartAsync(OpenAiEmbeddings);
        _azure = await FakeUpstream.StartAsync(OpenAiEmbeddings);
        _gemini = await FakeUpstream.StartAsync(GeminiEmbeddings);
        _ollama = await FakeUpstream.StartAsync(OllamaEmbeddings);
    }

    public async Task DisposeAsync()
    {
        await _openai.DisposeAsync();
        await _azure.DisposeAsync();
        await _gemini.DisposeAsync();
        await _ollama.DisposeAsync();
    }

    private GatewayFactory Gateway(Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:Resilience:MaxRetries"] = "0",
            ["Gateway:Auth:AdminKeyEnv"] = AdminEnv,
            ["Gateway:Providers:oa:Type"] = "openai",
            ["Gateway:Providers:oa:BaseUrl"] = _openai.BaseUrl + "/v1",
            ["Gateway:Providers:oa:ApiKeyEnv"] = OpenAiKeyEnv,
            ["Gateway:Providers:az:Type"] = "azure-openai",
            ["Gateway:Providers:az:BaseUrl"] = _azure.BaseUrl,
            ["Gateway:Providers:az:ApiKeyEnv"] = AzureKeyEnv,
            ["Gateway:Providers:az:ApiVersion"] = "2024-10-21",
            ["Gateway:Providers:google:Type"] = "gemini",
            ["Gateway:Providers:google:BaseUrl"] = _gemini.BaseUrl,
            ["Gateway:Providers:google:ApiKeyEnv"] = GeminiKeyEnv,
            ["Gateway:Providers:local:Type"] = "ollama",
            ["Gateway:Providers:local:BaseUrl"] = _ollama.BaseUrl,
            ["Gateway:Providers:local:Local"] = "true",
            ["Gateway:Providers:chat:Type"] = "mock",
            ["Gateway:Models:te3:Provider"] = "oa",
            ["Gateway:Models:te3:UpstreamModel"] = "text-embedding-3-small",
            ["Gateway:Models:te3:CostPer1kInput"] = "0.02",
            ["Gateway:Models:te3:Capabilities:0"] = "embeddings",
            ["Gateway:Models:te3-azure:Provider"] = "az",
            ["Gateway:Models:te3-azure:UpstreamModel"] = "my-embedding-deployment",
            ["Gateway:Models:te3-azure:CostPer1kInput"] = "0.02",
            ["Gateway:Models:te3-azure:Capabilities:0"] = "embeddings",
            ["Gateway:Models:gem:Provider"] = "google",
            ["Gateway:Models:gem:UpstreamModel"] = "gemini-embedding-001",
            ["Gateway:Models:gem:CostPer1kInput"] = "0.15",
            ["Gateway:Models:gem:Capabilities:0"] = "embeddings",
            ["Gateway:Models:nomic:Provider"] = "local",
            ["Gateway:Models:nomic:UpstreamModel"] = "nomic-embed-text",
            ["Gateway:Models:nomic:Capabilities:0"] = "embeddings",
            ["Gateway:Models:chat-model:Provider"] = "chat",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        configure?.Invoke(settings);
        return new GatewayFactory(settings);
    }

    // :: The fake upstreams: each answers as its API documents, with Alpha for the first input and Beta for the rest.

    /// <summary>OpenAI's answer, in the encoding the request asked for (the SDK asks for base64).</summary>
    private static Task OpenAiEmbeddings(HttpContext http, ReceivedRequest request)
    {
        var body = request.Json;
        var base64 = body.TryGetProperty("encoding_format", out var f) && f.GetString() == "base64";
        var input = body.GetProperty("input");
        var count = input.ValueKind == JsonValueKind.Array && input[0].ValueKind != JsonValueKind.Number ? input.GetArrayLength() : 1;
        var data = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            var vector = i == 0 ? Alpha : Beta;
            var encoded = base64 ? "\"" + Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan())) + "\"" : JsonSerializer.Serialize(vector);
            if (i > 0) data.Append(',');
            data.Append($$"""{"object":"embedding","index":{{i}},"embedding":{{encoded}}}""");
        }
        var model = body.GetProperty("model").GetString();
        return OpenAiWire.WriteJsonAsync(http, $$$"""{"object":"list","data":[{{{data}}}],"model":"{{{model}}}","usage":{"prompt_tokens":{{{7 * count}}},"total_tokens":{{{7 * count}}}}}""");
    }

    private static Task GeminiEmbeddings(HttpContext http, ReceivedRequest request)
    {
        if (request.Path.EndsWith(":embedContent", StringComparison.Ordinal))
        {
            return OpenAiWire.WriteJsonAsync(http, $$$"""{"embedding":{"values":{{{JsonSerializer.Serialize(Alpha)}}}}}""");
        }
        var count = request.Json.GetProperty("requests").GetArrayLength();
        var items = string.Join(",", Enumerable.Range(0, count).Select(i => $$"""{"values":{{JsonSerializer.Serialize(i == 0 ? Alpha : Beta)}}}"""));
        return OpenAiWire.WriteJsonAsync(http, $$"""{"embeddings":[{{items}}]}""");
    }

    private static Task OllamaEmbeddings(HttpContext http, ReceivedRequest request)
    {
        var input = request.Json.GetProperty("input");
        var count = input.ValueKind == JsonValueKind.Array ? input.GetArrayLength() : 1;
        var vectors = string.Join(",", Enumerable.Range(0, count).Select(i => JsonSerializer.Serialize(i == 0 ? Alpha : Beta)));
        return OpenAiWire.WriteJsonAsync(http, $$"""{"model":"nomic-embed-text","embeddings":[{{vectors}}],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":12}""");
    }

    private static void AssertVectors(OpenAIEmbeddingCollection result)
    {
        Assert.Equal(2, result.Count);
        Assert.Equal(0, result[0].Index);
        Assert.Equal(Alpha, result[0].ToFloats().ToArray());
        Assert.Equal(1, result[1].Index);
        Assert.Equal(Beta, result[1].ToFloats().ToArray());
    }

    private static async Task<(HttpResponseMessage Response, JsonElement Body)> PostAsync(HttpClient client, string json)
    {
        var response = await client.PostAsync("/v1/embeddings", new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response, JsonDocument.Parse(text).RootElement);
    }

    [Fact]
    public async Task OpenAI_embeddings_pass_through_with_the_model_renamed_and_the_provider_key()
    {
        await using var gateway = Gateway();

        var result = await gateway.EmbeddingClient("te3").GenerateEmbeddingsAsync(["alpha", "beta"], new EmbeddingGenerationOptions { Dimensions = 3 });

        AssertVectors(result.Value);
        Assert.Equal(14, result.Value.Usage.InputTokenCount);
        var sent = Assert.Single(_openai.Requests);
        Assert.Equal("/v1/embeddings", sent.Path);
        Assert.Equal("Bearer " + OpenAiKey, sent.Header("authorization"));
        Assert.NotEqual("Bearer test-client-key", sent.Header("authorization"));
        var body = sent.Json;
        Assert.Equal("text-embedding-3-small", body.GetProperty("model").GetString());
        Assert.Equal("""["alpha","beta"]""", body.GetProperty("input").GetRawText());
        Assert.Equal(3, body.GetProperty("dimensions").GetInt32());
    }

    [Fact]
    public async Task Embeddings_are_priced_recorded_in_the_ledger_and_counted_as_input_tokens()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var (response, body) = await PostAsync(client, """{"model":"te3","input":["a","b"],"encoding_format":"float","user":"u-1"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(JsonSerializer.Serialize(Alpha), body.GetProperty("data")[0].GetProperty("embedding").GetRawText());
        // 14 input tokens at $0.02 per 1k.
        Assert.Equal("0.00028", response.Headers.GetValues("x-gateway-cost-usd").Single());
        Assert.Equal("embeddings", response.Headers.GetValues("x-gateway-task-type").Single());
        Assert.Equal("u-1", _openai.Requests.Single().Json.GetProperty("user").GetString());

        JsonElement report = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            report = await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=task_type", _adminKey);
            return report.GetProperty("total").GetProperty("requests").GetInt32() == 1;
        }, "the embeddings request in the ledger");
        var group = Assert.Single(report.GetProperty("data").EnumerateArray());
        Assert.Equal("embeddings", group.GetProperty("group").GetString());
        Assert.Equal(14, group.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, group.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(0.00028m, group.GetProperty("cost_usd").GetDecimal());

        var metrics = LlmGateway.IntegrationTests.Telemetry.MetricsText.Parse(await client.GetStringAsync("/metrics"));
        Assert.Equal(14, metrics.Value("llm_gateway_tokens_total", ("direction", "input"), ("model", "te3"), ("provider", "oa")));
        Assert.Equal(1, metrics.Value("llm_gateway_requests_total", ("model", "te3"), ("provider", "oa"), ("status", "200"), ("task_type", "embeddings")));
    }

    [Fact]
    public async Task Azure_embeddings_go_to_the_deployment_url_with_the_api_key_header()
    {
        await using var gateway = Gateway();

        var result = await gateway.EmbeddingClient("te3-azure").GenerateEmbeddingsAsync(["alpha", "beta"]);

        AssertVectors(result.Value);
        var sent = Assert.Single(_azure.Requests);
        Assert.Equal("/openai/deployments/my-embedding-deployment/embeddings", sent.Path);
        Assert.Equal("?api-version=2024-10-21", sent.Query);
        Assert.Equal(AzureKey, sent.Header("api-key"));
        Assert.Null(sent.Header("authorization"));
    }

    [Fact]
    public async Task Gemini_takes_one_input_through_embedContent_and_several_through_batchEmbedContents()
    {
        await using var gateway = Gateway();
        var client = gateway.EmbeddingClient("gem");

        var one = await client.GenerateEmbeddingAsync("alpha", new EmbeddingGenerationOptions { Dimensions = 3 });
        var many = await client.GenerateEmbeddingsAsync(["alpha", "beta"]);

        Assert.Equal(Alpha, one.Value.ToFloats().ToArray());
        AssertVectors(many.Value);
        var sent = _gemini.Requests.ToArray();
        Assert.Equal("/v1beta/models/gemini-embedding-001:embedContent", sent[0].Path);
        Assert.Equal(GeminiKey, sent[0].Header("x-goog-api-key"));
        Assert.Equal("", sent[0].Query);
        Assert.Equal("""{"content":{"parts":[{"text":"alpha"}]},"outputDimensionality":3}""", Encoding.UTF8.GetString(sent[0].Body));
        Assert.Equal("/v1beta/models/gemini-embedding-001:batchEmbedContents", sent[1].Path);
        Assert.Equal(
            """{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"alpha"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"beta"}]}}]}""",
            Encoding.UTF8.GetString(sent[1].Body));
        // Gemini reports no tokens for embeddings: the estimate (a token per 4 characters, rounded up per
        // input: 2 for "alpha", 1 for "beta") is what is recorded.
        Assert.Equal(3, many.Value.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Gemini_and_Ollama_refuse_token_id_inputs_without_calling_upstream()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var (gemini, geminiBody) = await PostAsync(client, """{"model":"gem","input":[[1,2,3],[4,5]]}""");
        var (ollama, ollamaBody) = await PostAsync(client, """{"model":"nomic","input":[1,2,3]}""");

        Assert.Equal(HttpStatusCode.BadRequest, gemini.StatusCode);
        Assert.Equal("input", geminiBody.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("text only", geminiBody.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, ollama.StatusCode);
        Assert.Equal("input", ollamaBody.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(0, _gemini.Calls);
        Assert.Equal(0, _ollama.Calls);
    }

    [Fact]
    public async Task Ollama_embeddings_use_api_embed_and_its_prompt_eval_count()
    {
        await using var gateway = Gateway();

        var result = await gateway.EmbeddingClient("nomic").GenerateEmbeddingsAsync(["alpha", "beta"], new EmbeddingGenerationOptions { Dimensions = 3 });

        AssertVectors(result.Value);
        Assert.Equal(12, result.Value.Usage.InputTokenCount);
        var sent = Assert.Single(_ollama.Requests);
        Assert.Equal("/api/embed", sent.Path);
        Assert.Equal("""{"model":"nomic-embed-text","input":["alpha","beta"],"dimensions":3}""", Encoding.UTF8.GetString(sent.Body));
    }

    [Fact]
    public async Task An_identical_embeddings_request_is_answered_from_the_cache()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        const string Request = """{"model":"te3","input":"the same text","encoding_format":"float"}""";

        var (first, firstBody) = await PostAsync(client, Request);
        var (second, secondBody) = await PostAsync(client, Request);
        var (other, _) = await PostAsync(client, """{"model":"te3","input":"other text","encoding_format":"float"}""");

        Assert.Equal("miss", first.Headers.GetValues("x-gateway-cache").Single());
        Assert.Equal("hit", second.Headers.GetValues("x-gateway-cache").Single());
        Assert.Equal("miss", other.Headers.GetValues("x-gateway-cache").Single());
        Assert.Equal(firstBody.GetRawText(), secondBody.GetRawText());
        Assert.Equal(2, _openai.Calls);
    }

    [Fact]
    public async Task A_failing_embeddings_provider_falls_back_to_the_same_model_at_another()
    {
        await using var gateway = Gateway(s => s["Gateway:Models:te3:Fallbacks:0"] = "te3-azure");
        _openai.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), 503);

        var result = await gateway.EmbeddingClient("te3").GenerateEmbeddingsAsync(["alpha", "beta"]);

        AssertVectors(result.Value);
        Assert.Equal(1, _openai.Calls);
        Assert.Equal(1, _azure.Calls);
        Assert.Equal("te3-azure", result.GetRawResponse().Headers.GetFirstOrDefault("x-gateway-model"));
        Assert.Equal("2", result.GetRawResponse().Headers.GetFirstOrDefault("x-gateway-attempts"));
    }

    [Fact]
    public async Task An_upstream_bad_request_reaches_the_client_in_OpenAIs_shape()
    {
        await using var gateway = Gateway();
        _openai.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("This model's maximum dimensions is 1536.", code: "invalid_value", param: "dimensions"), 400);
        var client = gateway.CreateClient();

        var (response, body) = await PostAsync(client, """{"model":"te3","input":"x","dimensions":3000}"""); // within Gateway:Limits, over the model's own

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("dimensions", body.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("maximum dimensions", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_spent_provider_budget_stops_embeddings_as_it_stops_chat()
    {
        // 14 tokens at $0.02/1k = $0.00028 a request: the second goes over $0.0005.
        await using var gateway = Gateway(s => s["Gateway:Budgets:Providers:oa:DailyUsd"] = "0.0005");
        var client = gateway.CreateClient();

        var (first, _) = await PostAsync(client, """{"model":"te3","input":["a","b"]}""");
        var (second, _) = await PostAsync(client, """{"model":"te3","input":["c","d"]}""");
        var (third, thirdBody) = await PostAsync(client, """{"model":"te3","input":["e","f"]}""");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("budget_exceeded", thirdBody.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(2, _openai.Calls);
    }

    [Fact]
    public async Task Auto_embeddings_pick_among_embeddings_models_only()
    {
        // Only the local Ollama model is allowed: auto must find it, and never a chat model.
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/embeddings") { Content = new StringContent("""{"model":"auto","input":"alpha"}""", Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Local-Only", "true");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("nomic", response.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(1, _ollama.Calls);
    }

    [Fact]
    public async Task The_explain_endpoint_shows_an_embeddings_route_without_calling_anyone()
    {
        await using var gateway = Gateway(s => s["Gateway:Routing:Strategy"] = "cost");
        var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/route/explain?operation=embeddings") { Content = new StringContent("""{"model":"auto","input":"alpha"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _adminKey);

        using var response = await client.SendAsync(request);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("embeddings", body.GetProperty("task_type").GetString());
        Assert.Equal("cost", body.GetProperty("strategy").GetString());
        // Cheapest first; the chat model is no candidate at all.
        Assert.Equal(["nomic", "te3", "te3-azure", "gem"], body.GetProperty("order").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(0, _openai.Calls + _azure.Calls + _gemini.Calls + _ollama.Calls);
    }

    [Fact]
    public async Task Chat_and_embeddings_models_are_not_interchangeable()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var (embeddingsOnChatModel, body1) = await PostAsync(client, """{"model":"chat-model","input":"x"}""");
        var chatOnEmbeddingsModel = await client.PostAsync("/v1/chat/completions", new StringContent("""{"model":"te3","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        var body2 = JsonDocument.Parse(await chatOnEmbeddingsModel.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.BadRequest, embeddingsOnChatModel.StatusCode);
        Assert.Equal("model", body1.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("not an embeddings model", body1.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, chatOnEmbeddingsModel.StatusCode);
        Assert.Equal("model", body2.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("/v1/embeddings", body2.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(0, _openai.Calls);
    }

    [Theory]
    [InlineData("""{"input":"x"}""", "model")]
    [InlineData("""{"model":"te3"}""", "input")]
    [InlineData("""{"model":"te3","input":""}""", "input")]
    [InlineData("""{"model":"te3","input":[]}""", "input")]
    [InlineData("""{"model":"te3","input":["a",1]}""", "input[1]")]
    [InlineData("""{"model":"te3","input":[[1,2],[-3]]}""", "input[1]")]
    [InlineData("""{"model":"te3","input":{"text":"a"}}""", "input")]
    [InlineData("""{"model":"te3","input":"a","encoding_format":"int8"}""", "encoding_format")]
    [InlineData("""{"model":"te3","input":"a","dimensions":0}""", "dimensions")]
    [InlineData("""{"model":"no-such-model","input":"a"}""", "model")]
    public async Task Bad_embeddings_requests_are_OpenAI_shaped_400s_or_404s(string json, string param)
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var (response, body) = await PostAsync(client, json);

        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{response.StatusCode}");
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(0, _openai.Calls);
    }

    [Fact]
    public async Task The_shipped_settings_embed_with_the_mock_model_and_no_keys()
    {
        await using var gateway = new GatewayFactory(new() { ["Serilog:MinimumLevel:Default"] = "Warning" }, useShippedSettings: true);

        var result = await gateway.EmbeddingClient("mock-embed").GenerateEmbeddingsAsync(["same", "same", "different"]);

        var vectors = result.Value.Select(e => e.ToFloats().ToArray()).ToArray();
        Assert.Equal(16, vectors[0].Length);
        Assert.Equal(vectors[0], vectors[1]);
        Assert.NotEqual(vectors[0], vectors[2]);
        Assert.Equal(1.0, Math.Sqrt(vectors[2].Sum(v => (double)v * v)), 4);
    }
}
