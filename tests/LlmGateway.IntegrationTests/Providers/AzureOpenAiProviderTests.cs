using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Providers;

/// <summary>
/// An `azure-openai` provider against a fake Azure OpenAI resource on loopback: the deployment URL
/// with api-version, the api-key header, and Azure's additions to OpenAI's format (prompt and
/// content filter results, a first stream chunk with empty choices and an empty id, string error
/// codes, content-filter 400s).
/// </summary>
public sealed class AzureOpenAiProviderTests : IAsyncLifetime
{
    private const string KeyEnv = "AZURE_OPENAI_TESTS_KEY";
    private const string Key = "0123456789abcdef0123456789abcdef";
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyEnv, Key);
        _upstream = await FakeUpstream.StartAsync();
        _gateway = new GatewayFactory(new()
        {
            ["Gateway:Providers:azure:Type"] = "azure-openai",
            ["Gateway:Providers:azure:BaseUrl"] = _upstream.BaseUrl + "/",
            ["Gateway:Providers:azure:ApiKeyEnv"] = KeyEnv,
            ["Gateway:Providers:azure:ApiVersion"] = "2024-10-21",
            ["Gateway:Models:azure-test:Provider"] = "azure",
            ["Gateway:Models:azure-test:UpstreamModel"] = "my-gpt4o-deployment",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Fact]
    public async Task Requests_go_to_the_deployment_url_with_the_api_version_and_the_api_key_header()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Completion("Hello from Azure"));

        var result = await _gateway.ChatClient("azure-test").CompleteChatAsync([new UserChatMessage("Hi")]);

        Assert.Equal("Hello from Azure", result.Value.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, result.Value.FinishReason);
        Assert.Equal(19, result.Value.Usage.InputTokenCount);
        Assert.Equal(4, result.Value.Usage.OutputTokenCount);
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/openai/deployments/my-gpt4o-deployment/chat/completions", sent.Path);
        Assert.Equal("?api-version=2024-10-21", sent.Query);
        Assert.Equal(Key, sent.Header("api-key"));
        Assert.Null(sent.Header("authorization"));
    }

    [Fact]
    public async Task A_stream_with_azures_filter_results_chunk_reaches_the_client_as_openai_chunks_with_one_id()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.PromptFilterChunk);
            await Wire.Event(http, Wire.Chunk("""{"role":"assistant","content":""}""", null));
            await Wire.Event(http, Wire.Chunk("""{"content":"Hello"}""", null));
            await Wire.Event(http, Wire.Chunk("""{"content":" there"}""", null));
            await Wire.Event(http, Wire.Chunk("{}", "stop"));
            await Wire.Event(http, """{"choices":[],"created":1731000000,"id":"chatcmpl-AzureStream1","model":"gpt-4o-2024-08-06","object":"chat.completion.chunk","system_fingerprint":"fp_04751d0b65","usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11}}""");
            await Wire.Event(http, "[DONE]");
        };

        var text = new StringBuilder();
        var ids = new HashSet<string>();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in _gateway.ChatClient("azure-test").CompleteChatStreamingAsync([new UserChatMessage("Hi")]))
        {
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.Equal("Hello there", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal(9, usage?.InputTokenCount);
        // Azure's opening chunk (empty choices, empty id, only prompt_filter_results) is not passed on:
        // every chunk the client sees carries the answer's id.
        Assert.Equal("chatcmpl-AzureStream1", Assert.Single(ids));
        Assert.True(Assert.Single(_upstream.Requests).Json.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Theory]
    // Azure's content filter refusing the prompt: the request's fault, passed on in OpenAI's shape.
    [InlineData(400, """{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}""", 400, "content_filter")]
    [InlineData(429, """{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}""", 429, "rate_limit_exceeded")]
    [InlineData(404, """{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}""", 502, "upstream_error")]
    [InlineData(401, """{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}""", 502, "upstream_error")]
    public async Task Azure_errors_become_openai_errors(int upstreamStatus, string body, int status, string code)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, body, upstreamStatus);

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", new StringContent("""{"model":"azure-test","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("message").GetString()!, error.GetProperty("message").GetString());
    }

    /// <summary>Azure OpenAI's Chat Completions wire format (data-plane inference reference).</summary>
    private static class Wire
    {
        public const string PromptFilterChunk =
            """{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}""";

        public static string Completion(string content) =>
            "{\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}},\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null," +
            "\"message\":{\"content\":" + JsonSerializer.Serialize(content) + ",\"refusal\":null,\"role\":\"assistant\"}}]," +
            "\"created\":1731000000,\"id\":\"chatcmpl-AzureAnswer1\",\"model\":\"gpt-4o-2024-08-06\",\"object\":\"chat.completion\"," +
            "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}]," +
            "\"system_fingerprint\":\"fp_04751d0b65\",\"usage\":{\"completion_tokens\":4,\"prompt_tokens\":19,\"total_tokens\":23}}";

        public static string Chunk(string delta, string? finish) =>
            "{\"choices\":[{\"content_filter_results\":{},\"delta\":" + delta + ",\"finish_reason\":" + (finish is null ? "null" : "\"" + finish + "\"") + ",\"index\":0,\"logprobs\":null}]," +
            "\"created\":1731000000,\"id\":\"chatcmpl-AzureStream1\",\"model\":\"gpt-4o-2024-08-06\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_04751d0b65\"}";

        public static async Task Json(HttpContext http, string json, int status = 200)
        {
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(json);
        }

        public static void StartSse(HttpContext http)
        {
            http.Response.StatusCode = 200;
            http.Response.ContentType = "text/event-stream; charset=utf-8";
        }

        public static async Task Event(HttpContext http, string data)
        {
            await http.Response.WriteAsync($"data: {data}\n\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
    }
}
