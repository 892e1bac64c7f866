using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace LlmGateway.IntegrationTests.ChatCompletions;

/// <summary>
/// Every size a client chooses (embedding dimensions and inputs, chat messages, tools and n, max_tokens)
/// is refused with a 400 naming the parameter before anything is allocated for it or any provider is
/// called; an operator can raise each limit, and a bad limit stops start-up.
/// </summary>
public sealed class RequestLimitsTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, _) =>
        {
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync(OpenAiWire.Completion("from upstream"));
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Gateway(Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Gateway:Models:embed:Provider"] = "up";
        settings["Gateway:Models:embed:Capabilities:0"] = "embeddings";
        settings["Gateway:Providers:mock:Type"] = "mock";
        settings["Gateway:Models:mock-embed:Provider"] = "mock";
        settings["Gateway:Models:mock-embed:Capabilities:0"] = "embeddings";
        settings["Gateway:Models:mock-echo:Provider"] = "mock";
        configure?.Invoke(settings);
        return new GatewayFactory(settings);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static void AssertRefused((HttpStatusCode Status, JsonElement Body) answer, string param)
    {
        Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
        var error = answer.Body.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains("Gateway:Limits:", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task The_reported_mock_embeddings_request_with_a_hundred_million_dimensions_is_a_400_that_allocates_nothing_for_them()
    {
        await using var gateway = Gateway();
        using var http = gateway.CreateClient();
        await PostAsync(http, "/v1/embeddings", """{"model":"mock-embed","input":"warm-up"}"""); // JIT and first-use allocations out of the way

        // One float per dimension alone would be 400 MB; the whole request must stay far below that.
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var answer = await PostAsync(http, "/v1/embeddings", """{"model":"mock-embed","input":"x","dimensions":100000000}""");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        AssertRefused(answer, "dimensions");
        Assert.True(allocated < 64L * 1024 * 1024, $"the refused request allocated {allocated / (1024 * 1024)} MB");
    }

    [Theory]
    [InlineData("/v1/embeddings", """{"model":"embed","input":"x","dimensions":4097}""", "dimensions")]
    [InlineData("/v1/embeddings", """{"model":"mock-embed","input":"x","dimensions":2147483647}""", "dimensions")]
    [InlineData("/v1/chat/completions", """{"model":"test-model","n":129,"messages":[{"role":"user","content":"x"}]}""", "n")]
    [InlineData("/v1/chat/completions", """{"model":"mock-echo","n":1000000,"messages":[{"role":"user","content":"x"}]}""", "n")]
    public async Task A_size_over_its_limit_is_refused_before_any_provider_is_called(string path, string json, string param)
    {
        await using var gateway = Gateway();
        using var http = gateway.CreateClient();

        AssertRefused(await PostAsync(http, path, json), param);
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task Counts_of_embedding_inputs_messages_and_tools_are_refused_over_their_limits()
    {
        await using var gateway = Gateway();
        using var http = gateway.CreateClient();
        var inputs = "[" + string.Join(",", Enumerable.Repeat("\"a\"", 2049)) + "]";
        var messages = "[" + string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", 10_001)) + "]";
        var tools = "[" + string.Join(",", Enumerable.Repeat("""{"type":"function","function":{"name":"f"}}""", 513)) + "]";

        AssertRefused(await PostAsync(http, "/v1/embeddings", $$"""{"model":"embed","input":{{inputs}}}"""), "input");
        AssertRefused(await PostAsync(http, "/v1/chat/completions", $$"""{"model":"test-model","messages":{{messages}}}"""), "messages");
        AssertRefused(await PostAsync(http, "/v1/chat/completions", $$"""{"model":"test-model","tools":{{tools}},"messages":[{"role":"user","content":"x"}]}"""), "tools");
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_operator_can_lower_and_raise_the_limits()
    {
        await using var gateway = Gateway(s =>
        {
            s["Gateway:Limits:MaxEmbeddingDimensions"] = "8192";
            s["Gateway:Limits:MaxMessages"] = "2";
            s["Gateway:Limits:MaxN"] = "1";
        });
        using var http = gateway.CreateClient();

        var embedded = await PostAsync(http, "/v1/embeddings", """{"model":"mock-embed","input":"x","dimensions":8192}""");
        Assert.Equal(HttpStatusCode.OK, embedded.Status);
        Assert.Equal(8192, embedded.Body.GetProperty("data")[0].GetProperty("embedding").GetArrayLength());

        AssertRefused(await PostAsync(http, "/v1/chat/completions", """{"model":"test-model","n":2,"messages":[{"role":"user","content":"x"}]}"""), "n");
        AssertRefused(await PostAsync(http, "/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":"z"}]}"""), "messages");
        var (status, _) = await PostAsync(http, "/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"x"},{"role":"user","content":"z"}]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task Max_tokens_beyond_the_mock_models_context_window_is_a_400_and_the_mock_never_answers_more_than_it_was_given()
    {
        await using var gateway = Gateway();
        using var http = gateway.CreateClient();

        var huge = await PostAsync(http, "/v1/chat/completions", """{"model":"mock-echo","max_tokens":2000000000,"messages":[{"role":"user","content":"x"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, huge.Status);
        Assert.Equal("context_length_exceeded", huge.Body.GetProperty("error").GetProperty("code").GetString());

        var fits = await PostAsync(http, "/v1/chat/completions", """{"model":"mock-echo","max_tokens":100000,"messages":[{"role":"user","content":"four words of prompt"}]}""");
        Assert.Equal(HttpStatusCode.OK, fits.Status);
        Assert.Equal("four words of prompt", fits.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_batch_item_over_a_limit_gets_its_own_400_and_the_rest_run()
    {
        await using var gateway = Gateway();
        using var http = gateway.CreateClient();

        var (status, body) = await PostAsync(http, "/v1/batch/chat/completions",
            """[{"model":"test-model","n":500,"messages":[{"role":"user","content":"x"}]},{"model":"test-model","messages":[{"role":"user","content":"y"}]}]""");

        Assert.Equal(HttpStatusCode.OK, status);
        var text = body.GetRawText();
        Assert.Contains("Gateway:Limits:MaxN", text);
        Assert.Contains("from upstream", text);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task A_limit_out_of_range_stops_start_up()
    {
        await using var gateway = Gateway(s =>
        {
            s["Gateway:Limits:MaxEmbeddingDimensions"] = "0";
            s["Gateway:Limits:MaxN"] = "5000";
        });

        var e = Assert.Throws<OptionsValidationException>(() => gateway.CreateClient());
        Assert.Contains("Gateway:Limits:MaxEmbeddingDimensions", e.Message);
        Assert.Contains("Gateway:Limits:MaxN", e.Message);
    }
}
