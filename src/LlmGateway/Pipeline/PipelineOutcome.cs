using LlmGateway.Auth;
using LlmGateway.Http;
using LlmGateway.Providers;

namespace LlmGateway.Pipeline;

/// <summary>What the pipeline came to: a complete answer, a stream already past its commit point, or an error.</summary>
public enum OutcomeKind
{
    /// <summary><see cref="PipelineOutcome.Body"/> is the whole answer: an OpenAI chat.completion (or embeddings list) JSON.</summary>
    Answer,

    /// <summary><see cref="PipelineOutcome.Stream"/> yields the answer as OpenAI chat.completion.chunk events.</summary>
    Stream,

    /// <summary><see cref="PipelineOutcome.Error"/> says what the caller gets instead of an answer.</summary>
    Error,
}

/// <summary>How an ingress's delivery of an outcome ended: what the request record, budgets and the cache go by.</summary>
public enum Delivery
{
    /// <summary>Everything was written (for a broken stream: its error event).</summary>
    Delivered,

    /// <summary>The caller went away or cancelled before it had the whole answer (recorded as 499, cancelled).</summary>
    ClientGone,

    /// <summary>Writing to the caller failed (recorded as cancelled; the status already sent stands).</summary>
    WriteFailed,
}

/// <summary>
/// Where a request starts, taken by the ingress before it reads the body: the request id it answers
/// with, and the moment the duration and the gateway's overhead are counted from.
/// </summary>
public readonly record struct RequestStart(string RequestId, DateTimeOffset StartedAt, long Timestamp);

/// <summary>
/// One event of a streamed answer. <see cref="Data"/> is an OpenAI chat.completion.chunk (the
/// gateway's internal format, which each dialect translates event by event), valid until the next
/// read. <see cref="StreamEventKind.Usage"/> is the usage-only chunk, always present when the
/// upstream reported usage: the ingress decides whether its client gets it.
/// <see cref="StreamEventKind.Failed"/> carries the <see cref="Error"/> that ends the stream; the
/// stream must then be broken off (one error event, no clean end), never ended as if complete.
/// </summary>
public readonly record struct AnswerEvent(StreamEventKind Kind, ReadOnlyMemory<byte> Data, ApiError? Error = null);

/// <summary>
/// The outcome of <see cref="GatewayPipeline.ExecuteAsync"/> as a value: the answer (or the error) and
/// everything the response headers say about it. The ingress writes it in its own dialect and then
/// calls <see cref="CompleteAsync"/> once with how the delivery ended; that runs the last step of the
/// pipeline (budget settlement, the key's TPM, the usage record, the log line, metrics) exactly once.
/// Disposing an outcome that was not completed completes it as <see cref="Delivery.WriteFailed"/>.
/// </summary>
public sealed class PipelineOutcome : IAsyncDisposable
{
    private readonly RequestRun _run;

    internal PipelineOutcome(RequestRun run, OutcomeKind kind, ApiError? error = null, ReadOnlyMemory<byte> body = default, decimal? costUsd = null, AnswerStream? stream = null, string? dialect = null)
    {
        _run = run;
        Dialect = dialect ?? stream?.Dialect;
        Kind = kind;
        Error = error;
        Body = body;
        CostUsd = costUsd;
        Stream = stream;
    }

    public OutcomeKind Kind { get; }

    /// <summary>
    /// Null: <see cref="Body"/> and the stream's events are chat format, for the ingress to translate. Otherwise
    /// the client dialect (<see cref="NativeDialects"/>) a provider answered the request's <see cref="GatewayRequest.Native"/>
    /// body in: the ingress passes the body, or each event's data, to its client as it is.
    /// </summary>
    public string? Dialect { get; }

    public string RequestId => _run.Record.RequestId;

    /// <summary>The request as it ran (with a conversation's history spliced in); null when it was refused before it was parsed.</summary>
    public GatewayRequest? Request => _run.Request;

    /// <summary>The task type, once routing has decided it; empty before.</summary>
    public string TaskType => _run.Record.TaskType;

    /// <summary>The provider that answered or was tried last (<c>cache</c> for a cache hit); empty when none was.</summary>
    public string Provider => _run.Record.Provider;

    /// <summary>The model that answered or was tried last; empty when none was.</summary>
    public string Model => _run.Record.Model;

    /// <summary>Calls made to providers (0 for a cache hit or a request refused before any call).</summary>
    public int Attempts => _run.Record.Attempts;

    /// <summary>hit, miss, bypass or off; null when the request ended before the cache was asked.</summary>
    public string? CacheResult => _run.CacheAsked ? _run.Record.CacheResult : null;

    /// <summary>What a complete answer cost (0 for a cache hit); null for streams and errors.</summary>
    public decimal? CostUsd { get; }

    /// <summary>The gateway's own time so far (upstream waits excluded): read it when the headers are written.</summary>
    public TimeSpan Overhead => _run.Overhead();

    public ApiError? Error { get; }

    /// <summary>The answer's JSON, for <see cref="OutcomeKind.Answer"/>; valid until <see cref="CompleteAsync"/>.</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>Tokens used so far (the whole answer's once a stream ended).</summary>
    public TokenUsage Usage => Stream?.Usage ?? _run.Record.Usage;

    public AnswerStream? Stream { get; }

    /// <summary>The key's RPM and TPM state where they were consulted (OpenAI's x-ratelimit-* headers).</summary>
    public RateLimitResult? RequestsLimit => _run.KeyLimits.Requests;
    public RateLimitResult? TokensLimit => _run.KeyLimits.Tokens;

    /// <summary>new, continued or unavailable for a request with a conversation id; null otherwise.</summary>
    public string? ConversationState => _run.ConversationState;

    /// <summary>Runs the pipeline's last step with how delivery ended. Only the first call (or disposal) counts.</summary>
    public ValueTask CompleteAsync(Delivery delivery) => _run.CompleteAsync(delivery);

    public ValueTask DisposeAsync() => _run.CompleteAsync(Delivery.WriteFailed);
}
