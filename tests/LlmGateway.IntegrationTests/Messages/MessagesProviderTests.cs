using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// POST /v1/messages to every provider type the gateway speaks upstream, each a real Kestrel fake of
/// that provider's wire format on loopback, streamed and not: the Anthropic request goes in, the
/// provider's own format goes upstream, and an Anthropic Message (or Anthropic's event stream) comes back.
/// </summary>
public sealed class MessagesProviderTests
{
    public static TheoryData<string, bool> TypesAndStreaming()
    {
        var data = new TheoryData<string, bool>();
        foreach (var type in ProviderFakes.Types)
        {
            data.Add(type, false);
            data.Add(type, true);
        }
        return data;
    }

    internal static HttpRequestMessage Post(string body, string path = "/v1/messages")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("anthropic-version", "2023-06-01");
        request.Headers.Add("x-api-key", "any-key-auth-is-off");
        return request;
    }

    private const string TextRequest = """
        {"model":"target-model","max_tokens":100,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
         "messages":[{"role":"user","content":"Say hello in French."}],"metadata":{"user_id":"u-1"}STREAM}
        """;

    private const string ToolRequest = """
        {"model":"target-model","max_tokens":100,
         "tools":[{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],
         "tool_choice":{"type":"auto"},
         "messages":[{"role":"user","content":"Weather in Lyon, then Paris?"},
           {"role":"assistant","content":[{"type":"text","text":"Lyon first."},{"type":"tool_use","id":"toolu_lyon","name":"get_weather","input":{"city":"Lyon"}}]},
           {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_lyon","content":"12 degrees"},{"type":"text","text":"Now Paris."}]}]STREAM}
        """;

    private static string WithStream(string body, bool stream) => body.Replace("STREAM", stream ? ",\"stream\":true" : "", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(TypesAndStreaming))]
    public async Task A_text_answer_comes_back_as_an_anthropic_message(string type, bool stream)
    {
        await using var upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(type, FakeAnswer.Text));
        await using var gateway = new GatewayFactory(ProviderFakes.Settings(type, upstream.BaseUrl));
        using var client = gateway.CreateClient();

        using var request = Post(WithStream(TextRequest, stream));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        AssertGatewayHeaders(response, attempts: "1");
        if (stream)
        {
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            var sse = await AnthropicSse.ReadAllAsync(response);
            Assert.Null(sse.Error);
            if (type == "anthropic")
            {
                // Native: Anthropic's own events, in its order (the ping after the first block), passed as they came.
                Assert.Equal(["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"], sse.Names);
            }
            else
            {
                Assert.Equal(["message_start", "ping", "content_block_start"], sse.Names.Take(3));
                Assert.Equal(["content_block_stop", "message_delta", "message_stop"], sse.Names.TakeLast(3));
                Assert.All(sse.Names.Skip(3).SkipLast(3), n => Assert.Equal("content_block_delta", n));
            }
            var start = sse.Single("message_start").GetProperty("message");
            Assert.StartsWith("msg_", start.GetProperty("id").GetString());
            Assert.Equal("assistant", start.GetProperty("role").GetString());
            Assert.True(start.GetProperty("usage").GetProperty("input_tokens").GetInt32() > 0, "message_start carries the (estimated) input tokens");
            Assert.Equal("Bonjour!", sse.Text);
            var delta = sse.Single("message_delta");
            Assert.Equal("end_turn", delta.GetProperty("delta").GetProperty("stop_reason").GetString());
            Assert.Equal(ProviderFakes.OutputTokens, delta.GetProperty("usage").GetProperty("output_tokens").GetInt32());
            // Anthropic reports the input in message_start (as the fake does); the translation repeats it in message_delta.
            if (type != "anthropic") Assert.Equal(ProviderFakes.PromptTokens, delta.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        }
        else
        {
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(response.Headers.GetValues("x-gateway-cost-usd").Single());
            var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.StartsWith("msg_", message.GetProperty("id").GetString());
            Assert.Equal("message", message.GetProperty("type").GetString());
            Assert.Equal("assistant", message.GetProperty("role").GetString());
            Assert.Equal("""[{"type":"text","text":"Bonjour!"}]""", message.GetProperty("content").GetRawText());
            Assert.Equal("end_turn", message.GetProperty("stop_reason").GetString());
            Assert.Equal(JsonValueKind.Null, message.GetProperty("stop_sequence").ValueKind);
            Assert.Equal(ProviderFakes.PromptTokens, message.GetProperty("usage").GetProperty("input_tokens").GetInt32());
            Assert.Equal(ProviderFakes.OutputTokens, message.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        }

        // Upstream got the request in its own format: the system prompt, the user's text and the output limit.
        var sent = Assert.Single(upstream.Requests);
        var raw = Encoding.UTF8.GetString(sent.Body);
        Assert.Contains("Be brief.", raw);
        Assert.Contains("Say hello in French.", raw);
        Assert.Contains("100", raw);
        if (type == "anthropic")
        {
            // Native: the client's own body, the prompt-cache breakpoint included; only the model replaced.
            Assert.Contains("\"cache_control\":{\"type\":\"ephemeral\"}", raw);
            Assert.Equal("upstream-x", sent.Json.GetProperty("model").GetString());
            Assert.Equal(100, sent.Json.GetProperty("max_tokens").GetInt32());
            Assert.Equal("""{"user_id":"u-1"}""", sent.Json.GetProperty("metadata").GetRawText());
        }
        else
        {
            Assert.DoesNotContain("cache_control", raw);
        }
        if (type == "openai") Assert.Equal(100, sent.Json.GetProperty("max_completion_tokens").GetInt32());
    }

    [Theory]
    [MemberData(nameof(TypesAndStreaming))]
    public async Task Tools_and_tool_results_go_up_and_a_tool_call_comes_back_as_a_tool_use_block(string type, bool stream)
    {
        await using var upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(type, FakeAnswer.Tool));
        await using var gateway = new GatewayFactory(ProviderFakes.Settings(type, upstream.BaseUrl));
        using var client = gateway.CreateClient();

        using var request = Post(WithStream(ToolRequest, stream));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (stream)
        {
            var sse = await AnthropicSse.ReadAllAsync(response);
            Assert.Null(sse.Error);
            var starts = sse.Events.Where(e => e.Name == "content_block_start").Select(e => e.Data).ToList();
            Assert.Equal(2, starts.Count);
            Assert.Equal("text", starts[0].GetProperty("content_block").GetProperty("type").GetString());
            var toolBlock = starts[1].GetProperty("content_block");
            Assert.Equal(1, starts[1].GetProperty("index").GetInt32());
            Assert.Equal("tool_use", toolBlock.GetProperty("type").GetString());
            Assert.Equal("get_weather", toolBlock.GetProperty("name").GetString());
            Assert.False(string.IsNullOrEmpty(toolBlock.GetProperty("id").GetString()));
            Assert.Equal("Checking.", sse.Text);
            Assert.Equal(JsonDocument.Parse(ProviderFakes.ExpectedArguments).RootElement.GetRawText(), JsonDocument.Parse(sse.InputJson(1)).RootElement.GetRawText());
            Assert.Equal(2, sse.Events.Count(e => e.Name == "content_block_stop"));
            Assert.Equal("tool_use", sse.Single("message_delta").GetProperty("delta").GetProperty("stop_reason").GetString());
            Assert.Equal("message_stop", sse.Names.Last());
        }
        else
        {
            var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            var content = message.GetProperty("content");
            Assert.Equal(2, content.GetArrayLength());
            Assert.Equal("""{"type":"text","text":"Checking."}""", content[0].GetRawText());
            Assert.Equal("tool_use", content[1].GetProperty("type").GetString());
            Assert.Equal("get_weather", content[1].GetProperty("name").GetString());
            Assert.Equal("""{"city":"Paris"}""", content[1].GetProperty("input").GetRawText());
            Assert.Equal("tool_use", message.GetProperty("stop_reason").GetString());
        }

        // The history went up in the provider's own terms: the earlier call, its result, the tool's schema.
        var raw = Encoding.UTF8.GetString(Assert.Single(upstream.Requests).Body);
        Assert.Contains("get_weather", raw);
        Assert.Contains("Lyon", raw);
        Assert.Contains("12 degrees", raw);
        Assert.Contains("Now Paris.", raw);
        if (type == "anthropic")
        {
            var sent = upstream.Requests.Single().Json;
            var messages = sent.GetProperty("messages");
            Assert.Equal("tool_use", messages[1].GetProperty("content")[1].GetProperty("type").GetString());
            Assert.Equal("toolu_lyon", messages[1].GetProperty("content")[1].GetProperty("id").GetString());
            Assert.Equal("""{"type":"tool_result","tool_use_id":"toolu_lyon","content":"12 degrees"}""", messages[2].GetProperty("content")[0].GetRawText());
            Assert.Equal("object", sent.GetProperty("tools")[0].GetProperty("input_schema").GetProperty("type").GetString());
        }
    }

    internal static void AssertGatewayHeaders(HttpResponseMessage response, string? attempts)
    {
        var id = response.Headers.GetValues("x-request-id").Single();
        Assert.StartsWith("req_", id);
        Assert.Equal(id, response.Headers.GetValues("request-id").Single());
        Assert.True(response.Headers.Contains("x-gateway-overhead-ms"));
        if (attempts is not null)
        {
            Assert.Equal(attempts, response.Headers.GetValues("x-gateway-attempts").Single());
            Assert.Equal("target", response.Headers.GetValues("x-gateway-provider").Single());
            Assert.Equal("target-model", response.Headers.GetValues("x-gateway-model").Single());
            Assert.True(response.Headers.Contains("x-gateway-cache"));
        }
    }
}
