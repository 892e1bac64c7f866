using LlmGateway.Caching;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Resilience;

namespace LlmGateway.Conversations;

/// <summary>
/// One chat request that carries <c>X-Conversation-Id</c>, from the history being read until the turn is
/// stored: the request to run (the history spliced in), and what the turn will add when it succeeds.
/// </summary>
public sealed class ConversationTurn
{
    private readonly ConversationService? _service;

    internal ConversationTurn(ApiError error, ChatRequest original)
    {
        Error = error;
        Request = original;
    }

    internal ConversationTurn(ConversationService service, ChatRequest request, string storeKey, List<byte[]>? system, List<byte[]> newMessages, bool historyAvailable, long maxCaptureBytes)
    {
        _service = service;
        Request = request;
        StoreKey = storeKey;
        System = system;
        NewMessages = newMessages;
        HistoryAvailable = historyAvailable;
        MaxCaptureBytes = maxCaptureBytes;
    }

    /// <summary>new, continued or unavailable (<see cref="ConversationStates"/>); null when the id was refused before the store was read.</summary>
    public string? State { get; init; }

    /// <summary>The 400 for a bad conversation id (or a body the history can't be spliced into); nothing else is set then.</summary>
    public ApiError? Error { get; }

    /// <summary>The request the pipeline runs: the client's, with the history in front of its messages.</summary>
    public ChatRequest Request { get; }

    internal string StoreKey { get; } = "";

    /// <summary>The request's own system prompt, which replaces the stored one; null when it brought none.</summary>
    internal List<byte[]>? System { get; }

    /// <summary>The request's other messages, in order: the user's half of the turn.</summary>
    internal List<byte[]> NewMessages { get; } = [];

    /// <summary>False when the store could not be read: the request ran without history and the turn is not stored.</summary>
    internal bool HistoryAvailable { get; }

    internal long MaxCaptureBytes { get; }

    /// <summary>
    /// The stream to answer from. It keeps a copy of the chunks (the cache's copy when the cache keeps one,
    /// see <see cref="CacheLookup.Observe"/>) and, when the upstream ended cleanly, stores the turn before
    /// the handler writes [DONE]: a client that sends its next turn as soon as it has the answer finds
    /// this one stored.
    /// </summary>
    public ChatStream Observe(ChatStream stream, Execution execution) =>
        new StoringStream(stream as CapturingStream ?? CapturingStream.Over(stream, execution, MaxCaptureBytes), this, _service!);

    private sealed class StoringStream(CapturingStream capture, ConversationTurn turn, ConversationService service) : ChatStream
    {
        public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
        {
            var ev = await capture.ReadAsync(cancellationToken).ConfigureAwait(false);
            Usage = capture.Usage;
            FinishReason = capture.FinishReason;
            if (ev.Kind == StreamEventKind.End) await service.AppendAsync(turn, capture.Assemble()).ConfigureAwait(false);
            return ev;
        }

        /// <summary>The captured stream's: a stored turn's stream coalesces the events that arrived together, as any other does.</summary>
        public override bool HasBufferedEvent => capture.HasBufferedEvent;

        /// <summary>The inner stream belongs to the provider response, which disposes it.</summary>
        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
