using System.Text.Json;
using LlmGateway.Streaming;

namespace LlmGateway.Providers.Gemini;

/// <summary>
/// streamGenerateContent?alt=sse as OpenAI chunks. Every event is a whole GenerateContentResponse:
/// its text parts become content, each functionCall part a complete tool call (Gemini never splits
/// arguments), the finishReason the finish chunk, and the cumulative usageMetadata the usage so far.
/// There is no end marker: the body ending after a finishReason is the end, without one it is a cut.
/// </summary>
public sealed class GeminiChatStream : TranslatedChatStream
{
    private readonly SseReader _reader;

    public GeminiChatStream(string provider, ProviderRequest request, HttpResponseMessage response, Stream body, TimeProvider time)
        : base(provider, request, response, body, time)
    {
        _reader = new SseReader(body);
    }

    protected override ValueTask<bool> ReadUpstreamAsync(CancellationToken cancellationToken) => _reader.ReadAsync(cancellationToken);

    protected override void Translate()
    {
        var data = _reader.Data;
        if (data.IsEmpty) return;
        using var doc = JsonDocument.Parse(data);
        var root = doc.RootElement;
        if (root.TryGetProperty("error"u8, out var error))
        {
            Fail(GeminiResponses.StreamError(Provider, error));
            return;
        }

        Start(GeminiResponses.String(root, "responseId"u8), GeminiResponses.ModelVersion(root));
        if (root.TryGetProperty("usageMetadata"u8, out var usageMetadata))
        {
            var usage = GeminiResponses.Usage(usageMetadata);
            ReportedPrompt = usage.Prompt;
            // Early events may count no candidate tokens yet: the estimate from the text stands until one does.
            ReportedCompletion = usage.Completion > 0 ? usage.Completion : ReportedCompletion;
            CachedPrompt = usage.CachedPrompt;
        }

        if (root.TryGetProperty("candidates"u8, out var candidates) && candidates.ValueKind == JsonValueKind.Array && candidates.GetArrayLength() > 0)
        {
            var candidate = candidates[0];
            if (candidate.TryGetProperty("content"u8, out var content) && content.TryGetProperty("parts"u8, out var parts) && parts.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in parts.EnumerateArray())
                {
                    if (GeminiResponses.IsAnswerText(part, out var text)) EmitText(text.GetString()!);
                    else if (GeminiResponses.ToolCall(part) is { } call) EmitToolCallStart(call.Id, call.Name, call.Arguments);
                }
            }
            if (GeminiResponses.String(candidate, "finishReason"u8) is { } reason && FinishReason is null)
            {
                EmitFinish(GeminiResponses.FinishReason(reason, ToolCalls > 0));
            }
        }
        else if (root.TryGetProperty("promptFeedback"u8, out var feedback) && GeminiResponses.String(feedback, "blockReason"u8) is not null && FinishReason is null)
        {
            EmitFinish("content_filter");
        }
    }

    protected override void DisposeReader() => _reader.Dispose();
}
