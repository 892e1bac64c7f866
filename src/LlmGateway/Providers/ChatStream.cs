namespace LlmGateway.Providers;

public enum StreamEventKind
{
    /// <summary>A chunk with nothing a user sees yet (the role-only opener, a keep-alive translated to nothing).</summary>
    Chunk,

    /// <summary>A chunk that carries content, a tool call, a refusal or a finish_reason: once one is sent, the stream is committed.</summary>
    Content,

    /// <summary>The usage-only chunk (empty choices). Sent on only when the client asked for it.</summary>
    Usage,

    /// <summary>The upstream finished cleanly.</summary>
    End,

    /// <summary>The upstream failed (an error event, a cut connection, a stream that ended without finishing).</summary>
    Failed,
}

/// <summary>One event of a <see cref="ChatStream"/>. <see cref="Data"/> is an OpenAI chat.completion.chunk, valid until the next read.</summary>
public readonly record struct StreamEvent(StreamEventKind Kind, ReadOnlyMemory<byte> Data, ProviderFailure? Failure = null)
{
    public static readonly StreamEvent EndOfStream = new(StreamEventKind.End, default);
    public static StreamEvent Fail(ProviderFailure failure) => new(StreamEventKind.Failed, default, failure);
}

/// <summary>
/// A streamed answer in OpenAI's chunk format, read one event at a time so the caller controls the
/// timeout of each read (first token, idle between chunks). Implementations report what they have
/// seen of usage even when the stream breaks, so partial usage is never lost.
/// </summary>
public abstract class ChatStream : IAsyncDisposable
{
    /// <summary>Usage so far: the provider's report when it came, else an estimate from what was streamed.</summary>
    public TokenUsage Usage { get; protected set; }

    public string? FinishReason { get; protected set; }

    /// <summary>
    /// Null: events are OpenAI chat.completion.chunks. Otherwise the client dialect (<see cref="Pipeline.NativeDialects"/>)
    /// whose own SSE events each <see cref="StreamEvent.Data"/> is, framed and ready to write.
    /// </summary>
    public virtual string? Dialect => null;

    /// <summary>Reads the next event. Cancelling the token aborts the upstream request.</summary>
    public abstract ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The next event's bytes have already arrived, so a relay may hold what it wrote and flush it with that event
    /// (see <see cref="Streaming.SseReader.HasBufferedEvent"/>). False when unsure: then it flushes at once.
    /// </summary>
    public virtual bool HasBufferedEvent => false;

    public abstract ValueTask DisposeAsync();
}
