using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using Microsoft.AspNetCore.Http;
using static LlmGateway.IntegrationTests.Messages.MessagesProviderTests;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// /v1/messages to an <c>anthropic</c>-type provider goes natively: the upstream (a Kestrel fake of
/// Anthropic on loopback) gets the client's body byte for byte with only the model replaced, the client's
/// anthropic-version and anthropic-beta, the provider's key; the client gets Anthropic's own body or
/// events; usage still reaches the ledger and the budgets; a fallback to another provider type is translated.
/// </summary>
public sealed class MessagesNativeTests : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_MESSAGES_NATIVE";
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private FakeUpstream _anthropic = null!;
    private FakeUpstream _openai = null!;

    public async Task InitializeAsync()
    {
        _anthropic = await FakeUpstream.StartAsync();
        _openai = await FakeUpstream.StartAsync(ProviderFakes.Handler("openai", FakeAnswer.Text));
    }

    public async Task DisposeAsync()
    {
        await _anthropic.DisposeAsync();
        await _openai.DisposeAsync();
    }

    private GatewayFactory Gateway(bool fallback = false, ManualTimeProvider? grace = null)
    {
        var settings = ProviderFakes.Settings("anthropic", _anthropic.BaseUrl);
        settings["Gateway:Auth:AdminKeyEnv"] = AdminEnv;
        settings["Gateway:Models:target-model:CostPer1kCachedInput"] = "0.0001";
        settings["Gateway:Budgets:Global:DailyUsd"] = "100";
        if (fallback)
        {
            settings["Gateway:Providers:backup:Type"] = "openai";
            settings["Gateway:Providers:backup:BaseUrl"] = _openai.BaseUrl + "/v1";
            settings["Gateway:Providers:backup:ApiKeyEnv"] = ProviderFakes.KeyEnv;
            settings["Gateway:Models:backup-model:Provider"] = "backup";
            settings["Gateway:Models:backup-model:UpstreamModel"] = "gpt-backup";
            settings["Gateway:Models:backup-model:Capabilities:0"] = "tools";
            settings["Gateway:Models:target-model:Fallbacks:0"] = "backup-model";
        }
        return new GatewayFactory(settings) { TestServices = grace is null ? null : s => s.Hold(grace) };
    }

    /// <summary>Fields the chat translation has no place for (top_k, thinking, service_tier, a field from the future) and prompt-cache breakpoints.</summary>
    private const string NativeRequest = """
        {"model":"target-model", "max_tokens":2048,"temperature":0,"top_k":5,"thinking":{"type":"enabled","budget_tokens":1024},"service_tier":"auto",
         "system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral","ttl":"1h"}}],
         "messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral"}}]}],
         "future_field":{"x":[1,2.50]}STREAM}
        """;

    private const string Beta = "interleaved-thinking-2025-05-14,context-1m-2025-08-07";

    private const string NativeAnswer = """{"id":"msg_native1","type":"message","role":"assistant","model":"upstream-x","content":[{"type":"thinking","thinking":"Let me think.","signature":"sig=="},{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":300,"output_tokens":50,"service_tier":"standard"}}""";

    /// <summary>Anthropic's events for the same answer, with a thinking block and an event type the gateway doesn't know.</summary>
    private static readonly string[] s_nativeEvents =
    [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_native2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"upstream-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":300,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think.\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig==\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: future_event\ndata: {\"type\":\"future_event\",\"note\":\"clients skip what they don't know\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo!\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":50}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ];

    /// <summary>Prompt 100 + 20 written + 300 read from the cache, 50 out: (120 × 0.001 + 300 × 0.0001 + 50 × 0.002) / 1000.</summary>
    private const decimal AnswerCost = 0.00025m;

    private void AnswerNatively()
    {
        _anthropic.Handler = async (http, r) =>
        {
            if (!ProviderFakes.IsStream("anthropic", r))
            {
                await ProviderFakes.Json(http, NativeAnswer);
                return;
            }
            http.Response.ContentType = "text/event-stream; charset=utf-8";
            foreach (var e in s_nativeEvents)
            {
                await http.Response.WriteAsync(e, http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            }
        };
    }

    private static HttpRequestMessage NativePost(bool stream)
    {
        var request = Post(NativeRequest.Replace("STREAM", stream ? ",\"stream\":true" : "", StringComparison.Ordinal));
        request.Headers.Add("anthropic-beta", Beta);
        request.Headers.Remove("x-api-key");
        request.Headers.Add("x-api-key", "client-key-never-sent-upstream");
        return request;
    }

    /// <summary>The upstream got the client's body with only the model replaced, the client's version and betas, and the provider's key.</summary>
    private static void AssertSentNatively(ReceivedRequest sent, bool stream)
    {
        var expected = NativeRequest.Replace("STREAM", stream ? ",\"stream\":true" : "", StringComparison.Ordinal)
            .Replace("\"model\":\"target-model\"", "\"model\":\"upstream-x\"", StringComparison.Ordinal);
        Assert.Equal(expected, Encoding.UTF8.GetString(sent.Body));
        Assert.Equal("/v1/messages", sent.Path);
        Assert.Equal("2023-06-01", sent.Header("anthropic-version"));
        Assert.Equal(Beta, sent.Header("anthropic-beta"));
        Assert.Equal("sk-upstream-test-key", sent.Header("x-api-key"));
        Assert.Null(sent.Header("authorization"));
    }

    private async Task<JsonElement> ModelUsageAsync(HttpClient client, string model, int requests)
    {
        JsonElement row = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            var report = await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=model", _adminKey);
            var found = report.GetProperty("data").EnumerateArray().Where(g => g.GetProperty("group").GetString() == model).ToList();
            if (found.Count == 1) row = found[0];
            return found.Count == 1 && row.GetProperty("requests").GetInt32() == requests;
        }, $"{requests} requests of {model} in the ledger");
        return row;
    }

    private async Task<decimal> GlobalSpentAsync(HttpClient client)
    {
        var list = await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey);
        return list.GetProperty("data").EnumerateArray()
            .Single(b => b.GetProperty("scope").GetString() == "global" && b.GetProperty("window").GetString() == "daily")
            .GetProperty("spent_usd").GetDecimal();
    }

    [Fact]
    public async Task A_message_goes_up_as_the_client_wrote_it_and_anthropics_answer_comes_back_unchanged()
    {
        AnswerNatively();
        await using var gateway = Gateway();
        using var client = gateway.CreateClient();

        for (var i = 1; i <= 2; i++)
        {
            using var request = NativePost(stream: false);
            using var response = await client.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            AssertGatewayHeaders(response, attempts: "1");
            Assert.Equal(NativeAnswer, await response.Content.ReadAsStringAsync());
            // Temperature 0 would be cached on chat: a native answer neither reads nor fills the cache, so the second call goes up too.
            Assert.Equal("bypass", response.Headers.GetValues("x-gateway-cache").Single());
            Assert.Equal(AnswerCost, decimal.Parse(response.Headers.GetValues("x-gateway-cost-usd").Single(), CultureInfo.InvariantCulture));
            Assert.Equal(i, _anthropic.Calls);
        }
        foreach (var sent in _anthropic.Requests) AssertSentNatively(sent, stream: false);

        // Anthropic's usage, cache reads and writes included, reached the ledger and the budget.
        var row = await ModelUsageAsync(client, "target-model", requests: 2);
        Assert.Equal(2 * 420, row.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(2 * 50, row.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2 * AnswerCost, row.GetProperty("cost_usd").GetDecimal());
        await StoreTestKit.EventuallyAsync(async () => await GlobalSpentAsync(client) == 2 * AnswerCost, "the global budget charged both answers");
    }

    [Fact]
    public async Task A_stream_goes_up_as_the_client_wrote_it_and_anthropics_events_come_back_unchanged()
    {
        AnswerNatively();
        await using var gateway = Gateway();
        using var client = gateway.CreateClient();

        using var request = NativePost(stream: true);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertGatewayHeaders(response, attempts: "1");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(string.Concat(s_nativeEvents), await response.Content.ReadAsStringAsync());
        AssertSentNatively(Assert.Single(_anthropic.Requests), stream: true);

        var row = await ModelUsageAsync(client, "target-model", requests: 1);
        Assert.Equal(420, row.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(50, row.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(AnswerCost, row.GetProperty("cost_usd").GetDecimal());
        await StoreTestKit.EventuallyAsync(async () => await GlobalSpentAsync(client) == AnswerCost, "the global budget charged the stream");
    }

    [Fact]
    public async Task A_stream_anthropic_cuts_before_message_stop_ends_with_an_error_event_not_a_clean_end()
    {
        _anthropic.Handler = async (http, _) =>
        {
            http.Response.ContentType = "text/event-stream";
            foreach (var e in s_nativeEvents.Take(8))
            {
                await http.Response.WriteAsync(e, http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            }
        };
        var grace = new ManualTimeProvider();
        await using var gateway = Gateway(grace: grace);
        using var client = gateway.CreateClient();

        using var request = NativePost(stream: true);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sse = await AnthropicSse.ReadBrokenAsync(response, grace);
        Assert.Equal("error", sse.Names.Last());
        Assert.DoesNotContain("message_stop", sse.Names);
        Assert.Equal("Hel", sse.Text);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_fallback_to_an_openai_type_provider_gets_the_translated_request(bool stream)
    {
        _anthropic.Handler = (http, _) => ProviderFakes.Json(http, """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""", 529);
        await using var gateway = Gateway(fallback: true);
        using var client = gateway.CreateClient();

        // cache_control is translatable (dropped: it never changes the answer), so the fallback may serve this.
        var body = """{"model":"target-model","max_tokens":100,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Say hello in French."}]STREAM}"""
            .Replace("STREAM", stream ? ",\"stream\":true" : "", StringComparison.Ordinal);
        using var request = Post(body);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("x-gateway-attempts").Single());
        Assert.Equal("backup-model", response.Headers.GetValues("x-gateway-model").Single());
        if (stream)
        {
            var sse = await AnthropicSse.ReadAllAsync(response);
            Assert.Null(sse.Error);
            Assert.Equal("Bonjour!", sse.Text);
            Assert.Equal("message_stop", sse.Names.Last());
        }
        else
        {
            var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.StartsWith("msg_", message.GetProperty("id").GetString());
            Assert.Equal("""[{"type":"text","text":"Bonjour!"}]""", message.GetProperty("content").GetRawText());
        }

        // Anthropic got the client's own body; the openai-type fallback the chat translation.
        Assert.Contains("\"cache_control\"", Encoding.UTF8.GetString(Assert.Single(_anthropic.Requests).Body));
        var sent = Assert.Single(_openai.Requests);
        Assert.Equal("gpt-backup", sent.Json.GetProperty("model").GetString());
        Assert.Equal("system", sent.Json.GetProperty("messages")[0].GetProperty("role").GetString());
        Assert.Equal("Be brief.", sent.Json.GetProperty("messages")[0].GetProperty("content").GetString());
        Assert.Equal(100, sent.Json.GetProperty("max_completion_tokens").GetInt32());
        Assert.DoesNotContain("cache_control", Encoding.UTF8.GetString(sent.Body));
    }

    [Fact]
    public async Task A_request_only_anthropic_can_honour_never_falls_back_to_a_translation_that_would_drop_its_fields()
    {
        _anthropic.Handler = (http, _) => ProviderFakes.Json(http, """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""", 529);
        await using var gateway = Gateway(fallback: true);
        using var client = gateway.CreateClient();

        using var request = Post("""{"model":"target-model","max_tokens":100,"top_k":5,"messages":[{"role":"user","content":"hi"}]}""");
        using var response = await client.SendAsync(request);

        // Anthropic was overloaded; the openai-type fallback has no top_k, so routing left it out.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("overloaded_error", error.GetProperty("type").GetString());
        Assert.Equal(1, _anthropic.Calls);
        Assert.Equal(0, _openai.Calls);
    }

    [Fact]
    public async Task A_request_only_anthropic_can_honour_on_an_openai_only_route_is_the_translations_400()
    {
        await using var gateway = Gateway(fallback: true);
        using var client = gateway.CreateClient();

        using var request = Post("""{"model":"backup-model","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}""");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("thinking", error.GetProperty("message").GetString());
        Assert.Equal(0, _openai.Calls);
        Assert.Equal(0, _anthropic.Calls);
    }

    [Fact]
    public async Task Auto_routed_to_an_anthropic_model_goes_natively()
    {
        AnswerNatively();
        var settings = ProviderFakes.Settings("anthropic", _anthropic.BaseUrl);
        settings["Gateway:Routing:DefaultTaskType"] = "general";
        settings["Gateway:Routing:TaskTypes:general:Models:0"] = "target-model";
        await using var gateway = new GatewayFactory(settings);
        using var client = gateway.CreateClient();

        using var request = Post("""{"model":"auto","max_tokens":100,"top_k":5,"messages":[{"role":"user","content":"hi"}]}""");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("target-model", response.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(NativeAnswer, await response.Content.ReadAsStringAsync());
        Assert.Equal("""{"model":"upstream-x","max_tokens":100,"top_k":5,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8.GetString(Assert.Single(_anthropic.Requests).Body));
    }

    [Fact]
    public async Task Anthropics_own_400_reaches_the_client_in_anthropics_shape()
    {
        _anthropic.Handler = (http, _) => ProviderFakes.Json(http, """{"type":"error","error":{"type":"invalid_request_error","message":"thinking.budget_tokens: must be less than max_tokens"}}""", 400);
        await using var gateway = Gateway(fallback: true);
        using var client = gateway.CreateClient();

        using var request = NativePost(stream: false);
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("budget_tokens", error.GetProperty("message").GetString());
        Assert.Equal(0, _openai.Calls);
    }

    [Fact]
    public async Task With_a_conversation_id_the_request_is_translated_even_for_anthropic()
    {
        AnswerNatively();
        await using var gateway = Gateway();
        using var client = gateway.CreateClient();

        using var request = Post("""{"model":"target-model","max_tokens":100,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}]}""");
        request.Headers.Add("X-Conversation-Id", "conv-native-1");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("""[{"type":"text","text":"Hello!"}]""", message.GetProperty("content").GetRawText());
        Assert.DoesNotContain("cache_control", Encoding.UTF8.GetString(Assert.Single(_anthropic.Requests).Body));

        // What only Anthropic could honour can't go through the translation the history needs: the 400, no call.
        using var native = Post("""{"model":"target-model","max_tokens":100,"top_k":5,"messages":[{"role":"user","content":"hi"}]}""");
        native.Headers.Add("X-Conversation-Id", "conv-native-1");
        using var refused = await client.SendAsync(native);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("top_k", await refused.Content.ReadAsStringAsync());
        Assert.Equal(1, _anthropic.Calls);
    }
}
