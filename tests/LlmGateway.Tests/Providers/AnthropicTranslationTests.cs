using LlmGateway.Providers;
using LlmGateway.Providers.Anthropic;
using static LlmGateway.Tests.Providers.Translation;

namespace LlmGateway.Tests.Providers;

public class AnthropicTranslationTests
{
    [Fact]
    public void System_and_developer_messages_become_the_top_level_system_and_max_tokens_is_always_sent()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"system","content":"One."},{"role":"developer","content":[{"type":"text","text":"Two.","cache_control":{"type":"ephemeral"}}]},
             {"role":"user","content":"Hi"}],"user":"u-42"}
            """, maxOutputTokens: 777));

        var body = Parse(AnthropicRequestWriter.Write(request.Value));

        Assert.Equal(777, body.GetProperty("max_tokens").GetInt32());
        Assert.Equal("upstream-model", body.GetProperty("model").GetString());
        Assert.Equal("""[{"type":"text","text":"One."},{"type":"text","text":"Two.","cache_control":{"type":"ephemeral"}}]""", body.GetProperty("system").GetRawText());
        Assert.Equal(1, body.GetProperty("messages").GetArrayLength());
        Assert.Equal("""{"user_id":"u-42"}""", body.GetProperty("metadata").GetRawText());
    }

    [Fact]
    public void The_clients_max_tokens_wins_over_the_models_limit()
    {
        using var request = new Disposer(Request("""{"model":"m","max_completion_tokens":50,"messages":[{"role":"user","content":"Hi"}]}"""));
        Assert.Equal(50, Parse(AnthropicRequestWriter.Write(request.Value)).GetProperty("max_tokens").GetInt32());
    }

    [Fact]
    public void Images_become_base64_or_url_sources()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What are these?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
              {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"low"}}]}]}
            """));

        var content = Parse(AnthropicRequestWriter.Write(request.Value)).GetProperty("messages")[0].GetProperty("content");

        Assert.Equal("""{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}""", content[1].GetRawText());
        Assert.Equal("""{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}""", content[2].GetRawText());
    }

    [Fact]
    public void Consecutive_user_turns_are_merged_and_empty_messages_left_out()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]},{"role":"user","content":""},{"role":"user","content":"b"},
             {"role":"assistant","content":"c"},{"role":"assistant","content":null},{"role":"user","content":"d"}]}
            """));

        var messages = Parse(AnthropicRequestWriter.Write(request.Value)).GetProperty("messages");

        Assert.Equal(
            """[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":[{"type":"text","text":"c"}]},{"role":"user","content":[{"type":"text","text":"d"}]}]""",
            messages.GetRawText());
    }

    [Theory]
    [InlineData("\"none\"", null, """{"type":"none"}""")]
    [InlineData("\"required\"", null, """{"type":"any"}""")]
    [InlineData("\"auto\"", "false", """{"type":"auto","disable_parallel_tool_use":true}""")]
    [InlineData("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", null, """{"type":"tool","name":"f"}""")]
    public void Tool_choice_maps_to_anthropics(string choice, string? parallel, string expected)
    {
        var json = """{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":""" + choice +
                   (parallel is null ? "" : ",\"parallel_tool_calls\":" + parallel) + "}";
        using var request = new Disposer(Request(json));

        var body = Parse(AnthropicRequestWriter.Write(request.Value));

        Assert.Equal(expected, body.GetProperty("tool_choice").GetRawText());
        // A function without parameters still gets the schema Anthropic requires.
        Assert.Equal("""{"name":"f","input_schema":{"type":"object","properties":{}}}""", body.GetProperty("tools")[0].GetRawText());
    }

    [Fact]
    public void Each_of_n_fanned_out_calls_asks_anthropic_for_one_answer()
    {
        using var request = new Disposer(Request("""{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}"""));
        var body = Parse(AnthropicRequestWriter.Write(request.Value.ForChoice(1, "chatcmpl-shared")));
        Assert.False(body.TryGetProperty("n", out _));
        Assert.Equal(1, request.Value.ForChoice(1, "chatcmpl-shared").Choices);
        Assert.Equal(2, request.Value.Choices);
    }

    [Fact]
    public void A_json_schema_becomes_a_forced_answer_tool_with_the_schema_as_its_input_schema()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":"x"}],
             "response_format":{"type":"json_schema","json_schema":{"name":"city","description":"A city.","strict":true,
               "schema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}}}}
            """));
        var body = Parse(AnthropicRequestWriter.Write(request.Value));

        var tool = Assert.Single(body.GetProperty("tools").EnumerateArray());
        Assert.Equal(AnthropicStructuredOutput.ToolName, tool.GetProperty("name").GetString());
        Assert.Equal("A city.", tool.GetProperty("description").GetString());
        Assert.Equal("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""", tool.GetProperty("input_schema").GetRawText());
        Assert.Equal("""{"type":"tool","name":"json_answer"}""", body.GetProperty("tool_choice").GetRawText());
    }

    [Fact]
    public void Json_object_is_an_answer_tool_taking_any_object()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"""));
        var body = Parse(AnthropicRequestWriter.Write(request.Value));
        Assert.Equal("""{"type":"object"}""", Assert.Single(body.GetProperty("tools").EnumerateArray()).GetProperty("input_schema").GetRawText());
        Assert.Equal("tool", body.GetProperty("tool_choice").GetProperty("type").GetString());
    }

    [Fact]
    public void With_the_clients_own_tools_the_answer_tool_is_offered_beside_them_and_their_choice_stands()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},
             "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],"tool_choice":"required"}
            """));
        var body = Parse(AnthropicRequestWriter.Write(request.Value));
        Assert.Equal(["lookup", "json_answer"], body.GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        Assert.Equal("any", body.GetProperty("tool_choice").GetProperty("type").GetString());
    }

    [Fact]
    public void A_text_response_format_changes_nothing()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}"""));
        var body = Parse(AnthropicRequestWriter.Write(request.Value));
        Assert.False(body.TryGetProperty("tools", out _));
        Assert.False(body.TryGetProperty("tool_choice", out _));
    }

    [Fact]
    public void A_tool_message_without_tool_call_id_is_refused_with_its_param()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}"""));
        var e = Assert.Throws<RequestTranslationException>(() => AnthropicRequestWriter.Write(request.Value));
        Assert.Equal("messages[1].tool_call_id", e.Param);
        Assert.Equal(FailureKind.FailRequest, e.Kind);
    }

    [Theory]
    [InlineData(529, "overloaded_error", "Overloaded", FailureKind.Retryable)]
    [InlineData(429, "rate_limit_error", "Rate limited", FailureKind.Retryable)]
    [InlineData(500, "api_error", "Internal", FailureKind.Retryable)]
    [InlineData(401, "authentication_error", "invalid x-api-key", FailureKind.NextCandidate)]
    [InlineData(403, "permission_error", "no access", FailureKind.NextCandidate)]
    [InlineData(404, "not_found_error", "model: x", FailureKind.NextCandidate)]
    [InlineData(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.", FailureKind.NextCandidate)]
    [InlineData(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", FailureKind.ContextLength)]
    [InlineData(400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 190000 + 20000 > 200000", FailureKind.ContextLength)]
    [InlineData(400, "invalid_request_error", "temperature: range: 0..1", FailureKind.FailRequest)]
    public void Error_bodies_are_classified(int status, string type, string message, FailureKind kind)
    {
        var body = System.Text.Encoding.UTF8.GetBytes($$$"""{"type":"error","error":{"type":"{{{type}}}","message":"{{{message}}}"}}""");
        var failure = AnthropicResponses.ReadError("claude", status, body, TimeSpan.FromSeconds(3));
        Assert.Equal(kind, failure.Kind);
        Assert.Equal(status, failure.UpstreamStatus);
        Assert.Contains(message, failure.Message);
        Assert.Equal(TimeSpan.FromSeconds(3), failure.RetryAfter);
    }

    [Fact]
    public void An_error_body_that_is_not_json_is_classified_by_status()
    {
        var failure = AnthropicResponses.ReadError("claude", 502, "<html>Bad Gateway</html>"u8, null);
        Assert.Equal(FailureKind.Retryable, failure.Kind);
        Assert.Contains("Bad Gateway", failure.Message);
    }

    [Fact]
    public async Task A_broken_stream_keeps_the_prompt_usage_reported_and_estimates_the_completion()
    {
        using var request = new Disposer(Request("""{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"""));
        var sse = """
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":100,"cache_read_input_tokens":50,"output_tokens":1}}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"abcdefghij"}}


            """;
        await using var stream = new AnthropicChatStream("claude", request.Value, new HttpResponseMessage(), Body(sse), TimeProvider.System);

        var events = await ReadAll(stream);

        Assert.Equal([StreamEventKind.Chunk, StreamEventKind.Content, StreamEventKind.Failed], events.Select(e => e.Kind));
        Assert.Equal(FailureCause.Protocol, events[^1].Failure!.Cause);
        Assert.Equal(new TokenUsage(150, 3, 50), stream.Usage); // 10 characters streamed: about 3 tokens
    }

    [Fact]
    public void A_complete_answer_with_thinking_and_tool_use_keeps_only_text_and_tool_calls()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}]}"""));
        var body = """
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-x","stop_reason":"tool_use","stop_sequence":null,
             "content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"On it."},
                        {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":[1,2]}}],
             "usage":{"input_tokens":10,"output_tokens":20}}
            """u8;

        var response = AnthropicResponses.ReadCompletion("claude", request.Value, body, 1_700_000_000);

        Assert.Equal("tool_calls", response.FinishReason);
        var message = Parse(response.Body.ToArray()).GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("On it.", message.GetProperty("content").GetString());
        Assert.Equal("""[{"id":"toolu_1","type":"function","function":{"name":"f","arguments":"{\u0022a\u0022:[1,2]}"}}]""", message.GetProperty("tool_calls").GetRawText());
    }
}

/// <summary>Disposes the request's parsed body after a test.</summary>
internal readonly struct Disposer(ProviderRequest value) : IDisposable
{
    public ProviderRequest Value { get; } = value;
    public void Dispose() => Value.Chat.Dispose();
}

public class AnthropicNativeBodyTests
{
    [Theory]
    [InlineData("""{"model":"client-name","max_tokens":5}""", """{"model":"claude-up","max_tokens":5}""")]
    [InlineData("""{ "top_k":1,  "model" : "a\"b" ,"x":{"model":"inner"}}""", """{ "top_k":1,  "model" : "claude-up" ,"x":{"model":"inner"}}""")]
    public void Only_the_top_level_model_value_is_replaced(string body, string expected)
    {
        var written = LlmGateway.Providers.Anthropic.AnthropicNative.WithModel(System.Text.Encoding.UTF8.GetBytes(body), "claude-up");
        Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(written));
    }
}
