using System.Text.Json;
using LlmGateway.Streaming;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// Anthropic's streaming events as OpenAI chunks: message_start opens (role chunk, prompt usage),
/// text_delta becomes content, a tool_use block becomes a tool call whose input_json_delta
/// fragments become argument fragments (OpenAI indexes count tool calls only, Anthropic's count every
/// block), message_delta carries the stop reason and the final usage, message_stop ends, ping is
/// skipped and <c>event: error</c> fails the stream.
/// </summary>
public sealed class AnthropicChatStream : TranslatedChatStream
{
    private readonly SseReader _reader;
    private readonly AnthropicStreamUsage _usage = new();
    // Anthropic block index -> OpenAI tool call index, and whether arguments came; few blocks per answer.
    private readonly List<(int Block, int Call, bool HasArguments)> _toolBlocks = [];

    // response_format: the answer tool's block, whose input fragments are the content (AnthropicStructuredOutput).
    private readonly bool _structured;
    private int _answerBlock = -1;
    private bool _answerHasText;

    public AnthropicChatStream(string provider, ProviderRequest request, HttpResponseMessage response, Stream body, TimeProvider time)
        : base(provider, request, response, body, time)
    {
        _reader = new SseReader(body);
        _structured = AnthropicStructuredOutput.IsRequested(request);
    }

    protected override ValueTask<bool> ReadUpstreamAsync(CancellationToken cancellationToken) => _reader.ReadAsync(cancellationToken);

    protected override void Translate()
    {
        var data = _reader.Data;
        if (data.IsEmpty) return;
        using var doc = JsonDocument.Parse(data);
        var root = doc.RootElement;
        var type = root.GetProperty("type"u8);

        if (type.ValueEquals("content_block_delta"u8))
        {
            var delta = root.GetProperty("delta"u8);
            var deltaType = delta.GetProperty("type"u8);
            if (deltaType.ValueEquals("text_delta"u8))
            {
                EmitText(delta.GetProperty("text"u8).GetString()!);
            }
            else if (deltaType.ValueEquals("input_json_delta"u8) && root.GetProperty("index"u8).GetInt32() == _answerBlock)
            {
                var fragment = delta.GetProperty("partial_json"u8).GetString()!;
                _answerHasText |= fragment.Length > 0;
                EmitText(fragment);
            }
            else if (deltaType.ValueEquals("input_json_delta"u8))
            {
                var fragment = delta.GetProperty("partial_json"u8).GetString()!;
                var slot = FindToolBlock(root.GetProperty("index"u8).GetInt32());
                if (slot >= 0 && fragment.Length > 0)
                {
                    var (block, call, _) = _toolBlocks[slot];
                    _toolBlocks[slot] = (block, call, true);
                    EmitToolCallArguments(call, fragment);
                }
            }
            // thinking_delta, signature_delta, citations_delta: nothing an OpenAI chunk carries.
        }
        else if (type.ValueEquals("content_block_start"u8))
        {
            var block = root.GetProperty("content_block"u8);
            var blockType = block.GetProperty("type"u8);
            if (blockType.ValueEquals("text"u8))
            {
                EmitText(block.TryGetProperty("text"u8, out var t) ? t.GetString()! : "");
            }
            else if (blockType.ValueEquals("tool_use"u8) && _structured && block.GetProperty("name"u8).ValueEquals(AnthropicStructuredOutput.ToolName))
            {
                _answerBlock = root.GetProperty("index"u8).GetInt32();
            }
            else if (blockType.ValueEquals("tool_use"u8))
            {
                // The input arrives as input_json_delta fragments; the {} in the start event is a placeholder.
                var call = EmitToolCallStart(block.GetProperty("id"u8).GetString()!, block.GetProperty("name"u8).GetString()!);
                _toolBlocks.Add((root.GetProperty("index"u8).GetInt32(), call, false));
            }
        }
        else if (type.ValueEquals("content_block_stop"u8))
        {
            var index = root.GetProperty("index"u8).GetInt32();
            if (index == _answerBlock && !_answerHasText) EmitText("{}");
            var slot = FindToolBlock(index);
            if (slot >= 0 && !_toolBlocks[slot].HasArguments)
            {
                // A call without parameters streams no fragment; OpenAI clients parse arguments as JSON.
                EmitToolCallArguments(_toolBlocks[slot].Call, "{}");
            }
        }
        else if (type.ValueEquals("message_start"u8))
        {
            var message = root.GetProperty("message"u8);
            Start(AnthropicResponses.String(message, "id"u8), AnthropicResponses.String(message, "model"u8));
            if (message.TryGetProperty("usage"u8, out var usage)) ReadUsage(usage, final: false);
        }
        else if (type.ValueEquals("message_delta"u8))
        {
            if (root.TryGetProperty("usage"u8, out var usage)) ReadUsage(usage, final: true);
            var stop = root.TryGetProperty("delta"u8, out var delta) ? AnthropicResponses.String(delta, "stop_reason"u8) : null;
            var finish = AnthropicResponses.FinishReason(stop);
            // Calling the answer tool is how the model finished its answer, not a request to run a tool.
            if (_answerBlock >= 0 && ToolCalls == 0 && finish == "tool_calls") finish = "stop";
            EmitFinish(finish);
        }
        else if (type.ValueEquals("message_stop"u8))
        {
            Complete();
        }
        else if (type.ValueEquals("error"u8))
        {
            Fail(AnthropicResponses.StreamError(Provider, root));
        }
        // ping, and event types added later, are skipped: Anthropic asks clients to ignore unknown events.
    }

    private void ReadUsage(JsonElement usage, bool final)
    {
        _usage.Read(usage, final);
        ReportedPrompt = _usage.Prompt;
        CachedPrompt = _usage.Cached;
        CacheWrite = _usage.CacheWrite;
        ReportedCompletion = _usage.Completion;
    }

    private int FindToolBlock(int block)
    {
        for (var i = 0; i < _toolBlocks.Count; i++)
        {
            if (_toolBlocks[i].Block == block) return i;
        }
        return -1;
    }

    protected override void DisposeReader() => _reader.Dispose();
}
