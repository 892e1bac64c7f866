using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>What the fake provider answers: "Bonjour!", or "Checking." and a get_weather call for Paris.</summary>
public enum FakeAnswer
{
    Text,
    Tool,
}

/// <summary>
/// One fake provider per wire format the gateway speaks upstream (openai, anthropic, gemini, ollama),
/// each answering in its own format, streamed when the gateway asked for a stream. The model every
/// test asks for is <see cref="Model"/>; 25 prompt tokens and 4 output tokens in every answer's usage.
/// </summary>
public static class ProviderFakes
{
    public const string Model = "target-model";
    public const string UpstreamModel = "upstream-x";
    public const int PromptTokens = 25;
    public const int OutputTokens = 4;
    public const string KeyEnv = "MESSAGES_TESTS_UPSTREAM_KEY";

    public static readonly string[] Types = ["openai", "anthropic", "gemini", "ollama"];

    public static Dictionary<string, string?> Settings(string type, string baseUrl)
    {
        Environment.SetEnvironmentVariable(KeyEnv, "sk-upstream-test-key");
        return new Dictionary<string, string?>
        {
            ["Gateway:Resilience:MaxRetries"] = "0",
            ["Gateway:Providers:target:Type"] = type,
            ["Gateway:Providers:target:BaseUrl"] = type == "openai" ? baseUrl + "/v1" : baseUrl,
            ["Gateway:Providers:target:ApiKeyEnv"] = type == "ollama" ? null : KeyEnv,
            ["Gateway:Models:target-model:Provider"] = "target",
            ["Gateway:Models:target-model:UpstreamModel"] = UpstreamModel,
            ["Gateway:Models:target-model:CostPer1kInput"] = "0.001",
            ["Gateway:Models:target-model:CostPer1kOutput"] = "0.002",
            ["Gateway:Models:target-model:Capabilities:0"] = "tools",
            ["Gateway:Models:target-model:Capabilities:1"] = "vision",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
    }

    /// <summary>Whether the gateway asked this provider for a stream.</summary>
    public static bool IsStream(string type, ReceivedRequest request) => type switch
    {
        "gemini" => request.Path.Contains("streamGenerateContent", StringComparison.Ordinal),
        _ => request.Json.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True,
    };

    public static Func<HttpContext, ReceivedRequest, Task> Handler(string type, FakeAnswer answer) => type switch
    {
        "openai" => (http, r) => OpenAi(http, IsStream(type, r), answer),
        "anthropic" => (http, r) => Anthropic(http, IsStream(type, r), answer),
        "gemini" => (http, r) => Gemini(http, IsStream(type, r), answer),
        "ollama" => (http, r) => Ollama(http, IsStream(type, r), answer),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private const string CallArguments = """{"city":"Paris"}""";

    private static async Task OpenAi(HttpContext http, bool stream, FakeAnswer answer)
    {
        if (!stream)
        {
            var json = answer == FakeAnswer.Text
                ? OpenAiWire.Completion("Bonjour!", PromptTokens, OutputTokens)
                : """{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,"model":"upstream-x","choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":25,"completion_tokens":4,"total_tokens":29}}""";
            await OpenAiWire.WriteJsonAsync(http, json);
            return;
        }
        OpenAiWire.StartSse(http);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
        if (answer == FakeAnswer.Text)
        {
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk("Bon"));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk("jour!"));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
        }
        else
        {
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk("Checking."));
            await OpenAiWire.WriteEventAsync(http, """{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"upstream-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"upstream-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"upstream-x","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "tool_calls"));
        }
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.UsageChunk(PromptTokens, OutputTokens));
        await OpenAiWire.WriteEventAsync(http, "[DONE]");
    }

    private static async Task Anthropic(HttpContext http, bool stream, FakeAnswer answer)
    {
        const string usage = """{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}""";
        if (!stream)
        {
            var content = answer == FakeAnswer.Text
                ? """[{"type":"text","text":"Bonjour!"}]"""
                : """[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]""";
            await Json(http, $$"""{"id":"msg_up1","type":"message","role":"assistant","model":"upstream-x","content":{{content}},"stop_reason":"{{(answer == FakeAnswer.Text ? "end_turn" : "tool_use")}}","stop_sequence":null,"usage":{{usage}}}""");
            return;
        }
        StartSse(http, "text/event-stream; charset=utf-8");
        await Event(http, "message_start", """{"type":"message_start","message":{"id":"msg_up1","type":"message","role":"assistant","content":[],"model":"upstream-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}""");
        await Event(http, "content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
        await Event(http, "ping", """{"type": "ping"}""");
        if (answer == FakeAnswer.Text)
        {
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bon"}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"jour!"}}""");
            await Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
        }
        else
        {
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}""");
            await Event(http, "content_block_stop", """{"type":"content_block_stop","index":0}""");
            await Event(http, "content_block_start", """{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}""");
            await Event(http, "content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}""");
            await Event(http, "content_block_stop", """{"type":"content_block_stop","index":1}""");
        }
        await Event(http, "message_delta", """{"type":"message_delta","delta":{"stop_reason":"STOP","stop_sequence":null},"usage":{"output_tokens":4}}""".Replace("STOP", answer == FakeAnswer.Text ? "end_turn" : "tool_use", StringComparison.Ordinal));
        await Event(http, "message_stop", """{"type":"message_stop"}""");
    }

    private static async Task Gemini(HttpContext http, bool stream, FakeAnswer answer)
    {
        static string Response(string parts, int? candidates) =>
            "{\"candidates\":[{\"content\":{\"parts\":" + parts + ",\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}]," +
            "\"usageMetadata\":{\"promptTokenCount\":25" + (candidates is { } c ? ",\"candidatesTokenCount\":" + c : "") + ",\"totalTokenCount\":" + (25 + (candidates ?? 0)) + "}," +
            "\"modelVersion\":\"upstream-x\",\"responseId\":\"AdVRaMmDCYekqtsPrb\"}";
        static string Partial(string parts) =>
            "{\"candidates\":[{\"content\":{\"parts\":" + parts + ",\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":25,\"totalTokenCount\":25},\"modelVersion\":\"upstream-x\",\"responseId\":\"AdVRaMmDCYekqtsPrb\"}";
        const string call = """{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}""";

        if (!stream)
        {
            await Json(http, answer == FakeAnswer.Text ? Response("""[{"text":"Bonjour!"}]""", 4) : Response($$"""[{"text":"Checking."},{{call}}]""", 4));
            return;
        }
        StartSse(http, "text/event-stream");
        if (answer == FakeAnswer.Text)
        {
            await Data(http, Partial("""[{"text":"Bon"}]"""), "\r\n\r\n");
            await Data(http, Response("""[{"text":"jour!"}]""", 4), "\r\n\r\n");
        }
        else
        {
            await Data(http, Partial("""[{"text":"Checking."}]"""), "\r\n\r\n");
            await Data(http, Response($"[{call}]", 4), "\r\n\r\n");
        }
    }

    private static async Task Ollama(HttpContext http, bool stream, FakeAnswer answer)
    {
        static string Final(string message) =>
            "{\"model\":\"upstream-x\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":" + message + ",\"done_reason\":\"stop\",\"done\":true," +
            "\"total_duration\":4883583458,\"load_duration\":1334875,\"prompt_eval_count\":25,\"prompt_eval_duration\":342546000,\"eval_count\":4,\"eval_duration\":4535599000}";
        static string Chunk(string message) => "{\"model\":\"upstream-x\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":" + message + ",\"done\":false}";
        const string callMessage = """{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}""";

        if (!stream)
        {
            await Json(http, answer == FakeAnswer.Text
                ? Final("""{"role":"assistant","content":"Bonjour!"}""")
                : Final("""{"role":"assistant","content":"Checking.","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}"""));
            return;
        }
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/x-ndjson";
        if (answer == FakeAnswer.Text)
        {
            await Line(http, Chunk("""{"role":"assistant","content":"Bon"}"""));
            await Line(http, Chunk("""{"role":"assistant","content":"jour!"}"""));
        }
        else
        {
            await Line(http, Chunk("""{"role":"assistant","content":"Checking."}"""));
            await Line(http, Chunk(callMessage));
        }
        await Line(http, Final("""{"role":"assistant","content":""}"""));
    }

    public static async Task Json(HttpContext http, string json, int status = 200)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(json);
    }

    private static void StartSse(HttpContext http, string contentType)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = contentType;
        http.Response.Headers.CacheControl = "no-cache";
    }

    private static async Task Event(HttpContext http, string name, string data)
    {
        await http.Response.WriteAsync($"event: {name}\ndata: {data}\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    private static async Task Data(HttpContext http, string data, string end)
    {
        await http.Response.WriteAsync($"data: {data}{end}", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    private static async Task Line(HttpContext http, string json)
    {
        await http.Response.WriteAsync(json + "\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    // Keeps CallArguments referenced where tests compare inputs.
    public static string ExpectedArguments => CallArguments;
}
