using System.Text.Json;
using LlmGateway.Streaming;

namespace LlmGateway.Providers.Ollama;

/// <summary>
/// Ollama's NDJSON stream (one JSON object per line) as OpenAI chunks: message.content deltas become
/// content, message.tool_calls complete tool calls, and the final <c>"done":true</c> object the
/// finish reason and the usage. An <c>{"error":…}</c> line fails the stream.
/// </summary>
public sealed class OllamaChatStream : TranslatedChatStream
{
    private readonly LineReader _lines;
    private ReadOnlyMemory<byte> _line;

    public OllamaChatStream(string provider, ProviderRequest request, HttpResponseMessage response, Stream body, TimeProvider time)
        : base(provider, request, response, body, time)
    {
        _lines = new LineReader(body);
    }

    protected override async ValueTask<bool> ReadUpstreamAsync(CancellationToken cancellationToken)
    {
        var line = await _lines.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        if (line is null) return false;
        _line = line.Value;
        return true;
    }

    protected override void Translate()
    {
        if (_line.Span.Trim(" \t"u8).IsEmpty) return;
        using var doc = JsonDocument.Parse(_line);
        var root = doc.RootElement;
        if (OllamaResponses.String(root, "error"u8) is { } error)
        {
            Fail(OllamaResponses.Classify(Provider, 500, error, null));
            return;
        }

        Start(null, OllamaResponses.String(root, "model"u8));
        if (root.TryGetProperty("message"u8, out var message) && message.ValueKind == JsonValueKind.Object)
        {
            if (OllamaResponses.String(message, "content"u8) is { Length: > 0 } text) EmitText(text);
            if (message.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    var c = OllamaResponses.ToolCall(call);
                    EmitToolCallStart(c.Id, c.Name, c.Arguments);
                }
            }
        }

        if (root.TryGetProperty("done"u8, out var done) && done.ValueKind == JsonValueKind.True)
        {
            var (prompt, completion) = OllamaResponses.Counts(root);
            ReportedPrompt = prompt ?? ReportedPrompt;
            ReportedCompletion = completion ?? ReportedCompletion;
            EmitFinish(OllamaResponses.FinishReason(OllamaResponses.String(root, "done_reason"u8), ToolCalls > 0));
            Complete();
        }
    }

    protected override void DisposeReader() => _lines.Dispose();
}
