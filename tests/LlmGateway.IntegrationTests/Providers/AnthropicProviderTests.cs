using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Providers;

/// <summary>
/// An `anthropic` provider against a fake Messages API on loopback that speaks Anthropic's wire
/// format (streaming events as in Anthropic's streaming reference), driven by the OpenAI .NET SDK.
/// </summary>
public sealed class AnthropicProviderTests : IAsyncLifetime
{
    private const string KeyEnv = "ANTHROPIC_TESTS_KEY";
    private const string Key = "sk-ant-test-secret-0123456789";
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(KeyEnv, Key);
        _upstream = await FakeUpstream.StartAsync();
        _gateway = new GatewayFactory(Settings(_upstream.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    /// <summary>claude-test on the fake Anthropic; backup-model (the mock, echoing) as its fallback, with a larger context window.</summary>
    // MaxRetries 0: these tests count upstream calls to see how each error is classified.
    private static Dictionary<string, string?> Settings(string baseUrl, string keyEnv = KeyEnv, int backupContextWindow = 400_000) => new()
    {
        ["Gateway:Resilience:MaxRetries"] = "0",
        ["Gateway:Providers:claude:Type"] = "anthropic",
        ["Gateway:Providers:claude:BaseUrl"] = baseUrl,
        ["Gateway:Providers:claude:ApiKeyEnv"] = keyEnv,
        ["Gateway:Providers:backup:Type"] = "mock",
        ["Gateway:Models:claude-test:Provider"] = "claude",
        ["Gateway:Models:claude-test:UpstreamModel"] = "claude-sonnet-4-5",
        ["Gateway:Models:claude-test:MaxOutputTokens"] = "1024",
        ["Gateway:Models:claude-test:ContextWindow"] = "200000",
        ["Gateway:Models:claude-test:CostPer1kInput"] = "0.003",
        ["Gateway:Models:claude-test:CostPer1kOutput"] = "0.015",
        ["Gateway:Models:claude-test:CostPer1kCachedInput"] = "0.0003",
        ["Gateway:Models:claude-fallback:Provider"] = "claude",
        ["Gateway:Models:claude-fallback:UpstreamModel"] = "claude-sonnet-4-5",
        ["Gateway:Models:claude-fallback:ContextWindow"] = "200000",
        ["Gateway:Models:claude-fallback:Fallbacks:0"] = "backup-model",
        ["Gateway:Models:backup-model:Provider"] = "backup",
        ["Gateway:Models:backup-model:ContextWindow"] = backupContextWindow.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    [Fact]
    public async Task A_text_answer_is_translated_both_ways()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message("""[{"type":"text","text":"Bonjour!"}]""", "end_turn", input: 25, output: 4));

        var client = _gateway.ChatClient("claude-test");
        var result = await client.CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Say hello in French.")],
            new ChatCompletionOptions { Temperature = 0.2f, StopSequences = { "END" } });

        var completion = result.Value;
        Assert.Equal("Bonjour!", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal("msg_01XFDUDYJgAACzvnptvVoYEL", completion.Id);
        Assert.Equal("claude-sonnet-4-5-20250929", completion.Model);
        Assert.Equal(25, completion.Usage.InputTokenCount);
        Assert.Equal(4, completion.Usage.OutputTokenCount);
        Assert.Equal(29, completion.Usage.TotalTokenCount);
        // 25 * 0.003 / 1000 + 4 * 0.015 / 1000
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-gateway-cost-usd", out var cost));
        Assert.Equal(0.000135m, decimal.Parse(cost!, System.Globalization.CultureInfo.InvariantCulture));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("POST", sent.Method);
        Assert.Equal("/v1/messages", sent.Path);
        Assert.Equal(Key, sent.Header("x-api-key"));
        Assert.Equal("2023-06-01", sent.Header("anthropic-version"));
        Assert.Null(sent.Header("authorization"));
        var body = sent.Json;
        Assert.Equal("claude-sonnet-4-5", body.GetProperty("model").GetString());
        Assert.Equal(1024, body.GetProperty("max_tokens").GetInt32()); // the model's MaxOutputTokens: Anthropic requires one
        Assert.Equal("""[{"type":"text","text":"Be brief."}]""", body.GetProperty("system").GetRawText());
        Assert.Equal("""[{"role":"user","content":[{"type":"text","text":"Say hello in French."}]}]""", body.GetProperty("messages").GetRawText());
        Assert.Equal(0.2, body.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal("""["END"]""", body.GetProperty("stop_sequences").GetRawText());
        Assert.False(body.TryGetProperty("stream", out _));
    }

    [Fact]
    public async Task Streamed_text_arrives_as_openai_chunks_with_usage_and_the_finish_reason()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 12, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "ping", """{"type": "ping"}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" from Claude"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var ids = new HashSet<string>();
        await foreach (var update in _gateway.ChatClient("claude-test").CompleteChatStreamingAsync([new UserChatMessage("Hi")]))
        {
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("Hello from Claude", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal("msg_01XFDUDYJgAACzvnptvVoYEL", Assert.Single(ids));
        Assert.NotNull(usage);
        Assert.Equal(12, usage.InputTokenCount);
        Assert.Equal(5, usage.OutputTokenCount);
        var sent = Assert.Single(_upstream.Requests);
        Assert.True(sent.Json.GetProperty("stream").GetBoolean());
        Assert.False(sent.Json.TryGetProperty("stream_options", out _));
    }

    [Fact]
    public async Task The_raw_stream_has_one_id_a_role_chunk_first_and_no_usage_chunk_unless_asked()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 12, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":1}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        var events = await RawStreamAsync("""{"model":"claude-test","stream":true,"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(3, chunks.Count); // role, content, finish: no usage chunk, the client did not ask
        Assert.All(chunks, c => Assert.Equal("msg_01XFDUDYJgAACzvnptvVoYEL", c.GetProperty("id").GetString()));
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("Hi", chunks[1].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("length", chunks[2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Two_streamed_tool_calls_with_fragmented_arguments_are_reassembled_by_the_sdk()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 310, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking both cities."}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\", \"unit\": \"c\"}"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":1}""");
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \"Asia/Tokyo\"}"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":2}""");
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01C","name":"now","input":{}}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":3}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        var options = new ChatCompletionOptions { Tools = { Wire.WeatherTool, Wire.TimeTool } };
        var text = new StringBuilder();
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Args)>();
        ChatFinishReason? finish = null;
        await foreach (var update in _gateway.ChatClient("claude-test").CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris and time in Tokyo?")], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            foreach (var call in update.ToolCallUpdates)
            {
                if (!calls.TryGetValue(call.Index, out var c)) calls[call.Index] = c = (null, null, new StringBuilder());
                calls[call.Index] = (c.Id ?? call.ToolCallId, c.Name ?? call.FunctionName, c.Args.Append(call.FunctionArgumentsUpdate?.ToString()));
            }
            finish ??= update.FinishReason;
        }

        Assert.Equal("Checking both cities.", text.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal([0, 1, 2], calls.Keys);
        Assert.Equal(("toolu_01A", "get_weather"), (calls[0].Id, calls[0].Name));
        Assert.Equal("""{"city": "Paris", "unit": "c"}""", calls[0].Args.ToString());
        Assert.Equal(("toolu_01B", "get_time"), (calls[1].Id, calls[1].Name));
        Assert.Equal("""{"tz": "Asia/Tokyo"}""", calls[1].Args.ToString());
        // A call without parameters streams no fragment; OpenAI clients still get parseable arguments.
        Assert.Equal(("toolu_01C", "now", "{}"), (calls[2].Id, calls[2].Name, calls[2].Args.ToString()));

        var tools = Assert.Single(_upstream.Requests).Json.GetProperty("tools");
        Assert.Equal("get_weather", tools[0].GetProperty("name").GetString());
        Assert.Equal("Current weather for a city", tools[0].GetProperty("description").GetString());
        Assert.Equal("object", tools[0].GetProperty("input_schema").GetProperty("type").GetString());
        Assert.Equal("string", tools[0].GetProperty("input_schema").GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_tool_result_round_trip_becomes_tool_use_and_tool_result_blocks()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message("""[{"type":"text","text":"It is 18°C in Paris and 9pm in Tokyo."}]""", "end_turn", input: 400, output: 15));

        ChatMessage[] messages =
        [
            new UserChatMessage("Weather in Paris and time in Tokyo?"),
            new AssistantChatMessage([
                ChatToolCall.CreateFunctionToolCall("toolu_01A", "get_weather", BinaryData.FromString("""{"city":"Paris"}""")),
                ChatToolCall.CreateFunctionToolCall("toolu_01B", "get_time", BinaryData.FromString("""{"tz":"Asia/Tokyo"}""")),
            ]),
            new ToolChatMessage("toolu_01A", "18°C, sunny"),
            new ToolChatMessage("toolu_01B", "21:00"),
        ];
        var options = new ChatCompletionOptions { Tools = { Wire.WeatherTool, Wire.TimeTool }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather"), AllowParallelToolCalls = false };
        var result = await _gateway.ChatClient("claude-test").CompleteChatAsync(messages, options);

        Assert.Equal("It is 18°C in Paris and 9pm in Tokyo.", result.Value.Content[0].Text);
        var body = Assert.Single(_upstream.Requests).Json;
        var sent = body.GetProperty("messages");
        Assert.Equal(3, sent.GetArrayLength());
        Assert.Equal("assistant", sent[1].GetProperty("role").GetString());
        Assert.Equal(
            """[{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"toolu_01B","name":"get_time","input":{"tz":"Asia/Tokyo"}}]""",
            sent[1].GetProperty("content").GetRawText());
        // Both results in the one user turn after the calls, as Anthropic requires.
        Assert.Equal("user", sent[2].GetProperty("role").GetString());
        Assert.Equal(
            """[{"type":"tool_result","tool_use_id":"toolu_01A","content":"18°C, sunny"},{"type":"tool_result","tool_use_id":"toolu_01B","content":"21:00"}]""",
            sent[2].GetProperty("content").GetRawText());
        Assert.Equal("""{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}""", body.GetProperty("tool_choice").GetRawText());
    }

    [Fact]
    public async Task A_non_streamed_tool_call_answer_has_openai_tool_calls()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message(
            """[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Paris","unit":"c"}}]""",
            "tool_use", input: 300, output: 40));

        var result = await _gateway.ChatClient("claude-test").CompleteChatAsync([new UserChatMessage("Weather in Paris?")], new ChatCompletionOptions { Tools = { Wire.WeatherTool } });

        Assert.Equal(ChatFinishReason.ToolCalls, result.Value.FinishReason);
        Assert.Equal("Let me check.", result.Value.Content[0].Text);
        var call = Assert.Single(result.Value.ToolCalls);
        Assert.Equal(("toolu_01A", "get_weather"), (call.Id, call.FunctionName));
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("city").GetString());
    }

    [Fact]
    public async Task Cache_read_and_creation_tokens_count_as_prompt_tokens_and_reads_as_cached()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message("""[{"type":"text","text":"ok"}]""", "end_turn", input: 20, output: 3, cacheRead: 1800, cacheWrite: 200));

        var result = await _gateway.ChatClient("claude-test").CompleteChatAsync([new UserChatMessage("Hi")]);

        var usage = result.Value.Usage;
        Assert.Equal(2020, usage.InputTokenCount);
        Assert.Equal(1800, usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(3, usage.OutputTokenCount);
        Assert.Equal(2023, usage.TotalTokenCount);
        // 220 uncached at 0.003, 1800 cached at 0.0003, 3 out at 0.015 (per 1k)
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-gateway-cost-usd", out var cost));
        Assert.Equal(0.001245m, decimal.Parse(cost!, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Streamed_usage_includes_cache_tokens_from_message_start()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 7, cacheRead: 1000, cacheWrite: 50));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        ChatTokenUsage? usage = null;
        await foreach (var update in _gateway.ChatClient("claude-test").CompleteChatStreamingAsync([new UserChatMessage("Hi")]))
        {
            usage ??= update.Usage;
        }

        Assert.NotNull(usage);
        Assert.Equal(1057, usage.InputTokenCount);
        Assert.Equal(1000, usage.InputTokenDetails.CachedTokenCount);
        Assert.Equal(2, usage.OutputTokenCount);
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("refusal", "content_filter")]
    public async Task Stop_reasons_map_to_openai_finish_reasons(string stopReason, string finishReason)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message("""[{"type":"text","text":"x"}]""", stopReason, input: 5, output: 1));

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(finishReason, body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
    }

    [Theory]
    // A bad request is passed to the client in OpenAI's shape with Anthropic's status and words.
    [InlineData(400, "invalid_request_error", "messages.0.content: Field required", 400, "invalid_request_error", null)]
    // Everything else fails this candidate; with no other, the status names the cause: a rate limit
    // is OpenAI's 429, an overloaded model a 503 (the client may come back), anything else the gateway's 502.
    [InlineData(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", 429, "rate_limit_error", "rate_limit_exceeded")]
    [InlineData(529, "overloaded_error", "Overloaded", 503, "api_error", "no_healthy_provider")]
    [InlineData(500, "api_error", "Internal server error", 502, "api_error", "upstream_error")]
    [InlineData(401, "authentication_error", "invalid x-api-key", 502, "api_error", "upstream_error")]
    [InlineData(403, "permission_error", "Your API key does not have permission to use the specified resource.", 502, "api_error", "upstream_error")]
    [InlineData(404, "not_found_error", "model: claude-nonexistent", 502, "api_error", "upstream_error")]
    public async Task Anthropic_errors_become_openai_errors(int upstreamStatus, string anthropicType, string message, int status, string type, string? code)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error(anthropicType, message), upstreamStatus);

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.True(error.TryGetProperty("param", out _));
    }

    [Theory]
    // Retryable and try-another-provider errors go on to the fallback model (the mock echoes).
    [InlineData(529, "overloaded_error", "Overloaded", true)]
    [InlineData(429, "rate_limit_error", "rate limited", true)]
    [InlineData(401, "authentication_error", "invalid x-api-key", true)]
    [InlineData(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.", true)]
    // The request's own fault: no other provider will do better, so no fallback.
    [InlineData(400, "invalid_request_error", "max_tokens: must be greater than or equal to 1", false)]
    public async Task Error_classification_decides_whether_the_fallback_is_tried(int upstreamStatus, string anthropicType, string message, bool fallsBack)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error(anthropicType, message), upstreamStatus);

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-fallback","messages":[{"role":"user","content":"echo me"}]}"""));

        Assert.Equal(1, _upstream.Calls);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        if (fallsBack)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("echo me", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            Assert.Equal("backup", response.Headers.GetValues("x-gateway-provider").Single());
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal(message, body.GetProperty("error").GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task A_prompt_too_long_is_a_context_length_failure_that_skips_smaller_fallbacks()
    {
        await using var gateway = new GatewayFactory(Settings(_upstream.BaseUrl, backupContextWindow: 100_000));
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error("invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"), 400);

        using var client = gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-fallback","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.False(response.Headers.TryGetValues("x-gateway-provider", out var provider) && provider.Single() == "backup");
    }

    [Fact]
    public async Task An_error_event_mid_stream_ends_the_stream_with_one_openai_error_event_and_no_done()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 12, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial"}}""");
            await Wire.Event(http, "error", """{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}""");
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"claude-test","stream":true,"messages":[{"role":"user","content":"Hi"}]}""")).Events;

        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal("Partial", JsonDocument.Parse(events[1]).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var error = JsonDocument.Parse(events[^1]).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Contains("Overloaded", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_error_event_before_any_content_goes_to_the_fallback()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 12, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "error", """{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}""");
        };

        var text = new StringBuilder();
        await foreach (var update in _gateway.ChatClient("claude-fallback").CompleteChatStreamingAsync([new UserChatMessage("echo me")]))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
        }

        Assert.Equal("echo me", text.ToString());
    }

    [Fact]
    public async Task A_stream_cut_before_message_stop_ends_with_an_error_event()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 12, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial"}}""");
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"claude-test","stream":true,"messages":[{"role":"user","content":"Hi"}]}""")).Events;

        Assert.DoesNotContain("[DONE]", events);
        Assert.Contains("ended before the answer was complete", JsonDocument.Parse(events[^1]).RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_request_that_cannot_be_translated_is_a_400_and_never_reaches_anthropic()
    {
        using var client = _gateway.CreateClient();
        // Tool call arguments that are not JSON, and a tool description that is not Unicode text.
        using var badArguments = await client.PostAsync("/v1/chat/completions", Json("""
            {"model":"claude-test","messages":[{"role":"user","content":"x"},
             {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{not json"}}]},
             {"role":"tool","tool_call_id":"call_1","content":"r"}]}
            """));
        using var badText = await client.PostAsync("/v1/chat/completions", Json("""
            {"model":"claude-test","messages":[{"role":"user","content":"x"}],
             "tools":[{"type":"function","function":{"name":"f","description":"\ud800"}}]}
            """));

        Assert.Equal(HttpStatusCode.BadRequest, badArguments.StatusCode);
        var error = JsonDocument.Parse(await badArguments.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("messages[1].tool_calls", error.GetProperty("param").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, badText.StatusCode);
        Assert.Contains("Unicode", JsonDocument.Parse(await badText.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task A_missing_key_leaves_the_provider_unusable_without_breaking_start_up_and_errors_never_show_the_key()
    {
        await using var noKey = new GatewayFactory(Settings(_upstream.BaseUrl, keyEnv: "ANTHROPIC_TESTS_KEY_THAT_IS_NOT_SET"));

        var error = await Assert.ThrowsAsync<ClientResultException>(() => noKey.ChatClient("claude-test").CompleteChatAsync([new UserChatMessage("x")]));

        Assert.Equal(503, error.Status);
        Assert.Contains("ANTHROPIC_TESTS_KEY_THAT_IS_NOT_SET", error.Message);
        Assert.Equal(0, _upstream.Calls);

        // An upstream that echoes the key back in its error body: the client never sees it.
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error("invalid_request_error", $"bad header x-api-key: {Key}"), 400);
        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"""));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.DoesNotContain(Key, text);
        Assert.Contains("[redacted]", text);
    }

    [Fact]
    public async Task An_overloaded_529_answers_503_with_retry_after_and_that_model_cools_down_without_more_calls()
    {
        _upstream.Handler = (http, _) =>
        {
            http.Response.Headers.RetryAfter = "12";
            return Wire.Json(http, Wire.Error("overloaded_error", "Overloaded"), 529);
        };
        using var client = _gateway.CreateClient();

        using var first = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"""));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode);
        Assert.Equal("12", first.Headers.GetValues("Retry-After").Single());
        Assert.Equal("false", first.Headers.GetValues("x-should-retry").Single());
        var error = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("no_healthy_provider", error.GetProperty("code").GetString());
        Assert.Contains("Overloaded", error.GetProperty("message").GetString());

        using var second = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","messages":[{"role":"user","content":"x"}]}"""));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.True(int.Parse(second.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) is > 0 and <= 12);
        Assert.Single(_upstream.Requests);
    }

    [Fact]
    public async Task Two_choices_are_two_calls_merged_into_one_answer_with_the_usage_summed()
    {
        var calls = 0;
        _upstream.Handler = (http, _) =>
        {
            var i = Interlocked.Increment(ref calls);
            return Wire.Json(http, Wire.Message($$"""[{"type":"text","text":"Answer {{i}}"}]""", "end_turn", input: 20, output: 3 + i));
        };

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","n":2,"messages":[{"role":"user","content":"Two ideas, please."}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var raw = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choices = raw.RootElement.GetProperty("choices");
        Assert.Equal([0, 1], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(["Answer 1", "Answer 2"], choices.EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()).Order());
        var usage = raw.RootElement.GetProperty("usage");
        Assert.Equal(40, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(9, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, _upstream.Requests.Count);
        Assert.All(_upstream.Requests, r => Assert.False(r.Json.TryGetProperty("n", out _)));
        // Both calls are paid for: (40 * 0.003 + 9 * 0.015) / 1000.
        Assert.Equal("0.000255", response.Headers.GetValues("x-gateway-cost-usd").Single());
    }

    [Fact]
    public async Task Two_streamed_choices_arrive_as_one_stream_with_both_indexes_and_one_summed_usage()
    {
        _upstream.Handler = async (http, received) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 10, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Idea"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        var events = await RawStreamAsync("""{"model":"claude-test","stream":true,"n":2,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        var indexes = chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("index").GetInt32()).Distinct().Order();
        Assert.Equal([0, 1], indexes);
        var usage = Assert.Single(chunks, c => c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
        Assert.Equal(20, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(10, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, _upstream.Requests.Count);
    }

    [Fact]
    public async Task More_choices_than_a_fan_out_allows_is_a_400_on_n_before_any_call()
    {
        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"claude-test","n":9,"messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("n", error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Empty(_upstream.Requests);
    }

    private const string CitySchema = """{"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer"}},"required":["city","population"],"additionalProperties":false}""";

    [Fact]
    public async Task A_json_schema_answer_comes_back_as_the_content_through_a_forced_answer_tool()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Message(
            """[{"type":"tool_use","id":"toolu_01","name":"json_answer","input":{"city":"Paris","population":2102650}}]""", "tool_use", input: 30, output: 12));

        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("city", BinaryData.FromString(CitySchema), jsonSchemaIsStrict: true),
        };
        var result = await _gateway.ChatClient("claude-test").CompleteChatAsync([new UserChatMessage("The capital of France?")], options);

        using var answer = JsonDocument.Parse(result.Value.Content[0].Text);
        Assert.Equal("Paris", answer.RootElement.GetProperty("city").GetString());
        Assert.Equal(2102650, answer.RootElement.GetProperty("population").GetInt32());
        Assert.Equal(ChatFinishReason.Stop, result.Value.FinishReason);
        Assert.Empty(result.Value.ToolCalls);

        var sent = Assert.Single(_upstream.Requests).Json;
        var tool = Assert.Single(sent.GetProperty("tools").EnumerateArray());
        Assert.Equal("json_answer", tool.GetProperty("name").GetString());
        Assert.Equal(CitySchema, tool.GetProperty("input_schema").GetRawText());
        Assert.Equal("""{"type":"tool","name":"json_answer"}""", sent.GetProperty("tool_choice").GetRawText());
    }

    [Fact]
    public async Task A_streamed_json_object_answer_streams_the_tools_input_as_content()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, "message_start", Wire.MessageStart(input: 15, cacheRead: 0, cacheWrite: 0));
            await Wire.Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_02","name":"json_answer","input":{}}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"ok\": tr"}}""");
            await Wire.Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"ue}"}}""");
            await Wire.Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Wire.Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":6}}""");
            await Wire.Event(http, "message_stop", """{"type":"message_stop"}""");
        };

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        var options = new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() };
        await foreach (var update in _gateway.ChatClient("claude-test").CompleteChatStreamingAsync([new UserChatMessage("JSON please")], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            Assert.Empty(update.ToolCallUpdates);
            finish ??= update.FinishReason;
        }

        Assert.True(JsonDocument.Parse(text.ToString()).RootElement.GetProperty("ok").GetBoolean());
        Assert.Equal(ChatFinishReason.Stop, finish);
        var sent = Assert.Single(_upstream.Requests).Json;
        Assert.Equal("""{"type":"object"}""", sent.GetProperty("tools")[0].GetProperty("input_schema").GetRawText());
        Assert.Equal("json_answer", sent.GetProperty("tool_choice").GetProperty("name").GetString());
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>POSTs a streaming request and returns the data of every SSE event the gateway sent.</summary>
    private async Task<List<string>> RawStreamAsync(string body)
    {
        using var client = _gateway.CreateClient();
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) }, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // A broken stream ends in an aborted connection: read event by event, not as one string.
        return (await SseClient.ReadAllAsync(response)).Events;
    }

    /// <summary>Anthropic's Messages wire format, as its API reference and streaming reference show it.</summary>
    private static class Wire
    {
        public static readonly ChatTool WeatherTool = ChatTool.CreateFunctionTool("get_weather", "Current weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}"""));

        public static readonly ChatTool TimeTool = ChatTool.CreateFunctionTool("get_time", "Current time in a time zone",
            BinaryData.FromString("""{"type":"object","properties":{"tz":{"type":"string"}},"required":["tz"]}"""));

        public static string Message(string content, string stopReason, int input, int output, int cacheRead = 0, int cacheWrite = 0) =>
            "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\"," +
            "\"content\":" + content + ",\"stop_reason\":\"" + stopReason + "\",\"stop_sequence\":null," +
            "\"usage\":{\"input_tokens\":" + input + ",\"cache_creation_input_tokens\":" + cacheWrite + ",\"cache_read_input_tokens\":" + cacheRead + ",\"output_tokens\":" + output + "}}";

        public static string MessageStart(int input, int cacheRead, int cacheWrite) =>
            "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[]," +
            "\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null," +
            "\"usage\":{\"input_tokens\":" + input + ",\"cache_creation_input_tokens\":" + cacheWrite + ",\"cache_read_input_tokens\":" + cacheRead + ",\"output_tokens\":1}}}";

        public static string Error(string type, string message) =>
            "{\"type\":\"error\",\"error\":{\"type\":\"" + type + "\",\"message\":" + JsonSerializer.Serialize(message) + "},\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}";

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
            http.Response.Headers.CacheControl = "no-cache";
        }

        /// <summary>One event as Anthropic frames it: an event line, a data line, a blank line; flushed.</summary>
        public static async Task Event(HttpContext http, string name, string data)
        {
            await http.Response.WriteAsync($"event: {name}\ndata: {data}\n\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
    }
}
