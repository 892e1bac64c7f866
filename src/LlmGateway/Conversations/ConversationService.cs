using LlmGateway.Auth;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Storage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Conversations;

/// <summary>
/// Stateful conversations: a chat request with <c>X-Conversation-Id</c> gets the stored history in front
/// of its messages (<see cref="BeginAsync"/>), and after a complete successful answer the turn is
/// stored (<see cref="AppendAsync"/>).
/// <list type="bullet">
/// <item>Scope: the store key holds the caller's key id (one anonymous scope with Auth:Mode=none), so a
/// key never sees another's conversation: a foreign id is simply an unknown one.</item>
/// <item>System prompt: a request that brings system (or developer) messages replaces the stored ones,
/// for this call and the turns after it; they always go first and are never trimmed.</item>
/// <item>Only an answer the client received complete is stored (not an error, a broken or cancelled
/// stream). A cache hit is a complete answer and is stored.</item>
/// <item>Concurrent turns: the history is read again right before the write, under a lock per
/// conversation (in this process), so two simultaneous turns both land, in the order they finish. Across
/// gateway instances sharing Redis, the last writer wins between that read and write.</item>
/// <item>Store down: the request runs without history (<c>x-gateway-conversation: unavailable</c>, a
/// warning logged) and its turn is not stored.</item>
/// </list>
/// </summary>
public sealed class ConversationService(IOptions<GatewayOptions> options, IGatewayStore store, TimeProvider time, ILogger<ConversationService> logger)
{
    public const string IdHeader = "X-Conversation-Id";
    public const string StateHeader = "x-gateway-conversation";
    public const int MaxIdLength = 128;
    internal const string KeyPrefix = "conv:";

    private readonly ConversationOptions _options = options.Value.Conversations;
    private readonly SemaphoreSlim[] _locks = CreateLocks(64);

    private TimeSpan Ttl => TimeSpan.FromSeconds(_options.TtlSeconds);

    // A streamed answer is kept chunk by chunk (each with its JSON framing) until it can be assembled;
    // an answer that outgrows this could not fit the history anyway.
    private long MaxCaptureBytes => (long)_options.MaxHistoryTokens * TokenEstimator.CharsPerToken * 64 + 1024 * 1024;

    /// <summary>The 400 unless <paramref name="id"/> is one id of 1 to <see cref="MaxIdLength"/> letters, digits, '-', '_' or '.'.</summary>
    public static ApiError? CheckId(string id)
    {
        // A header sent twice arrives joined with ',', which no id may hold.
        if (!IsValidId(id))
        {
            return ApiError.InvalidRequest(
                $"'{IdHeader}' must be one conversation id of 1 to {MaxIdLength} characters: letters, digits, '-', '_' or '.'.",
                IdHeader, "invalid_conversation_id");
        }
        return null;
    }

    public static bool IsValidId(string id)
    {
        if (id.Length is 0 or > MaxIdLength) return false;
        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) return false;
        }
        return true;
    }

    /// <summary>
    /// The store key of a conversation in the caller's scope. Ids can't hold ':', so the last ':' always
    /// separates the key id from the conversation id and no two scopes can meet.
    /// </summary>
    public static string StoreKey(CallerIdentity? caller, string id) => KeyPrefix + (caller?.KeyId ?? "") + ":" + id;

    /// <summary>
    /// Reads the history and splices it into the request. On success the returned turn's
    /// <see cref="ConversationTurn.Request"/> replaces <paramref name="chat"/>, which is disposed here;
    /// <see cref="ConversationTurn.State"/> says what was found (the x-gateway-conversation header).
    /// </summary>
    public async ValueTask<ConversationTurn> BeginAsync(CallerIdentity? caller, string id, ChatRequest chat)
    {
        if (CheckId(id) is { } idError) return new ConversationTurn(idError, chat);
        var split = ConversationSplice.Split(chat.Body.Span, out var splitError);
        if (split is null) return new ConversationTurn(splitError!, chat);

        var key = StoreKey(caller, id);
        ConversationHistory? history = null;
        var available = true;
        try
        {
            history = ConversationHistory.Decode(await store.GetAsync(key).ConfigureAwait(false));
        }
        catch (StoreUnavailableException e)
        {
            available = false;
            logger.LogWarning("Conversation history can't be read, the request runs without it: {Reason}", e.Message);
        }
        var state = !available ? ConversationStates.Unavailable : history is null ? ConversationStates.New : ConversationStates.Continued;

        var system = split.System.Count > 0 ? split.System : null;
        if (history is not null)
        {
            if (system is not null) history.System = system;
            history.Trim(_options.MaxHistoryTokens, _options.MaxTurns); // the options may have shrunk since it was stored
        }
        var body = ConversationSplice.Build(chat.Body.Span, split, Prompt(history?.System ?? system, history, split.Others));
        var spliced = ChatRequest.TryParse(body, out var parseError);
        if (spliced is null) return new ConversationTurn(parseError!, chat) { State = state };
        chat.Dispose();
        return new ConversationTurn(this, spliced, key, system, split.Others, available, MaxCaptureBytes) { State = state };
    }

    private static IEnumerable<byte[]> Prompt(List<byte[]>? system, ConversationHistory? history, List<byte[]> requestMessages)
    {
        if (system is not null)
        {
            foreach (var m in system) yield return m;
        }
        if (history is not null)
        {
            foreach (var turn in history.Turns)
            {
                foreach (var m in turn.Messages) yield return m;
            }
        }
        foreach (var m in requestMessages) yield return m;
    }

    /// <summary>
    /// Stores the turn, given the complete chat.completion the upstream (or the cache) answered with: called
    /// once the answer is whole and before the client is told it is (the body written, or [DONE]), so a
    /// client's next turn always finds it. Errors and broken streams never get here. Never throws for the
    /// store: the answer is good either way, so a failed write is a warning.
    /// </summary>
    public async ValueTask AppendAsync(ConversationTurn turn, ReadOnlyMemory<byte>? completion)
    {
        if (!turn.HistoryAvailable) return;
        if (completion is not { } body || ConversationSplice.AssistantMessage(body.Span) is not { } reply)
        {
            logger.LogWarning("Conversation {Conversation}: the answer could not be kept as a turn (no complete assistant message, or a stream too large to keep).", turn.StoreKey);
            return;
        }

        var messages = new List<byte[]>(turn.NewMessages.Count + 1);
        messages.AddRange(turn.NewMessages);
        messages.Add(reply);

        var gate = _locks[(uint)StringComparer.Ordinal.GetHashCode(turn.StoreKey) % (uint)_locks.Length];
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            // Read again: another turn may have landed while this one was answered. The lock orders this
            // instance's writers; the compare-and-set catches another instance's, and the turn is added
            // again to what that one wrote.
            for (var attempt = 1; ; attempt++)
            {
                var now = time.GetUtcNow().ToUnixTimeSeconds();
                var stored = await store.GetAsync(turn.StoreKey).ConfigureAwait(false);
                var history = ConversationHistory.Decode(stored) ?? new ConversationHistory { CreatedAt = now };
                if (turn.System is not null) history.System = turn.System;
                history.Turns.Add(new ConversationTurnMessages(messages));
                history.Trim(_options.MaxHistoryTokens, _options.MaxTurns);
                history.UpdatedAt = now;
                if (await store.SetIfUnchangedAsync(turn.StoreKey, stored, history.Encode(), Ttl).ConfigureAwait(false)) break;
                if (attempt == MaxWriteAttempts)
                {
                    logger.LogWarning("Conversation {Conversation}: the turn was not stored: the history kept changing under {Attempts} attempts", turn.StoreKey, attempt);
                    break;
                }
            }
        }
        catch (StoreUnavailableException e)
        {
            logger.LogWarning("Conversation {Conversation}: the turn was not stored: {Reason}", turn.StoreKey, e.Message);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>The conversation in the caller's scope, or null when there is none. Throws <see cref="StoreUnavailableException"/>.</summary>
    public async Task<ConversationHistory?> GetAsync(CallerIdentity? caller, string id)
    {
        var history = ConversationHistory.Decode(await store.GetAsync(StoreKey(caller, id)).ConfigureAwait(false));
        history?.Trim(_options.MaxHistoryTokens, _options.MaxTurns);
        return history;
    }

    /// <summary>
    /// Deletes the conversation; false when there was none (an expired or emptied one included).
    /// Throws <see cref="StoreUnavailableException"/>.
    /// </summary>
    public async Task<bool> DeleteAsync(CallerIdentity? caller, string id)
    {
        var key = StoreKey(caller, id);
        var gate = _locks[(uint)StringComparer.Ordinal.GetHashCode(key) % (uint)_locks.Length];
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var existed = ConversationHistory.Decode(await store.GetAsync(key).ConfigureAwait(false)) is not null;
            await store.DeleteAsync(key).ConfigureAwait(false);
            return existed;
        }
        finally
        {
            gate.Release();
        }
    }


    /// <summary>When the stored history expires: its last turn plus the TTL (each turn refreshes it).</summary>
    public long ExpiresAt(ConversationHistory history) => history.UpdatedAt + _options.TtlSeconds;

    /// <summary>
    /// Compare-and-set rounds before a turn gives up. Only turns racing on one conversation from several
    /// instances retry, and every failed round means another turn was stored: the bound is far above any
    /// real race and only stops a store that never takes the write.
    /// </summary>
    private const int MaxWriteAttempts = 32;

    private static SemaphoreSlim[] CreateLocks(int count)
    {
        var locks = new SemaphoreSlim[count];
        for (var i = 0; i < count; i++) locks[i] = new SemaphoreSlim(1, 1);
        return locks;
    }
}

/// <summary>What a turn found of its conversation: the values of the x-gateway-conversation header.</summary>
public static class ConversationStates
{
    public const string New = "new";
    public const string Continued = "continued";
    public const string Unavailable = "unavailable";
}
