using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers;

/// <summary>
/// <c>n &gt; 1</c> for a provider whose API has no such parameter (Anthropic, Ollama; Gemini for
/// streams): <c>n</c> single-answer calls sent together, merged into one answer whose choices are
/// theirs in order. Usage is the sum of all calls (each one paid for its prompt and its answer), so
/// the ledger and the budgets charge what the provider will bill. Above <see cref="MaxChoices"/> the
/// request is refused with a 400 on <c>n</c> before any call.
/// </summary>
public static class ChoiceFanOut
{
    /// <summary>
    /// The most answers one request may ask of a provider without native <c>n</c> (and Gemini's own
    /// candidateCount limit): each is a whole upstream call, prompt included.
    /// </summary>
    public const int MaxChoices = 8;

    /// <summary>The 400 for an <c>n</c> above <see cref="MaxChoices"/>: no provider of this kind would do better.</summary>
    public static ProviderFailure TooMany(string provider, int n) =>
        new(FailureKind.FailRequest, FailureCause.UpstreamStatus, provider,
            $"'n' is {n}, but the most this model answers at once is {MaxChoices} (its provider has no 'n' of its own: the gateway makes one call per answer).",
            StatusCodes.Status400BadRequest, ErrorTypes.InvalidRequest, "invalid_value", "n");

    /// <summary>Sends the <paramref name="n"/> calls together; any failure fails the whole (and is what retry and fallback read).</summary>
    public static async Task<ProviderResponse> SendAsync(ProviderRequest request, int n, Func<ProviderRequest, CancellationToken, Task<ProviderResponse>> send, TimeProvider time, CancellationToken cancellationToken)
    {
        var id = NativeProvider.NewCompletionId();
        var calls = new Task<ProviderResponse>[n];
        using var stopRest = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        for (var i = 0; i < n; i++) calls[i] = send(request.ForChoice(i, id), stopRest.Token);

        ProviderResponse[] responses;
        try
        {
            responses = await Task.WhenAll(calls).ConfigureAwait(false);
        }
        catch
        {
            await stopRest.CancelAsync().ConfigureAwait(false);
            await DisposeAllAsync(calls).ConfigureAwait(false);
            throw;
        }

        if (Array.Find(responses, r => !r.IsSuccess) is { } failed)
        {
            foreach (var r in responses) await r.DisposeAsync().ConfigureAwait(false);
            return failed;
        }
        if (request.Stream)
        {
            return ProviderResponse.Streaming(new FanOutChatStream(id, request, [.. responses.Select(r => r.Stream!)], time.GetUtcNow().ToUnixTimeSeconds()));
        }
        return Merge(id, responses);
    }

    private static async Task DisposeAllAsync(Task<ProviderResponse>[] calls)
    {
        foreach (var call in calls)
        {
            if (call.IsCompletedSuccessfully) await call.Result.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One chat.completion with every call's choice, re-indexed in order, and the summed usage.</summary>
    internal static ProviderResponse Merge(string id, IReadOnlyList<ProviderResponse> responses)
    {
        var usage = default(TokenUsage);
        var buffer = new ArrayBufferWriter<byte>(responses.Sum(r => r.Body.Length) + 256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id"u8, id);
            w.WriteString("object"u8, "chat.completion"u8);
            JsonElement first = default;
            w.WriteStartArray("choices"u8);
            for (var i = 0; i < responses.Count; i++)
            {
                using var doc = JsonDocument.Parse(responses[i].Body);
                var root = doc.RootElement;
                if (i == 0) first = root.Clone();
                foreach (var choice in root.GetProperty("choices"u8).EnumerateArray())
                {
                    w.WriteStartObject();
                    w.WriteNumber("index"u8, i);
                    foreach (var p in choice.EnumerateObject())
                    {
                        if (!p.NameEquals("index"u8)) p.WriteTo(w);
                    }
                    w.WriteEndObject();
                    break; // one answer per call
                }
                usage = Add(usage, responses[i].Usage);
            }
            w.WriteEndArray();
            if (first.TryGetProperty("created"u8, out var created)) { w.WritePropertyName("created"u8); created.WriteTo(w); }
            if (first.TryGetProperty("model"u8, out var model)) { w.WritePropertyName("model"u8); model.WriteTo(w); }
            OpenAiJson.WriteUsage(w, usage);
            w.WriteEndObject();
        }
        return ProviderResponse.Completed(buffer.WrittenSpan.ToArray(), usage, responses[0].FinishReason);
    }

    internal static TokenUsage Add(TokenUsage a, TokenUsage b) =>
        new(a.Prompt + b.Prompt, a.Completion + b.Completion, a.CachedPrompt + b.CachedPrompt, a.CacheWrite + b.CacheWrite);
}

/// <summary>
/// The <c>n</c> streams of a fanned-out request as one: each stream's chunks in turn (choice 0 to the
/// end, then choice 1, ...), which OpenAI's format allows since every chunk names its choice. The
/// streams run together upstream; one not yet read waits in its connection's buffers, so memory stays
/// bounded. Their usage chunks become one, summed, at the very end.
/// </summary>
internal sealed class FanOutChatStream : ChatStream
{
    private readonly ChatStream[] _streams;
    private readonly ChunkBuilder _chunks;
    private int _current;
    private bool _done;

    public FanOutChatStream(string id, ProviderRequest request, ChatStream[] streams, long created)
    {
        _streams = streams;
        _chunks = new ChunkBuilder(id, created, request.UpstreamModel);
    }

    public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        if (_done) return StreamEvent.EndOfStream;
        while (true)
        {
            var stream = _streams[_current];
            var ev = await stream.ReadAsync(cancellationToken).ConfigureAwait(false);
            Usage = Sum();
            switch (ev.Kind)
            {
                case StreamEventKind.Usage:
                    continue; // one summed usage chunk at the end instead
                case StreamEventKind.End:
                    FinishReason ??= stream.FinishReason;
                    if (++_current < _streams.Length) continue;
                    _done = true;
                    // The summed usage, then (on the next read) the end.
                    _current = _streams.Length - 1;
                    return new StreamEvent(StreamEventKind.Usage, _chunks.Usage(Usage));
                default:
                    return ev;
            }
        }
    }

    /// <summary>Every call's usage so far: one not yet read has at least sent its prompt, which is billed.</summary>
    private TokenUsage Sum()
    {
        var sum = default(TokenUsage);
        foreach (var s in _streams) sum = ChoiceFanOut.Add(sum, s.Usage);
        return sum;
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var s in _streams) await s.DisposeAsync().ConfigureAwait(false);
    }
}
