using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// The official Anthropic SDK (node) through the gateway on 127.0.0.1 to an anthropic-type provider (a
/// Kestrel fake of Anthropic): extended thinking and top_k, which the chat translation refuses, reach the
/// upstream as the SDK wrote them, and the SDK reads Anthropic's own answer and events, thinking blocks included.
/// </summary>
public sealed class AnthropicSdkNativeTests : IAsyncLifetime
{
    private const string Secret = "gw-anthropic-sdk-native-0123456789";
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;
    private Uri _base = null!;

    private const string Answer = """{"id":"msg_sdk1","type":"message","role":"assistant","model":"upstream-x","content":[{"type":"thinking","thinking":"A greeting.","signature":"c2ln"},{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":12}}""";

    private static readonly string[] s_events =
    [
        """{"type":"message_start","message":{"id":"msg_sdk2","type":"message","role":"assistant","model":"upstream-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":1}}}""",
        """{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}""",
        """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"A greet"}}""",
        """{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"ing."}}""",
        """{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"c2ln"}}""",
        """{"type":"content_block_stop","index":0}""",
        """{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}""",
        """{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello!"}}""",
        """{"type":"content_block_stop","index":1}""",
        """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}""",
        """{"type":"message_stop"}""",
    ];

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, r) =>
        {
            if (!ProviderFakes.IsStream("anthropic", r))
            {
                await ProviderFakes.Json(http, Answer);
                return;
            }
            http.Response.ContentType = "text/event-stream";
            foreach (var data in s_events)
            {
                var type = JsonDocument.Parse(data).RootElement.GetProperty("type").GetString();
                await http.Response.WriteAsync($"event: {type}\ndata: {data}\n\n", http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            }
        });
        _gateway = new GatewayFactory(ProviderFakes.Settings("anthropic", _upstream.BaseUrl).WithKeys(new AuthKit.Key("sdk", Secret)));
        _base = _gateway.StartOnLoopback();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private void AssertSentNatively()
    {
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("upstream-x", sent.Json.GetProperty("model").GetString());
        Assert.Equal(5, sent.Json.GetProperty("top_k").GetInt32());
        Assert.Equal("""{"type":"enabled","budget_tokens":1024}""", sent.Json.GetProperty("thinking").GetRawText());
        Assert.False(string.IsNullOrEmpty(sent.Header("anthropic-version")), "the SDK's anthropic-version goes up");
        Assert.Equal("sk-upstream-test-key", sent.Header("x-api-key"));
    }

    [Fact]
    public async Task Messages_create_with_thinking_and_top_k_reaches_anthropic_and_the_sdk_reads_the_thinking_block()
    {
        var result = await AnthropicSdkTests.RunNodeAsync(_base, "create-native", ProviderFakes.Model, Secret);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var message = result.GetProperty("result");
        Assert.Equal("msg_sdk1", message.GetProperty("id").GetString());
        var content = message.GetProperty("content");
        Assert.Equal("thinking", content[0].GetProperty("type").GetString());
        Assert.Equal("A greeting.", content[0].GetProperty("thinking").GetString());
        Assert.Equal("Hello!", content[1].GetProperty("text").GetString());
        Assert.Equal(12, message.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        AssertSentNatively();
    }

    [Fact]
    public async Task Messages_stream_with_thinking_gives_the_sdk_anthropics_own_events()
    {
        var result = await AnthropicSdkTests.RunNodeAsync(_base, "stream-native", ProviderFakes.Model, Secret);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var value = result.GetProperty("result");
        Assert.Equal(["A greet", "ing."], value.GetProperty("thinking").EnumerateArray().Select(t => t.GetString()));
        var final = value.GetProperty("final");
        Assert.Equal("msg_sdk2", final.GetProperty("id").GetString());
        Assert.Equal("c2ln", final.GetProperty("content")[0].GetProperty("signature").GetString());
        Assert.Equal("Hello!", final.GetProperty("content")[1].GetProperty("text").GetString());
        Assert.Equal("end_turn", final.GetProperty("stop_reason").GetString());
        Assert.Equal(12, final.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        AssertSentNatively();
        Assert.True(_upstream.Requests.Single().Json.GetProperty("stream").GetBoolean());
    }
}
