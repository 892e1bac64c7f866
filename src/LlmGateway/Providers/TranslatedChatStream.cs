using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers;

/// <summary>
/// A native stream (SSE or NDJSON) turned into OpenAI chunks. One upstream event can become several
/// chunks (a text delta, two tool calls and the finish reason in one Gemini event), so translations
/// are queued and handed out one per read. Every chunk carries the same id, created and model; the
/// role chunk opens, the finish chunk and the usage chunk close, and a stream that breaks ends with
/// one Failed event. <see cref="ChatStream.Usage"/> is kept current after every upstream event:
/// the provider's numbers where it reported them, an estimate from the streamed text where not.
/// </summary>
public abstract class TranslatedChatStream : ChatStream
{
    private readonly Queue<StreamEvent> _queue = new();
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;
    private readonly int _estimatedPrompt;
    private readonly long _created;
    private readonly string _fallbackModel;
    private ChunkBuilder? _chunks;
    private readonly int _choiceIndex;
    private readonly string? _completionId;
    private bool _finished;

    protected TranslatedChatStream(string provider, ProviderRequest request, HttpResponseMessage response, Stream body, TimeProvider time)
    {
        Provider = provider;
        _response = response;
        _body = body;
        _estimatedPrompt = request.Chat.EstimatedPromptTokens;
        _created = time.GetUtcNow().ToUnixTimeSeconds();
        _fallbackModel = request.UpstreamModel;
        _choiceIndex = request.ChoiceIndex;
        _completionId = request.CompletionId;
        Usage = new TokenUsage(_estimatedPrompt, 0);
    }

    protected string Provider { get; }

    /// <summary>Prompt tokens as the provider reported them (cached ones included), once it did.</summary>
    protected int? ReportedPrompt { get; set; }

    /// <summary>Completion tokens as the provider reported them, once it did.</summary>
    protected int? ReportedCompletion { get; set; }
    protected int CachedPrompt { get; set; }
    protected int CacheWrite { get; set; }

    /// <summary>Characters of text and tool calls streamed so far, for the estimate until usage arrives.</summary>
    protected int GeneratedChars { get; set; }

    /// <summary>How many tool calls were started: the OpenAI index of the next one.</summary>
    protected int ToolCalls { get; set; }

    protected ChunkBuilder Chunks => _chunks ?? throw new InvalidOperationException("The stream has not started.");

    /// <summary>Reads the next upstream event; false at the end of the body.</summary>
    protected abstract ValueTask<bool> ReadUpstreamAsync(CancellationToken cancellationToken);

    /// <summary>Translates the event just read into chunks (<see cref="Emit"/>, <see cref="Complete"/>, <see cref="Fail"/>).</summary>
    protected abstract void Translate();

    protected virtual void DisposeReader() { }

    public sealed override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_queue.TryDequeue(out var queued)) return queued;
            if (_finished) return StreamEvent.EndOfStream;

            bool more;
            try
            {
                more = await ReadUpstreamAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
            {
                Fail(ProviderHttp.FromException(Provider, e));
                continue;
            }

            if (!more)
            {
                // The body ended. With the finish reason seen the answer is whole (some servers close
                // without their final marker); without it the stream was cut.
                if (FinishReason is not null) Complete();
                else Fail(ProviderFailure.Protocol(Provider, "the stream ended before the answer was complete"));
                continue;
            }

            try
            {
                Translate();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
            {
                Fail(ProviderFailure.Protocol(Provider, "an event could not be read: " + e.Message));
            }
            RefreshUsage();
        }
    }

    /// <summary>Opens the answer with the role chunk, once; the id and model are the provider's when it sent them.</summary>
    protected void Start(string? id, string? model)
    {
        if (_chunks is not null) return;
        // One of n fanned-out answers carries the id all n share, and its own choice index.
        id = _completionId ?? (string.IsNullOrEmpty(id) ? NativeProvider.NewCompletionId() : id);
        _chunks = new ChunkBuilder(id, _created, string.IsNullOrEmpty(model) ? _fallbackModel : model, _choiceIndex);
        _queue.Enqueue(new StreamEvent(StreamEventKind.Chunk, _chunks.Role()));
    }

    protected void EmitText(string text)
    {
        if (text.Length == 0) return;
        Start(null, null);
        GeneratedChars += text.Length;
        _queue.Enqueue(new StreamEvent(StreamEventKind.Content, Chunks.Content(text)));
    }

    /// <summary>Starts the next tool call (index <see cref="ToolCalls"/>) and returns its index.</summary>
    protected int EmitToolCallStart(string id, string name, string arguments = "")
    {
        Start(null, null);
        var index = ToolCalls++;
        GeneratedChars += name.Length + arguments.Length;
        _queue.Enqueue(new StreamEvent(StreamEventKind.Content, Chunks.ToolCallStart(index, id, name, arguments)));
        return index;
    }

    protected void EmitToolCallArguments(int index, string fragment)
    {
        if (fragment.Length == 0) return;
        GeneratedChars += fragment.Length;
        _queue.Enqueue(new StreamEvent(StreamEventKind.Content, Chunks.ToolCallArguments(index, fragment)));
    }

    protected void EmitFinish(string finishReason)
    {
        Start(null, null);
        FinishReason = finishReason;
        _queue.Enqueue(new StreamEvent(StreamEventKind.Content, Chunks.Finish(finishReason)));
    }

    /// <summary>The upstream finished: the usage chunk (forwarded only when the client asked), then the end.</summary>
    protected void Complete()
    {
        if (_finished) return;
        Start(null, null);
        RefreshUsage();
        _queue.Enqueue(new StreamEvent(StreamEventKind.Usage, Chunks.Usage(Usage)));
        _queue.Enqueue(StreamEvent.EndOfStream);
        _finished = true;
    }

    /// <summary>Ends the stream with a failure, after whatever was already translated.</summary>
    protected void Fail(ProviderFailure failure)
    {
        if (_finished) return;
        _queue.Enqueue(StreamEvent.Fail(failure));
        _finished = true;
    }

    protected bool IsFinished => _finished;

    private void RefreshUsage()
    {
        var completion = ReportedCompletion ?? (GeneratedChars + TokenEstimator.CharsPerToken - 1) / TokenEstimator.CharsPerToken;
        Usage = new TokenUsage(ReportedPrompt ?? _estimatedPrompt, completion, CachedPrompt, CacheWrite);
    }

    public override ValueTask DisposeAsync()
    {
        DisposeReader();
        _body.Dispose();
        _response.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}
