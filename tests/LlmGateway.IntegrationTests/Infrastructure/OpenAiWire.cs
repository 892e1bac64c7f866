using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>OpenAI's Chat Completions wire format, as a fake upstream writes it (per OpenAI's API reference).</summary>
public static class OpenAiWire
{
    public static string Completion(string content, int prompt = 11, int completion = 7, string model = "upstream-model", string finish = "stop", string id = "chatcmpl-fake") =>
        "{\"id\":\"" + id + "\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"" + model + "\",\"system_fingerprint\":\"fp_test\"," +
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" + JsonSerializer.Serialize(content) + ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"" + finish + "\"}]," +
        Usage(prompt, completion, 0) + "}";

    public static string Chunk(string? content = null, string? role = null, string? finish = null, string id = "chatcmpl-fake", string model = "upstream-model", bool usageNull = true)
    {
        var delta = new StringBuilder("{");
        if (role is not null) delta.Append($"\"role\":\"{role}\"");
        if (content is not null)
        {
            if (delta.Length > 1) delta.Append(',');
            delta.Append("\"content\":").Append(JsonSerializer.Serialize(content));
        }
        delta.Append('}');
        var f = finish is null ? "null" : $"\"{finish}\"";
        var usage = usageNull ? ",\"usage\":null" : "";
        return "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" + model + "\"," +
               "\"choices\":[{\"index\":0,\"delta\":" + delta + ",\"logprobs\":null,\"finish_reason\":" + f + "}]" + usage + "}";
    }

    public static string UsageChunk(int prompt, int completion, int cached = 0, string id = "chatcmpl-fake", string model = "upstream-model") =>
        "{\"id\":\"" + id + "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" + model + "\",\"choices\":[]," + Usage(prompt, completion, cached) + "}";

    private static string Usage(int prompt, int completion, int cached) =>
        $"\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{prompt + completion},\"prompt_tokens_details\":{{\"cached_tokens\":{cached}}}}}";

    public static string Error(string message, string type = "invalid_request_error", string? code = null, string? param = null) =>
        "{\"error\":{\"message\":" + JsonSerializer.Serialize(message) + ",\"type\":\"" + type + "\",\"param\":" + (param is null ? "null" : $"\"{param}\"") +
        ",\"code\":" + (code is null ? "null" : $"\"{code}\"") + "}}";

    public static async Task WriteJsonAsync(HttpContext http, string json, int status = 200)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(json);
    }

    public static void StartSse(HttpContext http)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
    }

    /// <summary>Writes one SSE event (<c>data: …\n\n</c>) and flushes it, as OpenAI does.</summary>
    public static async Task WriteEventAsync(HttpContext http, string data, string? eventName = null)
    {
        var text = eventName is null ? $"data: {data}\n\n" : $"event: {eventName}\ndata: {data}\n\n";
        await http.Response.WriteAsync(text, http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    /// <summary>A whole well-formed stream: role, one chunk per piece, finish, usage, [DONE].</summary>
    public static async Task WriteStreamAsync(HttpContext http, IEnumerable<string> pieces, int prompt = 11, int completion = 7, TimeSpan? delay = null)
    {
        StartSse(http);
        await WriteEventAsync(http, Chunk(role: "assistant", content: ""));
        foreach (var piece in pieces)
        {
            if (delay is { } d) await Task.Delay(d, http.RequestAborted);
            await WriteEventAsync(http, Chunk(content: piece));
        }
        await WriteEventAsync(http, Chunk(finish: "stop"));
        await WriteEventAsync(http, UsageChunk(prompt, completion));
        await WriteEventAsync(http, "[DONE]");
    }
}
