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
    private CapturingStream? _capture;

    internal ConversationTurn(ApiError error, ChatRequest original)
    {
        Error = error;
        Request = original;
    }

    internal ConversationTurn(ChatRequest request, string storeKey, List<byte[]>? system, List<byte[]> newMessages, bool historyAvailable, long maxCaptureBytes)
    {
        Request = request;
        StoreKey = storeKey;
        System = system;
        NewMessages = newMessages;
        HistoryAvailable = historyAvailable;
        MaxCaptureBytes = maxCaptureBytes;
    }

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
    /// The stream to answer from, keeping a copy of its chunks to assemble the assistant's message from.
    /// When the cache already keeps one (<see cref="CacheLookup.Observe"/>), that copy serves both.
    /// </summary>
    public ChatStream Observe(ChatStream stream, Execution execution)
    {
        _capture = stream as CapturingStream ?? CapturingStream.Over(stream, execution, MaxCaptureBytes);
        return _capture;
    }

    /// <summary>The complete chat.completion the client received, or null when there is none (a broken, cut or oversized stream).</summary>
    public ReadOnlyMemory<byte>? Completion(Execution execution) =>
        execution.Response?.Stream is null ? execution.Response?.Body : _capture?.Assemble();
}
