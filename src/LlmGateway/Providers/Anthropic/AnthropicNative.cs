using System.Buffers;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Streaming;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// A <c>/v1/messages</c> request sent to Anthropic as the client wrote it (<see cref="GatewayRequest.Native"/>),
/// and Anthropic's answer read only for what the gateway needs of it (usage, the stop reason): the body
/// itself goes back to the client unchanged.
/// </summary>
public static class AnthropicNative
{
    /// <summary>The client's Messages body, when this request carries one.</summary>
    public static NativeBody? Of(ProviderRequest request) =>
        request.Request.Native is { Dialect: NativeDialects.AnthropicMessages } native ? native : null;

    /// <summary>
    /// The client's body with only the value of its top-level <c>model</c> replaced by the deployment's
    /// upstream model: every other byte (unknown fields, <c>cache_control</c>, <c>thinking</c>, the
    /// client's key order and spacing) is kept. The ingress parsed the body, so <c>model</c> is a string.
    /// </summary>
    public static byte[] WithModel(ReadOnlySpan<byte> body, string upstreamModel)
    {
        if (!JsonScanner.TryFind(body, "model"u8, out var reader, maxDepth: 256) || reader.TokenType != JsonTokenType.String)
        {
            throw new RequestTranslationException("The request has no string 'model'.", "model", FailureKind.FailRequest);
        }
        var start = (int)reader.TokenStartIndex;
        var end = (int)reader.BytesConsumed;
        var model = new ArrayBufferWriter<byte>(upstreamModel.Length + 8);
        using (var w = new Utf8JsonWriter(model))
        {
            w.WriteStringValue(upstreamModel);
        }
        var result = new byte[start + model.WrittenCount + body.Length - end];
        body[..start].CopyTo(result);
        model.WrittenSpan.CopyTo(result.AsSpan(start));
        body[end..].CopyTo(result.AsSpan(start + model.WrittenCount));
        return result;
    }

    /// <summary>A complete Message: passed on as it is, with its usage and stop reason read for the ledger and the log.</summary>
    public static ProviderResponse ReadCompletion(string provider, ProviderRequest request, byte[] body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new JsonException("the answer is not a JSON object");
        if (AnthropicResponses.String(root, "type"u8) == "error")
        {
            return ProviderResponse.Failed(AnthropicResponses.StreamError(provider, root));
        }
        if (AnthropicResponses.String(root, "type"u8) != "message") throw new JsonException("the answer is not a Message");
        var usage = root.TryGetProperty("usage"u8, out var u) && u.ValueKind == JsonValueKind.Object
            ? AnthropicResponses.Usage(u)
            : new TokenUsage(request.Request.EstimatedPromptTokens, 0);
        var finish = AnthropicResponses.FinishReason(AnthropicResponses.String(root, "stop_reason"u8));
        return ProviderResponse.CompletedNative(body, usage, finish, NativeDialects.AnthropicMessages);
    }
}

/// <summary>
/// Anthropic's SSE events passed through one by one, each re-framed as <c>event:</c> and <c>data:</c>
/// lines exactly as it came, while the gateway reads what it must: the usage in <c>message_start</c> and
/// <c>message_delta</c>, the stop reason, an <c>event: error</c>, and whether <c>message_stop</c> arrived
/// (a stream that ends without it was cut, and is a failure, never a complete answer). The commit point
/// is the first content block event, so a failure before it can still go to another candidate.
/// </summary>
public sealed class AnthropicNativeStream : ChatStream
{
    private readonly string _provider;
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;
    private readonly SseReader _reader;
    private readonly ArrayBufferWriter<byte> _event = new(1024);
    private readonly int _estimatedPrompt;
    private readonly AnthropicStreamUsage _usage = new();
    private long _generatedBytes;
    private bool _stopped;
    private bool _finished;

    public AnthropicNativeStream(string provider, ProviderRequest request, HttpResponseMessage response, Stream body)
    {
        _provider = provider;
        _response = response;
        _body = body;
        _reader = new SseReader(body);
        _estimatedPrompt = request.Request.EstimatedPromptTokens;
        Usage = new TokenUsage(_estimatedPrompt, 0);
    }

    public override string? Dialect => NativeDialects.AnthropicMessages;

    public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_finished) return StreamEvent.EndOfStream;
            if (_stopped)
            {
                _finished = true;
                return StreamEvent.EndOfStream;
            }

            bool more;
            try
            {
                more = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
            {
                return Fail(ProviderHttp.FromException(_provider, e));
            }
            if (!more)
            {
                return Fail(ProviderFailure.Protocol(_provider, "the stream ended before message_stop"));
            }
            var data = _reader.Data;
            if (data.IsEmpty) continue;

            var type = _reader.EventType.IsEmpty ? JsonScanner.FindString(data.Span, "type"u8) ?? "" : System.Text.Encoding.UTF8.GetString(_reader.EventType);
            StreamEventKind kind;
            try
            {
                kind = Read(type, data.Span, out var failure);
                if (failure is not null) return Fail(failure);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                return Fail(ProviderFailure.Protocol(_provider, "an event could not be read: " + e.Message));
            }
            Usage = new TokenUsage(_usage.Prompt ?? _estimatedPrompt,
                _usage.Completion ?? (int)((_generatedBytes + TokenEstimator.CharsPerToken - 1) / TokenEstimator.CharsPerToken), _usage.Cached, _usage.CacheWrite);
            return new StreamEvent(kind, Frame(type, data.Span));
        }
    }

    /// <summary>What an event means to the gateway; the failure an <c>event: error</c> is.</summary>
    private StreamEventKind Read(string type, ReadOnlySpan<byte> data, out ProviderFailure? failure)
    {
        failure = null;
        switch (type)
        {
            case "content_block_delta":
                // Roughly the text a delta carries (its JSON wrapper is some 60 bytes): the estimate until message_delta counts.
                _generatedBytes += Math.Max(0, data.Length - 60);
                return StreamEventKind.Content;
            case "content_block_start":
            case "content_block_stop":
                return StreamEventKind.Content;
            case "message_start":
            {
                using var doc = JsonDocument.Parse(data.ToArray());
                if (doc.RootElement.TryGetProperty("message"u8, out var message) && message.ValueKind == JsonValueKind.Object &&
                    message.TryGetProperty("usage"u8, out var usage))
                {
                    _usage.Read(usage, final: false);
                }
                return StreamEventKind.Chunk;
            }
            case "message_delta":
            {
                using var doc = JsonDocument.Parse(data.ToArray());
                var root = doc.RootElement;
                if (root.TryGetProperty("usage"u8, out var usage)) _usage.Read(usage, final: true);
                var stop = root.TryGetProperty("delta"u8, out var delta) ? AnthropicResponses.String(delta, "stop_reason"u8) : null;
                FinishReason = AnthropicResponses.FinishReason(stop);
                return StreamEventKind.Content;
            }
            case "message_stop":
                _stopped = true;
                return StreamEventKind.Chunk;
            case "error":
            {
                using var doc = JsonDocument.Parse(data.ToArray());
                failure = AnthropicResponses.StreamError(_provider, doc.RootElement);
                return StreamEventKind.Chunk;
            }
            default:
                // ping, and event types added later: passed on, since the client's SDK decides what to ignore.
                return StreamEventKind.Chunk;
        }
    }


    /// <summary>The event as the client gets it: its type and its data, each data line as one <c>data:</c> line.</summary>
    private ReadOnlyMemory<byte> Frame(string type, ReadOnlySpan<byte> data)
    {
        _event.ResetWrittenCount();
        if (type.Length > 0)
        {
            _event.Write("event: "u8);
            System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.UTF8, type.AsSpan(), _event);
            _event.Write("\n"u8);
        }
        while (true)
        {
            var newline = data.IndexOf((byte)'\n');
            _event.Write("data: "u8);
            _event.Write(newline < 0 ? data : data[..newline]);
            _event.Write("\n"u8);
            if (newline < 0) break;
            data = data[(newline + 1)..];
        }
        _event.Write("\n"u8);
        return _event.WrittenMemory;
    }

    private StreamEvent Fail(ProviderFailure failure)
    {
        _finished = true;
        return StreamEvent.Fail(failure);
    }

    public override ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _body.Dispose();
        _response.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The usage an Anthropic stream reports, as it reports it: message_start the prompt (and a placeholder
/// output count), message_delta the output, and on newer API versions the prompt figures again, cumulatively.
/// </summary>
internal sealed class AnthropicStreamUsage
{
    /// <summary>Prompt tokens, cache reads and writes included (OpenAI's count), once reported.</summary>
    public int? Prompt { get; private set; }
    public int Cached { get; private set; }
    public int CacheWrite { get; private set; }

    /// <summary>Output tokens, once message_delta reported them.</summary>
    public int? Completion { get; private set; }

    public void Read(JsonElement usage, bool final)
    {
        if (usage.ValueKind != JsonValueKind.Object) return;
        if (usage.TryGetProperty("input_tokens"u8, out _) || usage.TryGetProperty("cache_read_input_tokens"u8, out _))
        {
            var u = AnthropicResponses.Usage(usage);
            if (!final || u.Prompt > 0)
            {
                Prompt = u.Prompt;
                Cached = u.CachedPrompt;
                CacheWrite = u.CacheWrite;
            }
        }
        if (final && usage.TryGetProperty("output_tokens"u8, out _)) Completion = AnthropicResponses.Int(usage, "output_tokens"u8);
    }
}
