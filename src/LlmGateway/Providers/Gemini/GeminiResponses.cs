using System.Globalization;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers.Gemini;

/// <summary>Gemini generateContent answers and errors in OpenAI's terms.</summary>
public static class GeminiResponses
{
    /// <summary>finishReason as finish_reason; a turn that ends in function calls is tool_calls, as OpenAI says it.</summary>
    public static string FinishReason(string? reason, bool calledTools) => reason switch
    {
        "MAX_TOKENS" => "length",
        "SAFETY" or "RECITATION" or "BLOCKLIST" or "PROHIBITED_CONTENT" or "SPII" or "IMAGE_SAFETY" => "content_filter",
        _ => calledTools ? "tool_calls" : "stop", // STOP, and MALFORMED_FUNCTION_CALL, OTHER, ... which OpenAI has no word for
    };

    /// <summary>
    /// usageMetadata in OpenAI's terms: tool-use prompt tokens are prompt tokens, thinking tokens are
    /// completion tokens (OpenAI counts reasoning in completion_tokens, and both are billed as output).
    /// </summary>
    public static TokenUsage Usage(JsonElement usage) => new(
        Int(usage, "promptTokenCount"u8) + Int(usage, "toolUsePromptTokenCount"u8),
        Int(usage, "candidatesTokenCount"u8) + Int(usage, "thoughtsTokenCount"u8),
        Int(usage, "cachedContentTokenCount"u8));

    internal static int Int(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i > 0 ? i : 0;

    internal static string? String(JsonElement obj, ReadOnlySpan<byte> name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>The model as Gemini names it in modelVersion, without the "models/" some versions prefix.</summary>
    internal static string? ModelVersion(JsonElement root)
    {
        var model = String(root, "modelVersion"u8);
        return model is not null && model.StartsWith("models/", StringComparison.Ordinal) ? model[7..] : model;
    }

    /// <summary>A part as a tool call (its args as the JSON arguments string), or null when it is none.</summary>
    internal static OpenAiToolCall? ToolCall(JsonElement part)
    {
        if (!part.TryGetProperty("functionCall"u8, out var call) || call.ValueKind != JsonValueKind.Object) return null;
        var args = call.TryGetProperty("args"u8, out var a) && a.ValueKind == JsonValueKind.Object ? a.GetRawText() : "{}";
        var id = String(call, "id"u8) is { Length: > 0 } own ? own : GeminiToolCallIds.Create(String(part, "thoughtSignature"u8));
        return new OpenAiToolCall(id, call.GetProperty("name"u8).GetString()!, args);
    }

    /// <summary>True for a part that is visible text (thought summaries are not part of the answer).</summary>
    internal static bool IsAnswerText(JsonElement part, out JsonElement text) =>
        part.TryGetProperty("text"u8, out text) && text.ValueKind == JsonValueKind.String &&
        !(part.TryGetProperty("thought"u8, out var thought) && thought.ValueKind == JsonValueKind.True);

    /// <summary>A complete generateContent answer as a chat.completion.</summary>
    public static ProviderResponse ReadCompletion(string provider, ProviderRequest request, ReadOnlySpan<byte> body, long created)
    {
        var reader = new Utf8JsonReader(body);
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        if (root.TryGetProperty("error"u8, out var error))
        {
            return ProviderResponse.Failed(ErrorFromObject(provider, 500, error, null));
        }

        var choices = new List<OpenAiChoice>(1);
        if (root.TryGetProperty("candidates"u8, out var candidates) && candidates.ValueKind == JsonValueKind.Array && candidates.GetArrayLength() > 0)
        {
            // One candidate per choice: candidateCount (n) asks for several.
            foreach (var candidate in candidates.EnumerateArray()) choices.Add(ReadCandidate(candidate));
        }
        else if (root.TryGetProperty("promptFeedback"u8, out var feedback) && String(feedback, "blockReason"u8) is not null)
        {
            // The prompt itself was blocked: no candidate, which OpenAI says as content_filter.
            choices.Add(new OpenAiChoice("", FinishReason("SAFETY", false), []));
        }
        else
        {
            choices.Add(new OpenAiChoice("", FinishReason(null, false), []));
        }

        var generated = 0;
        foreach (var c in choices) generated += TokenEstimator.FromText(c.Content ?? "");
        var usage = root.TryGetProperty("usageMetadata"u8, out var u) ? Usage(u) : new TokenUsage(request.Chat.EstimatedPromptTokens, generated);
        var id = String(root, "responseId"u8) ?? NativeProvider.NewCompletionId();
        var model = ModelVersion(root) ?? request.UpstreamModel;
        var json = OpenAiJson.Completion(id, created, model, choices, usage);
        return ProviderResponse.Completed(json, usage, choices[0].FinishReason);
    }

    private static OpenAiChoice ReadCandidate(JsonElement candidate)
    {
        string? text = null;
        StringBuilder? joined = null;
        var calls = new List<OpenAiToolCall>();
        var reason = String(candidate, "finishReason"u8);
        if (candidate.TryGetProperty("content"u8, out var content) && content.TryGetProperty("parts"u8, out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            foreach (var part in parts.EnumerateArray())
            {
                if (IsAnswerText(part, out var t))
                {
                    var s = t.GetString()!;
                    if (text is null) text = s;
                    else (joined ??= new StringBuilder(text)).Append(s);
                }
                else if (ToolCall(part) is { } call)
                {
                    calls.Add(call);
                }
            }
        }
        if (joined is not null) text = joined.ToString();
        return new OpenAiChoice(text ?? (calls.Count > 0 ? null : ""), FinishReason(reason, calls.Count > 0), calls);
    }

    /// <summary>An error response: <c>{"error":{"code":…,"message":…,"status":…,"details":[…]}}</c> (an array of one such object on some endpoints).</summary>
    public static ProviderFailure ReadError(string provider, int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() > 0) root = root[0];
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error"u8, out var error) && error.ValueKind == JsonValueKind.Object)
            {
                return ErrorFromObject(provider, status, error, retryAfter);
            }
        }
        catch (JsonException)
        {
            // Not Google's JSON (a proxy's page): classified by status alone.
        }
        return ProviderHttp.Classify(provider, status, NativeErrors.Excerpt(body), null, null, retryAfter);
    }

    /// <summary>An error object inside a 200 stream, classified by the HTTP code it carries.</summary>
    public static ProviderFailure StreamError(string provider, JsonElement error) =>
        ErrorFromObject(provider, Int(error, "code"u8) is > 0 and var code ? code : 500, error, null);

    private static ProviderFailure ErrorFromObject(string provider, int status, JsonElement error, TimeSpan? retryAfter)
    {
        var message = String(error, "message"u8);
        var grpcStatus = String(error, "status"u8);
        string? reason = null;
        if (error.TryGetProperty("details"u8, out var details) && details.ValueKind == JsonValueKind.Array)
        {
            foreach (var detail in details.EnumerateArray())
            {
                reason ??= String(detail, "reason"u8);
                // RESOURCE_EXHAUSTED says how long to wait in RetryInfo ("37s") rather than a header.
                if (retryAfter is null && String(detail, "retryDelay"u8) is { } delay && TryParseDuration(delay, out var wait)) retryAfter = wait;
            }
        }

        var code = message is not null && message.Contains("input token count", StringComparison.OrdinalIgnoreCase) &&
                   message.Contains("exceeds the maximum", StringComparison.OrdinalIgnoreCase)
            ? "context_length_exceeded"
            : grpcStatus?.ToLowerInvariant();
        var failure = ProviderHttp.Classify(provider, status, message, ErrorType(grpcStatus), code, retryAfter);

        // A bad key comes as 400 INVALID_ARGUMENT (reason API_KEY_INVALID), and an account or region
        // Gemini won't serve as 400 FAILED_PRECONDITION: neither is the request's fault.
        if (reason is "API_KEY_INVALID" or "API_KEY_SERVICE_BLOCKED" || grpcStatus is "FAILED_PRECONDITION" or "UNAUTHENTICATED" or "PERMISSION_DENIED")
        {
            failure = NativeErrors.WithKind(failure, FailureKind.NextCandidate);
        }
        return failure;
    }

    /// <summary>The OpenAI error type a client gets when Gemini's verdict is passed on.</summary>
    private static string ErrorType(string? grpcStatus) => grpcStatus switch
    {
        "RESOURCE_EXHAUSTED" => ErrorTypes.RateLimit,
        "PERMISSION_DENIED" => ErrorTypes.Permission,
        "UNAUTHENTICATED" => ErrorTypes.Authentication,
        "INVALID_ARGUMENT" or "FAILED_PRECONDITION" or "OUT_OF_RANGE" or "NOT_FOUND" => ErrorTypes.InvalidRequest,
        _ => ErrorTypes.Api,
    };

    /// <summary>A protobuf Duration as JSON writes it: seconds with an "s" suffix ("37s", "1.5s").</summary>
    private static bool TryParseDuration(string value, out TimeSpan duration)
    {
        duration = default;
        if (!value.EndsWith('s') || !double.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds < 0 || seconds > 86_400)
        {
            return false;
        }
        duration = TimeSpan.FromSeconds(seconds);
        return true;
    }
}
