using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers.Ollama;

/// <summary>Ollama <c>/api/chat</c> answers and errors in OpenAI's terms.</summary>
public static class OllamaResponses
{
    /// <summary>done_reason as finish_reason; Ollama says "stop" after tool calls, OpenAI says tool_calls.</summary>
    public static string FinishReason(string? doneReason, bool calledTools) => doneReason switch
    {
        "length" => "length",
        _ => calledTools ? "tool_calls" : "stop",
    };

    /// <summary>prompt_eval_count and eval_count; either may be missing (a prompt served from Ollama's cache has no prompt_eval_count).</summary>
    public static (int? Prompt, int? Completion) Counts(JsonElement root) => (Count(root, "prompt_eval_count"u8), Count(root, "eval_count"u8));

    private static int? Count(JsonElement root, ReadOnlySpan<byte> name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i >= 0 ? i : null;

    internal static string? String(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>One entry of message.tool_calls: arguments arrive as an object, whole; newer Ollama versions add an id.</summary>
    internal static OpenAiToolCall ToolCall(JsonElement call)
    {
        var fn = call.GetProperty("function"u8);
        var args = fn.TryGetProperty("arguments"u8, out var a) && a.ValueKind == JsonValueKind.Object ? a.GetRawText() : "{}";
        var id = String(call, "id"u8) is { Length: > 0 } own ? own : NativeProvider.NewToolCallId();
        return new OpenAiToolCall(id, fn.GetProperty("name"u8).GetString()!, args);
    }

    /// <summary>A complete (stream:false) answer as a chat.completion.</summary>
    public static ProviderResponse ReadCompletion(string provider, ProviderRequest request, ReadOnlySpan<byte> body, long created)
    {
        var reader = new Utf8JsonReader(body);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        if (String(root, "error"u8) is { } error)
        {
            return ProviderResponse.Failed(Classify(provider, 500, error, null));
        }

        var message = root.GetProperty("message"u8);
        var text = String(message, "content"u8) ?? "";
        var calls = new List<OpenAiToolCall>();
        if (message.TryGetProperty("tool_calls"u8, out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
        {
            foreach (var call in toolCalls.EnumerateArray()) calls.Add(ToolCall(call));
        }
        var finish = FinishReason(String(root, "done_reason"u8), calls.Count > 0);
        var (prompt, completion) = Counts(root);
        var usage = new TokenUsage(prompt ?? request.Chat.EstimatedPromptTokens, completion ?? TokenEstimator.FromText(text));
        var json = OpenAiJson.Completion(NativeProvider.NewCompletionId(), created, String(root, "model"u8) ?? request.UpstreamModel,
            text.Length == 0 && calls.Count > 0 ? null : text, finish, usage, calls);
        return ProviderResponse.Completed(json, usage, finish);
    }

    /// <summary>An error response: <c>{"error":"…"}</c> with the status saying what kind.</summary>
    public static ProviderFailure ReadError(string provider, int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter)
    {
        string? message = null;
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            message = String(doc.RootElement, "error"u8);
        }
        catch (JsonException)
        {
            // Not Ollama's JSON (a proxy's page): the excerpt below.
        }
        return Classify(provider, status, message ?? NativeErrors.Excerpt(body), retryAfter);
    }

    /// <summary>
    /// Ollama's errors carry no type; the status classifies them (a 404 "model not found, try pulling
    /// it first" is this server's problem, and another provider may have the model).
    /// </summary>
    public static ProviderFailure Classify(string provider, int status, string? message, TimeSpan? retryAfter) =>
        ProviderHttp.Classify(provider, status, message, status is >= 400 and < 500 ? Http.ErrorTypes.InvalidRequest : Http.ErrorTypes.Api, null, retryAfter);
}
