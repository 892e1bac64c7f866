using System.Text;
using System.Text.Json;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers.Anthropic;

/// <summary>Anthropic Messages answers and errors in OpenAI's terms.</summary>
public static class AnthropicResponses
{
    /// <summary>stop_reason as finish_reason.</summary>
    public static string FinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" or "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    };

    /// <summary>
    /// Anthropic's usage in OpenAI's terms: Anthropic's input_tokens leave out the tokens read from
    /// and written to the prompt cache, OpenAI's prompt_tokens count every prompt token, cached ones
    /// included (and name the cached part in prompt_tokens_details.cached_tokens).
    /// </summary>
    public static TokenUsage Usage(JsonElement usage)
    {
        var input = Int(usage, "input_tokens"u8);
        var read = Int(usage, "cache_read_input_tokens"u8);
        var write = Int(usage, "cache_creation_input_tokens"u8);
        return new TokenUsage(input + read + write, Int(usage, "output_tokens"u8), read, write);
    }

    internal static int Int(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i > 0 ? i : 0;

    internal static string? String(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>A complete Messages answer as a chat.completion.</summary>
    public static ProviderResponse ReadCompletion(string provider, ProviderRequest request, ReadOnlySpan<byte> body, long created)
    {
        var reader = new Utf8JsonReader(body);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        if (String(root, "type"u8) == "error")
        {
            return ProviderResponse.Failed(ErrorFromObject(provider, 500, root.GetProperty("error"u8), null));
        }

        string? text = null;
        StringBuilder? joined = null;
        string? answer = null;
        var structured = AnthropicStructuredOutput.IsRequested(request);
        var calls = new List<OpenAiToolCall>();
        if (root.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.Array)
        {
            foreach (var block in content.EnumerateArray())
            {
                var type = block.GetProperty("type"u8);
                if (type.ValueEquals("text"u8))
                {
                    var t = block.GetProperty("text"u8).GetString()!;
                    if (text is null) text = t;
                    else (joined ??= new StringBuilder(text)).Append(t);
                }
                else if (type.ValueEquals("tool_use"u8))
                {
                    var input = block.TryGetProperty("input"u8, out var i) && i.ValueKind == JsonValueKind.Object ? i.GetRawText() : "{}";
                    var name = block.GetProperty("name"u8).GetString()!;
                    if (structured && name == AnthropicStructuredOutput.ToolName)
                    {
                        // The structured answer: its input is the message content (any text around it was the model thinking aloud).
                        answer = input;
                        continue;
                    }
                    calls.Add(new OpenAiToolCall(block.GetProperty("id"u8).GetString()!, name, input));
                }
                // thinking, redacted_thinking and server tool blocks have no place in a chat.completion.
            }
        }
        if (joined is not null) text = joined.ToString();
        if (answer is not null) text = answer;

        var finish = FinishReason(String(root, "stop_reason"u8));
        // Calling the answer tool is how the model finished its answer, not a request to run a tool.
        if (answer is not null && calls.Count == 0 && finish == "tool_calls") finish = "stop";
        var usage = root.TryGetProperty("usage"u8, out var u) ? Usage(u) : new TokenUsage(request.Chat.EstimatedPromptTokens, TokenEstimator.FromText(text ?? ""));
        var id = String(root, "id"u8) ?? NativeProvider.NewCompletionId();
        var model = String(root, "model"u8) ?? request.UpstreamModel;
        var json = OpenAiJson.Completion(id, created, model, text ?? (calls.Count > 0 ? null : ""), finish, usage, calls);
        return ProviderResponse.Completed(json, usage, finish);
    }

    /// <summary>An error response: <c>{"type":"error","error":{"type":…,"message":…}}</c>.</summary>
    public static ProviderFailure ReadError(string provider, int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error"u8, out var error))
            {
                return ErrorFromObject(provider, status, error, retryAfter);
            }
        }
        catch (JsonException)
        {
            // An HTML page from a proxy, say: classified by status alone.
        }
        return Classify(provider, status, null, NativeErrors.Excerpt(body), retryAfter);
    }

    /// <summary>The data of a mid-stream <c>event: error</c>, classified as the same error would be as a response.</summary>
    public static ProviderFailure StreamError(string provider, JsonElement root)
    {
        var error = root.TryGetProperty("error"u8, out var e) ? e : root;
        return ErrorFromObject(provider, StatusOf(String(error, "type"u8)), error, null);
    }

    private static ProviderFailure ErrorFromObject(string provider, int status, JsonElement error, TimeSpan? retryAfter) =>
        Classify(provider, status, String(error, "type"u8), String(error, "message"u8), retryAfter);

    /// <summary>The HTTP status Anthropic documents for each error type (for errors that arrive inside a 200 stream).</summary>
    public static int StatusOf(string? type) => type switch
    {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500, // api_error and anything new
    };

    public static ProviderFailure Classify(string provider, int status, string? type, string? message, TimeSpan? retryAfter)
    {
        // "input length and `max_tokens` exceed context limit" is Anthropic's other context-length wording.
        var code = message is not null && message.Contains("exceed context limit", StringComparison.OrdinalIgnoreCase) ? "context_length_exceeded" : null;
        var failure = ProviderHttp.Classify(provider, status, message, type, code, retryAfter);
        // The account, not the request: a low credit balance is reported as a 400 invalid_request_error.
        if (type is "authentication_error" or "permission_error" or "billing_error" ||
            (message is not null && message.Contains("credit balance", StringComparison.OrdinalIgnoreCase)))
        {
            failure = NativeErrors.WithKind(failure, FailureKind.NextCandidate);
        }
        return failure;
    }
}
