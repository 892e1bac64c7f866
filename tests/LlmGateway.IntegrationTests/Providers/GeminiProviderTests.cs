using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Providers;

/// <summary>
/// A `gemini` provider against a fake Gemini API on loopback speaking generateContent and
/// streamGenerateContent?alt=sse as Google's REST reference shows them (SSE events end in CRLF CRLF,
/// as Google's servers send them), driven by the OpenAI .NET SDK.
/// </summary>
public sealed class GeminiProviderTests : IAsyncLifetime
{
    private const string KeyEnv = "GEMINI_TESTS_KEY";
    private const string Key = "AIzaSyTestSecretKey0123456789abcdefghij";
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

    // MaxRetries 0: these tests count upstream calls to see how each error is classified.
    private static Dictionary<string, string?> Settings(string baseUrl) => new()
    {
        ["Gateway:Resilience:MaxRetries"] = "0",
        ["Gateway:Providers:google:Type"] = "gemini",
        ["Gateway:Providers:google:BaseUrl"] = baseUrl,
        ["Gateway:Providers:google:ApiKeyEnv"] = KeyEnv,
        ["Gateway:Providers:backup:Type"] = "mock",
        ["Gateway:Models:gemini-test:Provider"] = "google",
        ["Gateway:Models:gemini-test:UpstreamModel"] = "gemini-2.5-flash",
        ["Gateway:Models:gemini-test:CostPer1kInput"] = "0.0003",
        ["Gateway:Models:gemini-test:CostPer1kOutput"] = "0.0025",
        ["Gateway:Models:gemini-fallback:Provider"] = "google",
        ["Gateway:Models:gemini-fallback:UpstreamModel"] = "gemini-2.5-flash",
        ["Gateway:Models:gemini-fallback:Fallbacks:0"] = "backup-model",
        ["Gateway:Models:backup-model:Provider"] = "backup",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    [Fact]
    public async Task A_text_answer_is_translated_both_ways()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Response("""[{"text":"Bonjour!"}]""", "STOP", prompt: 9, candidates: 3, thoughts: 20));

        var result = await _gateway.ChatClient("gemini-test").CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Say hello in French."), new AssistantChatMessage("Sure."), new UserChatMessage("Go on.")],
            new ChatCompletionOptions { Temperature = 0.5f, TopP = 0.9f, MaxOutputTokenCount = 200, StopSequences = { "END" } });

        var completion = result.Value;
        Assert.Equal("Bonjour!", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("AdVRaMmDCYekqtsPrb_-iAw", completion.Id);
        Assert.Equal("gemini-2.5-flash", completion.Model);
        Assert.Equal(9, completion.Usage.InputTokenCount);
        Assert.Equal(23, completion.Usage.OutputTokenCount); // thinking tokens are output, as OpenAI counts reasoning

        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal("", sent.Query); // the key goes in the header, never in the URL
        Assert.Equal(Key, sent.Header("x-goog-api-key"));
        var body = sent.Json;
        Assert.Equal("""{"parts":[{"text":"Be brief."}]}""", body.GetProperty("systemInstruction").GetRawText());
        Assert.Equal(
            """[{"role":"user","parts":[{"text":"Say hello in French."}]},{"role":"model","parts":[{"text":"Sure."}]},{"role":"user","parts":[{"text":"Go on."}]}]""",
            body.GetProperty("contents").GetRawText());
        var config = body.GetProperty("generationConfig");
        Assert.Equal(0.5, config.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal(0.9, config.GetProperty("topP").GetDouble(), 3);
        Assert.Equal(200, config.GetProperty("maxOutputTokens").GetInt32());
        Assert.Equal("""["END"]""", config.GetProperty("stopSequences").GetRawText());
        Assert.False(body.TryGetProperty("model", out _));
    }

    [Fact]
    public async Task Streamed_text_arrives_as_openai_chunks_with_usage_and_the_finish_reason()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.Chunk("""[{"text":"Hello"}]""", null, prompt: 5, candidates: null));
            await Wire.Event(http, Wire.Chunk("""[{"text":" from Gemini"}]""", null, prompt: 5, candidates: null));
            await Wire.Event(http, Wire.Chunk("""[{"text":"!"}]""", "STOP", prompt: 5, candidates: 4));
        };

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var ids = new HashSet<string>();
        await foreach (var update in _gateway.ChatClient("gemini-test").CompleteChatStreamingAsync([new UserChatMessage("Hi")]))
        {
            ids.Add(update.CompletionId);
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("Hello from Gemini!", text.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal("AdVRaMmDCYekqtsPrb_-iAw", Assert.Single(ids));
        Assert.NotNull(usage);
        Assert.Equal(5, usage.InputTokenCount);
        Assert.Equal(4, usage.OutputTokenCount);
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:streamGenerateContent", sent.Path);
        Assert.Equal("?alt=sse", sent.Query);
    }

    [Fact]
    public async Task Two_streamed_function_calls_become_two_tool_calls_with_their_own_indexes_and_ids()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.Chunk("""[{"text":"Checking."}]""", null, prompt: 50, candidates: null));
            await Wire.Event(http, Wire.Chunk("""[{"functionCall":{"name":"get_weather","args":{"city":"Paris","unit":"c"}},"thoughtSignature":"CiQB0e2Kb+/sig=="}]""", null, prompt: 50, candidates: null));
            await Wire.Event(http, Wire.Chunk("""[{"functionCall":{"name":"get_time","args":{"tz":"Asia/Tokyo"}}}]""", "STOP", prompt: 50, candidates: 30));
        };

        var options = new ChatCompletionOptions { Tools = { Wire.WeatherTool, Wire.TimeTool } };
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Args)>();
        ChatFinishReason? finish = null;
        await foreach (var update in _gateway.ChatClient("gemini-test").CompleteChatStreamingAsync([new UserChatMessage("Weather in Paris and time in Tokyo?")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                if (!calls.TryGetValue(call.Index, out var c)) calls[call.Index] = c = (null, null, new StringBuilder());
                calls[call.Index] = (c.Id ?? call.ToolCallId, c.Name ?? call.FunctionName, c.Args.Append(call.FunctionArgumentsUpdate?.ToString()));
            }
            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal([0, 1], calls.Keys);
        Assert.Equal("get_weather", calls[0].Name);
        Assert.Equal("""{"city":"Paris","unit":"c"}""", calls[0].Args.ToString());
        Assert.Equal("get_time", calls[1].Name);
        Assert.Equal("""{"tz":"Asia/Tokyo"}""", calls[1].Args.ToString());
        Assert.StartsWith("call_", calls[0].Id);
        Assert.StartsWith("call_", calls[1].Id);
        Assert.NotEqual(calls[0].Id, calls[1].Id);

        var declarations = Assert.Single(_upstream.Requests).Json.GetProperty("tools")[0].GetProperty("functionDeclarations");
        Assert.Equal("get_weather", declarations[0].GetProperty("name").GetString());
        Assert.Equal("Current weather for a city", declarations[0].GetProperty("description").GetString());
        Assert.Equal("object", declarations[0].GetProperty("parametersJsonSchema").GetProperty("type").GetString());
        Assert.False(declarations[1].GetProperty("parametersJsonSchema").GetProperty("additionalProperties").GetBoolean());
    }

    [Fact]
    public async Task A_tool_result_round_trip_becomes_function_call_and_function_response_parts_with_the_thought_signature_returned()
    {
        // Turn 1: Gemini calls a function and signs it.
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Response(
            """[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"CiQB0e2Kb+/sig=="}]""", "STOP", prompt: 40, candidates: 10));
        var options = new ChatCompletionOptions { Tools = { Wire.WeatherTool, Wire.TimeTool }, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        var first = await _gateway.ChatClient("gemini-test").CompleteChatAsync([new UserChatMessage("Weather in Paris?")], options);
        Assert.Equal(ChatFinishReason.ToolCalls, first.Value.FinishReason);
        var call = Assert.Single(first.Value.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Matches("^[A-Za-z0-9_-]+$", call.Id); // safe as an id for any provider

        // Turn 2: the SDK sends the call back with its result.
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Response("""[{"text":"18°C and sunny."}]""", "STOP", prompt: 60, candidates: 6));
        var second = await _gateway.ChatClient("gemini-test").CompleteChatAsync(
            [new UserChatMessage("Weather in Paris?"), new AssistantChatMessage(first.Value), new ToolChatMessage(call.Id, """{"temp":18,"sky":"sunny"}""")], options);

        Assert.Equal("18°C and sunny.", second.Value.Content[0].Text);
        var body = _upstream.Requests.Last().Json;
        var contents = body.GetProperty("contents");
        Assert.Equal(3, contents.GetArrayLength());
        Assert.Equal("model", contents[1].GetProperty("role").GetString());
        Assert.Equal("""[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"CiQB0e2Kb+/sig=="}]""", contents[1].GetProperty("parts").GetRawText());
        Assert.Equal("user", contents[2].GetProperty("role").GetString());
        Assert.Equal("""[{"functionResponse":{"name":"get_weather","response":{"temp":18,"sky":"sunny"}}}]""", contents[2].GetProperty("parts").GetRawText());
        Assert.Equal("""{"functionCallingConfig":{"mode":"ANY"}}""", body.GetProperty("toolConfig").GetRawText());
    }

    [Fact]
    public async Task A_json_schema_response_format_becomes_response_mime_type_and_schema()
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Response("""[{"text":"{\"age\":22}"}]""", "STOP", prompt: 20, candidates: 5));

        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString("""{"type":"object","properties":{"age":{"type":"integer"}},"required":["age"]}""")),
        };
        var result = await _gateway.ChatClient("gemini-test").CompleteChatAsync([new UserChatMessage("Age?")], options);

        Assert.Equal("""{"age":22}""", result.Value.Content[0].Text);
        var config = Assert.Single(_upstream.Requests).Json.GetProperty("generationConfig");
        Assert.Equal("application/json", config.GetProperty("responseMimeType").GetString());
        Assert.Equal("integer", config.GetProperty("responseJsonSchema").GetProperty("properties").GetProperty("age").GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("STOP", "stop")]
    [InlineData("MAX_TOKENS", "length")]
    [InlineData("SAFETY", "content_filter")]
    [InlineData("RECITATION", "content_filter")]
    [InlineData("OTHER", "stop")]
    public async Task Finish_reasons_map_to_openai_finish_reasons(string geminiReason, string finishReason)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Response("""[{"text":"x"}]""", geminiReason, prompt: 3, candidates: 1));

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"gemini-test","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(finishReason, body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task A_blocked_prompt_is_an_empty_answer_with_content_filter()
    {
        _upstream.Handler = (http, _) => Wire.Json(http,
            """{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"blocked1"}""");

        var result = await _gateway.ChatClient("gemini-test").CompleteChatAsync([new UserChatMessage("x")]);

        Assert.Equal(ChatFinishReason.ContentFilter, result.Value.FinishReason);
        Assert.Equal(8, result.Value.Usage.InputTokenCount);
    }

    [Theory]
    [InlineData(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature'", 400, "invalid_request_error", "invalid_argument")]
    [InlineData(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", 429, "rate_limit_error", "rate_limit_exceeded")]
    [InlineData(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", 502, "api_error", "upstream_error")]
    [InlineData(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", 502, "api_error", "upstream_error")]
    [InlineData(500, "INTERNAL", "An internal error has occurred.", 502, "api_error", "upstream_error")]
    public async Task Gemini_errors_become_openai_errors(int upstreamStatus, string grpcStatus, string message, int status, string type, string code)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error(upstreamStatus, grpcStatus, message), upstreamStatus);

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"gemini-test","messages":[{"role":"user","content":"x"}]}"""));

        Assert.Equal(status, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", null, true)]
    [InlineData(503, "UNAVAILABLE", "The model is overloaded.", null, true)]
    [InlineData(403, "PERMISSION_DENIED", "Permission denied.", null, true)]
    // A bad key comes as a 400: it is the key's fault, not the request's.
    [InlineData(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID", true)]
    [InlineData(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", null, true)]
    [InlineData(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", null, false)]
    public async Task Error_classification_decides_whether_the_fallback_is_tried(int upstreamStatus, string grpcStatus, string message, string? reason, bool fallsBack)
    {
        _upstream.Handler = (http, _) => Wire.Json(http, Wire.Error(upstreamStatus, grpcStatus, message, reason), upstreamStatus);

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"gemini-fallback","messages":[{"role":"user","content":"echo me"}]}"""));

        Assert.Equal(1, _upstream.Calls);
        Assert.Equal(fallsBack ? HttpStatusCode.OK : HttpStatusCode.BadRequest, response.StatusCode);
        if (fallsBack) Assert.Equal("backup", response.Headers.GetValues("x-gateway-provider").Single());
    }

    [Fact]
    public async Task An_error_object_mid_stream_ends_the_stream_with_one_openai_error_event_and_no_done()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.Chunk("""[{"text":"Partial"}]""", null, prompt: 5, candidates: null));
            await Wire.Event(http, """{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}""");
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"gemini-test","stream":true,"messages":[{"role":"user","content":"x"}]}""")).Events.Select(e => "data: " + e).ToArray();

        Assert.DoesNotContain("data: [DONE]", events);
        Assert.Contains("Partial", events[1]);
        var error = JsonDocument.Parse(events[^1]["data: ".Length..]).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Contains("overloaded", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_stream_that_ends_without_a_finish_reason_ends_with_an_error_event()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.Chunk("""[{"text":"Partial"}]""", null, prompt: 5, candidates: null));
        };

        var events = (await BrokenStream.PostAsync(Settings(_upstream.BaseUrl), """{"model":"gemini-test","stream":true,"messages":[{"role":"user","content":"x"}]}""")).Events.Select(e => "data: " + e).ToArray();

        Assert.DoesNotContain("data: [DONE]", events);
        Assert.Contains("ended before the answer was complete", events[^1]);
    }

    [Theory]
    [InlineData("\"stop\":\"\\ud800\",")]
    [InlineData("\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"description\":\"\\udfff\"}}}],")]
    [InlineData("\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":{\"title\":\"\\ud800\"}}},")]
    public async Task Text_that_is_not_unicode_anywhere_in_the_request_is_a_400_that_never_reaches_gemini(string field)
    {
        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("{" + field + "\"model\":\"gemini-test\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request_error", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task Two_choices_are_geminis_candidate_count_in_one_call()
    {
        _upstream.Handler = (http, _) => Wire.Json(http,
            "{\"candidates\":[" +
            "{\"content\":{\"parts\":[{\"text\":\"First idea\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}," +
            "{\"content\":{\"parts\":[{\"text\":\"Second idea\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\",\"index\":1}]," +
            "\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":9,\"totalTokenCount\":19},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r2\"}");

        using var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions", Json("""{"model":"gemini-test","n":2,"messages":[{"role":"user","content":"Two ideas"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choices = body.RootElement.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal(["First idea", "Second idea"], choices.Select(c => c.GetProperty("message").GetProperty("content").GetString()));
        Assert.Equal([0, 1], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(["stop", "length"], choices.Select(c => c.GetProperty("finish_reason").GetString()));
        Assert.Equal(9, body.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var sent = Assert.Single(_upstream.Requests).Json;
        Assert.Equal(2, sent.GetProperty("generationConfig").GetProperty("candidateCount").GetInt32());
    }

    [Fact]
    public async Task Two_streamed_choices_fan_out_into_two_gemini_streams_merged()
    {
        _upstream.Handler = async (http, _) =>
        {
            Wire.StartSse(http);
            await Wire.Event(http, Wire.Chunk("""[{"text":"Idea"}]""", null, prompt: 8, candidates: null));
            await Wire.Event(http, Wire.Chunk("""[{"text":"!"}]""", "STOP", prompt: 8, candidates: 3));
        };

        using var client = _gateway.CreateClient();
        using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json("""{"model":"gemini-test","n":2,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Two ideas"}]}"""),
        }, HttpCompletionOption.ResponseHeadersRead);
        var events = (await SseClient.ReadAllAsync(response)).Events;

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal([0, 1], chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("index").GetInt32()).Distinct().Order());
        var usage = Assert.Single(chunks, c => c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object).GetProperty("usage");
        Assert.Equal(16, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(6, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, _upstream.Requests.Count);
        Assert.All(_upstream.Requests, r => Assert.False(r.Json.TryGetProperty("generationConfig", out var g) && g.TryGetProperty("candidateCount", out _)));
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>Gemini's REST wire format (GenerateContentResponse, google.rpc.Status errors).</summary>
    private static class Wire
    {
        public static readonly ChatTool WeatherTool = ChatTool.CreateFunctionTool("get_weather", "Current weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}"""));

        public static readonly ChatTool TimeTool = ChatTool.CreateFunctionTool("get_time", "Current time in a time zone",
            BinaryData.FromString("""{"type":"object","properties":{"tz":{"type":"string"}},"required":["tz"],"additionalProperties":false}"""));

        public static string Response(string parts, string finishReason, int prompt, int candidates, int thoughts = 0) =>
            "{\"candidates\":[{\"content\":{\"parts\":" + parts + ",\"role\":\"model\"},\"finishReason\":\"" + finishReason + "\",\"index\":0}]," +
            "\"usageMetadata\":{\"promptTokenCount\":" + prompt + ",\"candidatesTokenCount\":" + candidates + ",\"totalTokenCount\":" + (prompt + candidates + thoughts) +
            (thoughts > 0 ? ",\"thoughtsTokenCount\":" + thoughts : "") + "}," +
            "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"AdVRaMmDCYekqtsPrb_-iAw\"}";

        /// <summary>One streamed GenerateContentResponse; early chunks count the prompt only.</summary>
        public static string Chunk(string parts, string? finishReason, int prompt, int? candidates) =>
            "{\"candidates\":[{\"content\":{\"parts\":" + parts + ",\"role\":\"model\"}" + (finishReason is null ? "" : ",\"finishReason\":\"" + finishReason + "\"") + ",\"index\":0}]," +
            "\"usageMetadata\":{\"promptTokenCount\":" + prompt + (candidates is { } c ? ",\"candidatesTokenCount\":" + c : "") + ",\"totalTokenCount\":" + (prompt + (candidates ?? 0)) + "}," +
            "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"AdVRaMmDCYekqtsPrb_-iAw\"}";

        public static string Error(int code, string status, string message, string? reason = null) =>
            "{\"error\":{\"code\":" + code + ",\"message\":" + JsonSerializer.Serialize(message) + ",\"status\":\"" + status + "\"" +
            (reason is null ? "" : ",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"" + reason + "\",\"domain\":\"googleapis.com\"}]") + "}}";

        public static async Task Json(HttpContext http, string json, int status = 200)
        {
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json; charset=UTF-8";
            await http.Response.WriteAsync(json);
        }

        public static void StartSse(HttpContext http)
        {
            http.Response.StatusCode = 200;
            http.Response.ContentType = "text/event-stream";
        }

        /// <summary>One event as Google frames it: a data line, then CRLF CRLF; flushed.</summary>
        public static async Task Event(HttpContext http, string data)
        {
            await http.Response.WriteAsync($"data: {data}\r\n\r\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }
    }
}
