using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.ChatCompletions;

/// <summary>The core chat path against an OpenAI-compatible upstream, driven by the official OpenAI .NET SDK.</summary>
public sealed class ChatCompletionsTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        Environment.SetEnvironmentVariable("CHAT_TESTS_UPSTREAM_KEY", "sk-upstream-secret-123456");
        _gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl, keyEnv: "CHAT_TESTS_UPSTREAM_KEY"));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Fact]
    public async Task Non_streaming_answer_comes_back_unchanged_with_usage_and_gateway_headers()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("Hi there", prompt: 21, completion: 4));

        var result = await _gateway.ChatClient("test-model").CompleteChatAsync([new UserChatMessage("Hello")]);

        Assert.Equal("Hi there", result.Value.Content[0].Text);
        Assert.Equal(21, result.Value.Usage.InputTokenCount);
        Assert.Equal(4, result.Value.Usage.OutputTokenCount);
        Assert.Equal("fp_test", result.Value.SystemFingerprint);
        var raw = result.GetRawResponse();
        Assert.Equal("up", raw.Headers.GetFirstOrDefault("x-gateway-provider"));
        Assert.Equal("test-model", raw.Headers.GetFirstOrDefault("x-gateway-model"));
        Assert.Equal("1", raw.Headers.GetFirstOrDefault("x-gateway-attempts"));
        Assert.StartsWith("req_", raw.Headers.GetFirstOrDefault("x-request-id"));
        Assert.True(double.Parse(raw.Headers.GetFirstOrDefault("x-gateway-overhead-ms")!, System.Globalization.CultureInfo.InvariantCulture) >= 0);
        // 21 * 0.001 / 1000 + 4 * 0.002 / 1000
        Assert.Equal(0.000029m, decimal.Parse(raw.Headers.GetFirstOrDefault("x-gateway-cost-usd")!, System.Globalization.CultureInfo.InvariantCulture));

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/chat/completions", sent.Path);
        Assert.Equal("Bearer sk-upstream-secret-123456", sent.Header("authorization"));
        Assert.Equal("upstream-model", sent.Json.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Unknown_fields_reach_the_upstream_unchanged_and_the_client_key_does_not()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok"));
        var body = """
            {"model":"test-model","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":2,"seed":7,
             "parallel_tool_calls":false,"response_format":{"type":"json_object"},"some_future_field":{"nested":[1,2.50,"three"]},
             "metadata":{"task_type":"general","team":"blue"}}
            """;
        using var client = _gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new("Bearer", "client-own-key-987654321");
        request.Headers.Add("api-key", "client-own-key-987654321");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var sent = Assert.Single(_upstream.Requests);
        var json = sent.Json;
        Assert.True(json.GetProperty("logprobs").GetBoolean());
        Assert.Equal(2, json.GetProperty("top_logprobs").GetInt32());
        Assert.Equal(7, json.GetProperty("seed").GetInt32());
        Assert.False(json.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.Equal("json_object", json.GetProperty("response_format").GetProperty("type").GetString());
        Assert.Equal("""{"nested":[1,2.50,"three"]}""", json.GetProperty("some_future_field").GetRawText());
        // The gateway's own routing hint is taken out; the rest of metadata is the upstream's.
        Assert.Equal("""{"team":"blue"}""", json.GetProperty("metadata").GetRawText());
        Assert.False(json.TryGetProperty("stream_options", out _));
        Assert.DoesNotContain("client-own-key", string.Join(" ", sent.Headers.Values));
    }

    [Fact]
    public async Task Tool_calls_go_up_and_come_back_unchanged()
    {
        const string toolAnswer = """
            {"id":"chatcmpl-t","object":"chat.completion","created":1700000000,"model":"upstream-model","choices":[{"index":0,"message":{"role":"assistant","content":null,
             "tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":30,"completion_tokens":9,"total_tokens":39}}
            """;
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, toolAnswer);

        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather for a city", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        List<ChatMessage> messages =
        [
            new UserChatMessage("Weather in Oslo and Rome?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_prev", "get_weather", BinaryData.FromString("""{"city":"Rome"}"""))]),
            new ToolChatMessage("call_prev", "22C and sunny"),
        ];
        var result = await _gateway.ChatClient("test-model").CompleteChatAsync(messages, options);

        var call = Assert.Single(result.Value.ToolCalls);
        Assert.Equal("call_abc", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Oslo"}""", call.FunctionArguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, result.Value.FinishReason);

        var sent = Assert.Single(_upstream.Requests).Json;
        Assert.Equal("get_weather", sent.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
        var assistant = sent.GetProperty("messages")[1];
        Assert.Equal("call_prev", assistant.GetProperty("tool_calls")[0].GetProperty("id").GetString());
        var toolMessage = sent.GetProperty("messages")[2];
        Assert.Equal("tool", toolMessage.GetProperty("role").GetString());
        Assert.Equal("call_prev", toolMessage.GetProperty("tool_call_id").GetString());
    }

    [Fact]
    public async Task Streamed_tool_call_fragments_are_reassembled_by_the_sdk()
    {
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"lookup","arguments":""}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"gateway\"}"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""");
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.UsageChunk(12, 8));
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };

        var arguments = new StringBuilder();
        string? name = null, id = null;
        ChatFinishReason? finish = null;
        await foreach (var update in _gateway.ChatClient("test-model").CompleteChatStreamingAsync([new UserChatMessage("look it up")]))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                name ??= part.FunctionName;
                id ??= part.ToolCallId;
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
        }
        Assert.Equal("lookup", name);
        Assert.Equal("call_1", id);
        Assert.Equal("""{"q":"gateway"}""", arguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
    }

    [Fact]
    public async Task Streaming_asks_the_upstream_for_usage_but_passes_the_usage_chunk_only_when_asked()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteStreamAsync(http, ["Hel", "lo ", "world"], prompt: 9, completion: 3);

        // The SDK asks for usage itself (stream_options.include_usage = true).
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (var update in _gateway.ChatClient("test-model").CompleteChatStreamingAsync([new UserChatMessage("hi")]))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            usage ??= update.Usage;
        }
        Assert.Equal("Hello world", text.ToString());
        Assert.NotNull(usage);
        Assert.Equal(9, usage.InputTokenCount);
        Assert.Equal(3, usage.OutputTokenCount);

        // A raw client that did not ask gets no usage chunk, yet the upstream was asked for it.
        var events = await RawStreamAsync("""{"model":"test-model","stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("[DONE]", events[^1]);
        Assert.DoesNotContain(events, e => e.Contains("\"prompt_tokens\"", StringComparison.Ordinal));
        foreach (var sent in _upstream.Requests)
        {
            Assert.True(sent.Json.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
        }
    }

    [Fact]
    public async Task The_first_chunk_reaches_the_client_before_the_upstream_sends_the_last()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "first"));
            // The rest waits until the client has seen "first": a buffering gateway would deadlock here.
            await release.Task.WaitAsync(TimeSpan.FromSeconds(10), http.RequestAborted);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: " last"));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };

        var seen = new List<string>();
        await foreach (var update in _gateway.ChatClient("test-model").CompleteChatStreamingAsync([new UserChatMessage("go")]))
        {
            foreach (var part in update.ContentUpdate)
            {
                if (part.Text.Length == 0) continue; // the role chunk's empty content
                seen.Add(part.Text);
                if (part.Text == "first") release.TrySetResult();
            }
        }
        Assert.Equal(["first", " last"], seen);
    }

    /// <summary>
    /// Events that arrive together go out together, but never wait for one that has not arrived: the last chunk and the
    /// usage chunk come in one write, and the usage chunk (which this client did not ask for) is dropped. The chunk must
    /// still reach the client before the upstream sends [DONE].
    /// </summary>
    [Fact]
    public async Task A_chunk_that_arrived_with_a_dropped_usage_chunk_is_flushed_before_the_upstream_ends()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(http.Response, $"data: {OpenAiWire.Chunk(content: "last", finish: "stop")}\n\ndata: {OpenAiWire.UsageChunk(3, 1)}\n\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
            await release.Task.WaitAsync(TimeSpan.FromSeconds(10), http.RequestAborted);
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };

        // A raw client that did not ask for usage (the OpenAI SDK asks for it), reading as the bytes come.
        using var client = _gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"test-model","stream":true,"messages":[{"role":"user","content":"go"}]}""", Encoding.UTF8, "application/json"),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var lines = new List<string>();
        while (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
        {
            lines.Add(line);
            if (line.Contains("\"last\"", StringComparison.Ordinal)) release.TrySetResult();
        }
        Assert.True(release.Task.IsCompleted);
        Assert.Equal("data: [DONE]", lines.Last(l => l.Length > 0));
        Assert.DoesNotContain(lines, l => l.Contains("\"prompt_tokens\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_cancels_the_upstream_request()
    {
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            for (var i = 0; i < 600; i++)
            {
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: $"token{i} "));
                await Task.Delay(50, http.RequestAborted);
            }
        };

        using var client = _gateway.CreateClient();
        using var cts = new CancellationTokenSource();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"test-model","stream":true,"messages":[{"role":"user","content":"long"}]}""", Encoding.UTF8, "application/json"),
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        var stream = await response.Content.ReadAsStreamAsync(cts.Token);
        var buffer = new byte[256];
        Assert.True(await stream.ReadAsync(buffer, cts.Token) > 0);
        cts.Cancel();
        response.Dispose();

        await _upstream.RequestAborted.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private async Task<List<string>> RawStreamAsync(string body)
    {
        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        return text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e[6..] : e).ToList();
    }
}
