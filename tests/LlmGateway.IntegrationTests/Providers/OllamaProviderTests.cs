using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Providers;
using LlmGateway.Providers.Ollama;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Providers;

/// <summary>
/// An `ollama` provider against a fake Ollama on loopback speaking /api/chat as Ollama's api.md
/// shows it: NDJSON streaming (one JSON object per line), the final object with done, done_reason
/// and the eval counts; driven by the OpenAI .NET SDK.
/// </summary>
public sealed class OllamaProviderTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _gateway = new GatewayFactory(Settings(_upstream.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    // MaxRetries 0: these tests count upstream calls to see how each error is classified.
    private static Dictionary<string, string?> Settings(string baseUrl) => new()
    {
        ["Gateway:Resilience:MaxRetries"] = "0",
        ["Gateway:Providers:local:Type"] = "ollama",
        ["Gateway:Providers:local:BaseUrl"] = baseUrl,
        ["Gateway:Providers:backup:Type"] = "mock",
        ["Gateway:Providers:backup:Local"] = "false",
        ["Gateway:Models:llama-test:Provider"] = "local",
        ["Gateway:Models:llama-test:UpstreamModel"] = "llama3.2",
        ["Gateway:Models:llama-fallback:Provider"] = "local",
        ["Gateway:Models:llama-fallback:UpstreamModel"] = "llama3.2",
        ["Gateway:Models:llama-fallback:Fallbacks:0"] = "backup-model",
        ["Gateway:Models:backup-model:Provider"] = "backup",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    [Fact]
    public async Task A_text_answer_is_translated_both_ways_with_no_key_needed()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"Hello! How are you today?"}""", "stop", prompt: 26, eval: 298));

        var result = await _gateway.ChatClient("llama-test").CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("why is the sky blue?")],
            new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 64, Seed = 101, StopSequences = { "\n\n" } });

        var completion = result.Value;
        Assert.Equal("Hello! How are you today?", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal("llama3.2", completion.Model);
        Assert.Equal(26, completion.Usage.InputTokenCount);
        Assert.Equal(298, completion.Usage.OutputTokenCount);

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/api/chat", sent.Path);
        Assert.Null(sent.Header("authorization"));
        var body = sent.Json;
        Assert.Equal("llama3.2", body.GetProperty("model").GetString());
        Assert.False(body.GetProperty("stream").GetBoolean()); // Ollama streams unless told not to
        Assert.Equal("""[{"role":"system","content":"Be brief."},{"role":"user","content":"why is the sky blue?"}]""", body.GetProperty("messages").GetRawText());
        Assert.Equal("""{"temperature":0,"num_predict":64,"stop":["\n\n"],"seed":101}""", body.GetProperty("options").GetRawText());
    }

    [Fact]
    public async Task Streamed_ndjson_arrives_as_openai_chunks_with_usage_and_the_finish_reason()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("The"));
            await Wire.Line(http, Wire.Delta(" sky"));
            await Wire.Line(http, Wire.Delta(" is blue."));
            await Wire.Line(http, Wire.Final("""{"role":"assistant","content":""}""", "stop", prompt: 26, eval: 5));
        };

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var ids = new HashSet<string>();
        await foreach (var update in _gateway.ChatClient("llama-test").CompleteChatStreamingAsync([new UserChatMessage("why is the sky blue?")]))
        {
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("The sky is blue.", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Single(ids);
        Assert.NotNull(usage);
        Assert.Equal(26, usage.InputTokenCount);
        Assert.Equal(5, usage.OutputTokenCount);
        Assert.True(Assert.Single(_upstream.Requests).Json.GetProperty("stream").GetBoolean());
    }

    [Fact]
    public async Task Two_streamed_tool_calls_get_their_own_indexes_and_ids()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Chunk("""{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris","unit":"c"}}}]}"""));
            await Wire.Line(http, Wire.Chunk("""{"role":"assistant","content":"","tool_calls":[{"id":"call_own_id","function":{"index":1,"name":"get_time","arguments":{"tz":"Asia/Tokyo"}}}]}"""));
            await Wire.Line(http, Wire.Final("""{"role":"assistant","content":""}""", "stop", prompt: 120, eval: 33));
        };

        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Args)>();
        ChatFinishReason? finish = null;
        var options = new ChatCompletionOptions { Tools = { Wire.WeatherTool } };
        await foreach (var update in _gateway.ChatClient("llama-test").CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris and time in Tokyo?")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                if (!calls.TryGetValue(call.Index, out var c)) calls[call.Index] = c = (null, null, new StringBuilder());
                calls[call.Index] = (c.Id ?? call.ToolCallId, c.Name ?? call.FunctionName, c.Args.Append(call.FunctionArgumentsUpdate?.ToString()));
            }
            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish); // Ollama says "stop"; OpenAI says tool_calls
        Assert.Equal([0, 1], calls.Keys);
        Assert.Equal("get_weather", calls[0].Name);
        Assert.StartsWith("call_", calls[0].Id);
        Assert.Equal("""{"city":"Paris","unit":"c"}""", calls[0].Args.ToString());
        Assert.Equal(("call_own_id", "get_time"), (calls[1].Id, calls[1].Name));
        Assert.Equal("""{"tz":"Asia/Tokyo"}""", calls[1].Args.ToString());
        // Ollama takes OpenAI's tool format as it is.
        Assert.Equal("get_weather", Assert.Single(_upstream.Requests).Json.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
    }

    [Fact]
    public async Task A_tool_result_round_trip_sends_arguments_as_objects_and_the_tool_name()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"18°C in Paris."}""", "stop", prompt: 90, eval: 7));

        ChatMessage[] messages =
        [
            new UserChatMessage("Weather in Paris?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("""{"city":"Paris"}"""))]),
            new ToolChatMessage("call_1", "18°C"),
        ];
        var result = await _gateway.ChatClient("llama-test").CompleteChatAsync(messages, new ChatCompletionOptions { Tools = { Wire.WeatherTool } });

        Assert.Equal("18°C in Paris.", result.Value.Content[0].Text);
        var sent = Assert.Single(_upstream.Requests).Json.GetProperty("messages");
        Assert.Equal("""{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}""", sent[1].GetRawText());
        Assert.Equal("""{"role":"tool","content":"18°C","tool_name":"get_weather"}""", sent[2].GetRawText());
    }

    [Fact]
    public async Task A_non_streamed_tool_call_answer_has_openai_tool_calls()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final(
            """{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris, FR"}}}]}""", "stop", prompt: 122, eval: 33));

        var result = await _gateway.ChatClient("llama-test").CompleteChatAsync([new UserChatMessage("Weather?")], new ChatCompletionOptions { Tools = { Wire.WeatherTool } });

        Assert.Equal(ChatFinishReason.ToolCalls, result.Value.FinishReason);
        var call = Assert.Single(result.Value.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Paris, FR"}""", call.FunctionArguments.ToString());
    }

    [Fact]
    public async Task Images_and_json_mode_use_ollamas_fields()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"{\"animal\":\"pig\"}"}""", "stop", prompt: 600, eval: 8));

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""
            {"model":"llama-test","response_format":{"type":"json_object"},"messages":[{"role":"user","content":[
              {"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}
            """));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = Assert.Single(_upstream.Requests).Json;
        Assert.Equal("""{"role":"user","content":"What is in this image?","images":["iVBORw0KGgo="]}""", body.GetProperty("messages")[0].GetRawText());
        Assert.Equal("json", body.GetProperty("format").GetString());
    }

    [Theory]
    [InlineData("stop", "stop")]
    [InlineData("length", "length")]
    public async Task Done_reasons_map_to_openai_finish_reasons(string doneReason, string finishReason)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"x"}""", doneReason, prompt: 3, eval: 1));

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"llama-test","messages":[{"role":"user","content":"x"}]}"""));

        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(finishReason, body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData(400, "invalid options: num_ctx must be positive", 400, "invalid_request_error", false)]
    // The model is not pulled on this server: another provider may have it.
    [InlineData(404, "model \"llama3.2\" not found, try pulling it first", 502, "api_error", true)]
    [InlineData(500, "llama runner process has terminated: signal: killed", 502, "api_error", true)]
    [InlineData(503, "server busy, please try again.  maximum pending requests exceeded", 502, "api_error", true)]
    public async Task Ollama_errors_become_openai_errors_and_decide_the_fallback(int upstreamStatus, string message, int status, string type, bool fallsBack)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, "{\"error\":" + JsonSerializer.Serialize(message) + "}", upstreamStatus);

        using var client = _gateway.CreateClient();
        using var direct = await client.PostAsync("/v1/chat/completions", Json("""{"model":"llama-test","messages":[{"role":"user","content":"x"}]}"""));
        using var withFallback = await client.PostAsync("/v1/chat/completions", Json("""{"model":"llama-fallback","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(status, (int)direct.StatusCode);
        var error = JsonDocument.Parse(await direct.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.Equal(fallsBack ? HttpStatusCode.OK : HttpStatusCode.BadRequest, withFallback.StatusCode);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task An_error_line_mid_stream_ends_the_stream_with_one_openai_error_event_and_no_done()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("Partial"));
            await Wire.Line(http, """{"error":"an error was encountered while running the model: unexpected EOF"}""");
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"llama-test","stream":true,"messages":[{"role":"user","content":"x"}]}""")).Events.Select(e => "data: " + e).ToArray();

        Assert.DoesNotContain("data: [DONE]", events);
        Assert.Contains("Partial", events[1]);
        var error = JsonDocument.Parse(events[^1]["data: ".Length..]).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Contains("unexpected EOF", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_stream_cut_before_done_ends_with_an_error_event()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("Partial"));
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"llama-test","stream":true,"messages":[{"role":"user","content":"x"}]}""")).Events.Select(e => "data: " + e).ToArray();

        Assert.DoesNotContain("data: [DONE]", events);
        Assert.Contains("ended before the answer was complete", events[^1]);
    }

    [Fact]
    public async Task A_client_that_leaves_mid_stream_aborts_the_upstream_request()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("First"));
            await Task.Delay(Timeout.InfiniteTimeSpan, http.RequestAborted); // a model still generating
        };

        using var client = _gateway.CreateClient();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json("""{"model":"llama-test","stream":true,"messages":[{"role":"user","content":"x"}]}""") })
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null && !line.Contains("First", StringComparison.Ordinal)) { }
            Assert.NotNull(line);
        }

        // Bounded so a regression fails instead of hanging; the abort itself is immediate.
        await _upstream.RequestAborted.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Ollama_counts_as_local_for_local_only_routing()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"local answer"}""", "stop", prompt: 3, eval: 2));

        using var client = _gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json("""{"model":"llama-test","messages":[{"role":"user","content":"x"}]}""") };
        request.Headers.Add("X-Local-Only", "true");
        using var local = await client.SendAsync(request);
        using var remoteRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json("""{"model":"backup-model","messages":[{"role":"user","content":"x"}]}""") };
        remoteRequest.Headers.Add("X-Local-Only", "true");
        using var remote = await client.SendAsync(remoteRequest);

        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        // Local-only leaves no candidate: the router refuses it as a policy matter (403 model_not_allowed).
        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
    }

    [Fact]
    public async Task The_tags_endpoint_lists_the_pulled_models_for_health_probes()
    {
        _upstream.Handler = (http, received) => received.Path == "/api/tags"
            ? Wire.Json(http, """{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2024-09-12T21:17:29Z","size":2019393189,"digest":"a80c4f17acd5","details":{"format":"gguf","family":"llama","parameter_size":"3.2B","quantization_level":"Q4_K_M"}},{"name":"qwen2.5-coder:7b","model":"qwen2.5-coder:7b","size":4683087332,"digest":"2b0496514337"}]}""")
            : Wire.Json(http, "{\"error\":\"unexpected\"}", 500);

        var provider = (OllamaProvider)_gateway.Services.GetRequiredService<ProviderRegistry>().Get("local");
        var list = await provider.ListModelsAsync(CancellationToken.None);

        Assert.True(list.IsHealthy);
        Assert.Equal(["llama3.2:latest", "qwen2.5-coder:7b"], list.Models);
        Assert.True(list.Has("llama3.2"));
        Assert.False(list.Has("mistral"));
        Assert.Equal("GET", Assert.Single(_upstream.Requests).Method);

        _upstream.Handler = (http, _) => Wire.Json(http, "{\"error\":\"boom\"}", 500);
        var down = await provider.ListModelsAsync(CancellationToken.None);
        Assert.False(down.IsHealthy);
        Assert.Equal(FailureKind.Retryable, down.Failure!.Kind);
    }

    private const string CitySchema = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""";

    [Fact]
    public async Task A_json_schema_goes_to_ollama_as_format_and_the_answer_parses()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Final("""{"role":"assistant","content":"{\"city\":\"Paris\"}"}""", "stop", prompt: 20, eval: 6));

        var options = new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("city", BinaryData.FromString(CitySchema), jsonSchemaIsStrict: true) };
        var result = await _gateway.ChatClient("llama-test").CompleteChatAsync([new UserChatMessage("Capital of France?")], options);

        Assert.Equal("Paris", JsonDocument.Parse(result.Value.Content[0].Text).RootElement.GetProperty("city").GetString());
        Assert.Equal(CitySchema, Assert.Single(_upstream.Requests).Json.GetProperty("format").GetRawText());
    }

    [Fact]
    public async Task A_streamed_json_schema_answer_goes_to_ollama_as_format_too()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("{\"city\":"));
            await Wire.Line(http, Wire.Delta("\"Paris\"}"));
            await Wire.Line(http, Wire.Final("""{"role":"assistant","content":""}""", "stop", prompt: 20, eval: 6));
        };

        var options = new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("city", BinaryData.FromString(CitySchema), jsonSchemaIsStrict: true) };
        var text = new StringBuilder();
        await foreach (var update in _gateway.ChatClient("llama-test").CompleteChatStreamingAsync([new UserChatMessage("Capital of France?")], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
        }

        Assert.Equal("Paris", JsonDocument.Parse(text.ToString()).RootElement.GetProperty("city").GetString());
        var sent = Assert.Single(_upstream.Requests).Json;
        Assert.Equal(CitySchema, sent.GetProperty("format").GetRawText());
        Assert.True(sent.GetProperty("stream").GetBoolean());
    }

    [Fact]
    public async Task Two_choices_are_two_ollama_calls_merged_with_the_usage_summed()
    {
        var calls = 0;
        _upstream.Handler = (http, _) =>
        {
            var i = Interlocked.Increment(ref calls);
            return Wire.Json(http, Wire.Final("{\"role\":\"assistant\",\"content\":\"Answer " + i + "\"}", "stop", prompt: 12, eval: 4));
        };

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"llama-test","n":2,"messages":[{"role":"user","content":"Two ideas"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choices = body.RootElement.GetProperty("choices");
        Assert.Equal([0, 1], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(["Answer 1", "Answer 2"], choices.EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()).Order());
        Assert.Equal(24, body.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(8, body.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, _upstream.Requests.Count);
    }

    [Fact]
    public async Task Two_streamed_choices_from_ollama_carry_both_indexes_and_end_once()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartNdjson(http);
            await Wire.Line(http, Wire.Delta("Idea"));
            await Wire.Line(http, Wire.Final("""{"role":"assistant","content":""}""", "stop", prompt: 12, eval: 4));
        };

        using var client = _gateway.CreateClient();
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json("""{"model":"llama-test","n":2,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Two ideas"}]}"""),
        }, HttpCompletionOption.ResponseHeadersRead);
        var events = (await SseClient.ReadAllAsync(response)).Events;

        Assert.Equal("[DONE]", events[^1]);
        Assert.Single(events, e => e == "[DONE]");
        var chunks = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal([0, 1], chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("index").GetInt32()).Distinct().Order());
        Assert.Equal(2, chunks.Count(c => c.GetProperty("choices").EnumerateArray().Any(ch => ch.GetProperty("finish_reason").ValueKind == JsonValueKind.String)));
        var usage = Assert.Single(chunks, c => c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
        Assert.Equal(24, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(2, _upstream.Requests.Count);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Ollama's /api/chat wire format (docs/api.md).</summary>
    private static class Wire
    {
        public static readonly ChatTool WeatherTool = ChatTool.CreateFunctionTool("get_weather", "Current weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));

        public static string Chunk(string message) =>
            "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":" + message + ",\"done\":false}";

        public static string Delta(string content) => Chunk("{\"role\":\"assistant\",\"content\":" + JsonSerializer.Serialize(content) + "}");

        public static string Final(string message, string doneReason, int prompt, int eval) =>
            "{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":" + message + ",\"done_reason\":\"" + doneReason + "\",\"done\":true," +
            "\"total_duration\":4883583458,\"load_duration\":1334875,\"prompt_eval_count\":" + prompt + ",\"prompt_eval_duration\":342546000,\"eval_count\":" + eval + ",\"eval_duration\":4535599000}";

        public static async Task Json(HttpContext http, string json, int status = 200)
        {
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json; charset=utf-8";
            await http.Response.WriteAsync(json);
        }

        public static void StartNdjson(HttpContext http)
        {
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/x-ndjson";
        }

        /// <summary>One NDJSON object on its own line, flushed.</summary>
        public static async Task Line(HttpContext http, string json)
        {
            await http.Response.WriteAsync(json + "\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
    }
}
