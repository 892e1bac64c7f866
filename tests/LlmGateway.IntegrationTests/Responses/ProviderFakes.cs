using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.Responses;

/// <summary>What the fake providers answer: text, a tool call, or a stream that breaks after its first words.</summary>
public enum Scenario
{
    Text,
    ToolCall,
    BreakMidStream,
}

/// <summary>
/// One Kestrel host on loopback speaking every provider type's wire format, told apart by path:
/// OpenAI's <c>/v1/chat/completions</c>, Anthropic's <c>/v1/messages</c>, Gemini's
/// <c>:generateContent</c>/<c>:streamGenerateContent</c>, Ollama's <c>/api/chat</c>. Each answers
/// "Hello from {type}" (or a get_weather call for Paris) with the wire's own usage fields, so a test
/// sees the gateway translate each one into the Responses API.
/// </summary>
public static class ProviderFakes
{
    public static readonly string[] Types = ["openai", "anthropic", "gemini", "ollama"];

    /// <summary>Tokens every fake reports: 12 in, 5 out.</summary>
    public const int Input = 12;
    public const int Output = 5;

    /// <summary>A provider of each type on <paramref name="baseUrl"/>, and a model named after each type ("openai-model", ...).</summary>
    public static Dictionary<string, string?> Settings(string baseUrl)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:Resilience:MaxRetries"] = "0",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        foreach (var type in Types)
        {
            settings[$"Gateway:Providers:{type}:Type"] = type;
            settings[$"Gateway:Providers:{type}:BaseUrl"] = type == "openai" ? baseUrl + "/v1" : baseUrl;
            settings[$"Gateway:Models:{type}-model:Provider"] = type;
            settings[$"Gateway:Models:{type}-model:UpstreamModel"] = "upstream-" + type;
            settings[$"Gateway:Models:{type}-model:CostPer1kInput"] = "0.001";
            settings[$"Gateway:Models:{type}-model:CostPer1kOutput"] = "0.002";
        }
        foreach (var type in new[] { "openai", "anthropic", "gemini" })
        {
            settings[$"Gateway:Providers:{type}:ApiKeyEnv"] = KeyEnv;
        }
        Environment.SetEnvironmentVariable(KeyEnv, "sk-responses-tests-0123456789");
        return settings;
    }

    /// <summary>The get_weather result clients send back.</summary>
    public const string ToolResult = "18C and sunny";

    private const string KeyEnv = "RESPONSES_TESTS_PROVIDER_KEY";

    /// <summary>
    /// The handler. For <see cref="Scenario.BreakMidStream"/> the connection is cut only once
    /// <paramref name="cut"/> completes (the test saw the first words), since Kestrel drops bytes still
    /// queued for the socket when a connection is aborted.
    /// </summary>
    public static Func<HttpContext, ReceivedRequest, Task> Handler(Func<Scenario> scenario, Func<Task>? cut = null) => (http, request) =>
    {
        var path = request.Path;
        var body = request.Json;
        var stream = body.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
        var now = scenario();
        // A request that brings the tool's result gets the answer that follows it.
        if (now == Scenario.ToolCall && System.Text.Encoding.UTF8.GetString(request.Body).Contains(ToolResult, StringComparison.Ordinal)) now = Scenario.Text;
        if (path.EndsWith("/chat/completions", StringComparison.Ordinal)) return OpenAi(http, stream, now, cut);
        if (path.EndsWith("/messages", StringComparison.Ordinal)) return Anthropic(http, stream, now, cut);
        if (path.Contains(":streamGenerateContent", StringComparison.Ordinal)) return Gemini(http, stream: true, now, cut);
        if (path.Contains(":generateContent", StringComparison.Ordinal)) return Gemini(http, stream: false, now, cut);
        if (path == "/api/chat") return Ollama(http, stream, now, cut);
        http.Response.StatusCode = 404;
        return Task.CompletedTask;
    };

    private static async Task BreakAsync(HttpContext http, Func<Task>? cut)
    {
        if (cut is not null) await cut().WaitAsync(TimeSpan.FromSeconds(15), http.RequestAborted);
        http.Abort();
    }

    private static async Task OpenAi(HttpContext http, bool stream, Scenario scenario, Func<Task>? cut)
    {
        const string call = """{"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}""";
        if (!stream)
        {
            await OpenAiWire.WriteJsonAsync(http, scenario == Scenario.ToolCall
                ? """{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"upstream-openai","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[""" + call + """]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"""
                : OpenAiWire.Completion("Hello from openai", Input, Output));
            return;
        }
        OpenAiWire.StartSse(http);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
        if (scenario == Scenario.ToolCall)
        {
            await OpenAiWire.WriteEventAsync(http, """{"id":"c","object":"chat.completion.chunk","created":1,"model":"upstream-openai","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_w1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c","object":"chat.completion.chunk","created":1,"model":"upstream-openai","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c","object":"chat.completion.chunk","created":1,"model":"upstream-openai","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "tool_calls"));
        }
        else
        {
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "Hello from "));
            if (scenario == Scenario.BreakMidStream)
            {
                await BreakAsync(http, cut);
                return;
            }
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "openai"));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
        }
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.UsageChunk(Input, Output));
        await OpenAiWire.WriteEventAsync(http, "[DONE]");
    }

    private static async Task Anthropic(HttpContext http, bool stream, Scenario scenario, Func<Task>? cut)
    {
        const string usage = "\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":5}";
        if (!stream)
        {
            var content = scenario == Scenario.ToolCall
                ? """[{"type":"tool_use","id":"toolu_w1","name":"get_weather","input":{"city":"Paris"}}]"""
                : """[{"type":"text","text":"Hello from anthropic"}]""";
            await Json(http, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"upstream-anthropic\",\"content\":" + content +
                ",\"stop_reason\":\"" + (scenario == Scenario.ToolCall ? "tool_use" : "end_turn") + "\",\"stop_sequence\":null," + usage + "}");
            return;
        }
        StartSse(http);
        await Event(http, "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"upstream-anthropic\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}");
        if (scenario == Scenario.ToolCall)
        {
            await Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_w1","name":"get_weather","input":{}}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}""");
        }
        else
        {
            await Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from "}}""");
            if (scenario == Scenario.BreakMidStream)
            {
                await BreakAsync(http, cut);
                return;
            }
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"anthropic"}}""");
        }
        await Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
        await Event(http, "message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" + (scenario == Scenario.ToolCall ? "tool_use" : "end_turn") + "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}");
        await Event(http, "message_stop", """{"type":"message_stop"}""");
    }

    private static async Task Gemini(HttpContext http, bool stream, Scenario scenario, Func<Task>? cut)
    {
        static string Response(string parts, string? finish, int? candidates) =>
            "{\"candidates\":[{\"content\":{\"parts\":" + parts + ",\"role\":\"model\"}" + (finish is null ? "" : ",\"finishReason\":\"" + finish + "\"") + ",\"index\":0}]," +
            "\"usageMetadata\":{\"promptTokenCount\":12" + (candidates is { } c ? ",\"candidatesTokenCount\":" + c : "") + ",\"totalTokenCount\":" + (12 + (candidates ?? 0)) + "}," +
            "\"modelVersion\":\"upstream-gemini\",\"responseId\":\"r1\"}";
        const string callPart = """[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]""";
        if (!stream)
        {
            await Json(http, Response(scenario == Scenario.ToolCall ? callPart : """[{"text":"Hello from gemini"}]""", "STOP", Output));
            return;
        }
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        if (scenario == Scenario.ToolCall)
        {
            await Data(http, Response(callPart, "STOP", Output));
            return;
        }
        await Data(http, Response("""[{"text":"Hello from "}]""", null, null));
        if (scenario == Scenario.BreakMidStream)
        {
            await BreakAsync(http, cut);
            return;
        }
        await Data(http, Response("""[{"text":"gemini"}]""", "STOP", Output));
    }

    private static async Task Ollama(HttpContext http, bool stream, Scenario scenario, Func<Task>? cut)
    {
        static string Final(string message) =>
            "{\"model\":\"upstream-ollama\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":" + message + ",\"done_reason\":\"stop\",\"done\":true," +
            "\"total_duration\":1,\"load_duration\":1,\"prompt_eval_count\":12,\"prompt_eval_duration\":1,\"eval_count\":5,\"eval_duration\":1}";
        static string Delta(string content) =>
            "{\"model\":\"upstream-ollama\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":{\"role\":\"assistant\",\"content\":" + JsonSerializer.Serialize(content) + "},\"done\":false}";
        const string callMessage = """{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}""";
        if (!stream)
        {
            await Json(http, Final(scenario == Scenario.ToolCall ? callMessage : """{"role":"assistant","content":"Hello from ollama"}"""));
            return;
        }
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/x-ndjson";
        if (scenario == Scenario.ToolCall)
        {
            await Line(http, "{\"model\":\"upstream-ollama\",\"created_at\":\"2023-08-04T08:52:19Z\",\"message\":" + callMessage + ",\"done\":false}");
            await Line(http, Final("""{"role":"assistant","content":""}"""));
            return;
        }
        await Line(http, Delta("Hello from "));
        if (scenario == Scenario.BreakMidStream)
        {
            await BreakAsync(http, cut);
            return;
        }
        await Line(http, Delta("ollama"));
        await Line(http, Final("""{"role":"assistant","content":""}"""));
    }

    private static async Task Json(HttpContext http, string json)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(json);
    }

    private static void StartSse(HttpContext http)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream; charset=utf-8";
    }

    private static async Task Event(HttpContext http, string name, string data)
    {
        await http.Response.WriteAsync($"event: {name}\ndata: {data}\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    private static async Task Data(HttpContext http, string data)
    {
        await http.Response.WriteAsync($"data: {data}\r\n\r\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    private static async Task Line(HttpContext http, string json)
    {
        await http.Response.WriteAsync(json + "\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }
}
