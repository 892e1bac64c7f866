using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>What a request asks a model to do; each has its own endpoint and upstream call.</summary>
public enum RequestOperation
{
    Chat,
    Embeddings,
}

/// <summary>
/// A parsed request on its way through the pipeline: what routing, resilience, the cache, budgets and
/// rate limits read, whatever the endpoint. The body stays as it came, with a pooled <see cref="JsonDocument"/>
/// over it, so fields the gateway doesn't act on reach the upstream unchanged; <see cref="ChatRequest"/> and
/// <see cref="Embeddings.EmbeddingsRequest"/> read out and type-check the fields of their endpoint.
/// </summary>
public abstract class GatewayRequest : IDisposable
{
    private JsonDocument? _document;
    private bool _disposed;

    protected GatewayRequest(JsonDocument document, ReadOnlyMemory<byte> body)
    {
        _document = document;
        Body = body;
    }

    /// <summary>
    /// A request that checked its body with a reader (<see cref="RequestJson.ReaderOptions"/>): the document is
    /// parsed on the first read of <see cref="Root"/>, which a chat request that only needs its model renamed for
    /// an OpenAI-compatible upstream never makes (<see cref="ChatRequest.TryGetModelSplice"/>).
    /// </summary>
    protected GatewayRequest(ReadOnlyMemory<byte> body)
    {
        Body = body;
    }

    public abstract RequestOperation Operation { get; }

    public ReadOnlyMemory<byte> Body { get; }
    public JsonElement Root => (_document ?? ParseDocument()).RootElement;

    private JsonDocument ParseDocument()
    {
        // The body may be a pooled buffer given back once the request is disposed.
        ObjectDisposedException.ThrowIf(_disposed, this);
        var parsed = RequestJson.ParseChecked(Body);
        // Steps that run side by side (a fan-out's calls) may both be first: one document is kept.
        var kept = Interlocked.CompareExchange(ref _document, parsed, null);
        if (kept is null) return parsed;
        parsed.Dispose();
        return kept;
    }

    public string Model { get; protected set; } = "";
    public bool Stream { get; protected set; }

    /// <summary>The output the request allows (max_completion_tokens, else max_tokens); 0 for an operation that generates no tokens.</summary>
    public int? MaxTokens { get; protected set; }

    /// <summary>Answers produced per request (chat's <c>n</c>); every one may use <see cref="MaxTokens"/>.</summary>
    public int N { get; protected set; } = 1;

    /// <summary>Input size estimated before the call (see <see cref="TokenEstimator"/>); real usage replaces it after.</summary>
    public int EstimatedPromptTokens { get; protected set; }

    /// <summary>The tokens that must fit one context window with the output (chat: the whole prompt).</summary>
    public virtual int ContextTokens => EstimatedPromptTokens;

    /// <summary>
    /// The client's request in its own dialect when it came in one a provider may take natively (see
    /// <see cref="NativeBody"/>); null for chat, and for a request rebuilt on its way (a conversation's history spliced in).
    /// </summary>
    public NativeBody? Native { get; internal set; }

    /// <summary>The gateway's own <c>metadata.task_type</c>, when the body carries one.</summary>
    public string? MetadataTaskType { get; protected set; }

    /// <summary>The same request gives the same answer, so the cache may serve it (chat: temperature 0 or a seed).</summary>
    public abstract bool IsReproducible { get; }

    /// <summary>The text task-type patterns are matched against (chat: the last user message).</summary>
    public virtual string LastUserText => "";

    /// <summary>
    /// Reads out and checks the fields of this endpoint (the body is a JSON object, or, for a request made
    /// without a document, the whole body); the 400 that says what is wrong, or null.
    /// </summary>
    protected abstract ApiError? Read();

    /// <summary>
    /// Checks the sizes the client chose (counts, dimensions, n) against <c>Gateway:Limits</c>: the 400 naming
    /// the parameter, or null. Runs right after parsing, before any step allocates or calls anything for them.
    /// </summary>
    public virtual ApiError? CheckLimits(Configuration.LimitsOptions limits) => null;

    /// <summary>The 400 for a size over its limit, naming the parameter and the setting that raises it.</summary>
    protected static ApiError OverLimit(string param, long value, int limit, string setting, string what = "") =>
        ApiError.InvalidRequest(
            string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"'{param}' is {value}{what}; at most {limit} is accepted (Gateway:Limits:{setting})."),
            param);

    /// <summary>The <c>model</c> field every endpoint has: a non-empty string.</summary>
    protected ApiError? ReadModel(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } model)
            return ApiError.InvalidRequest("'model' must be a non-empty string.", "model");
        Model = model;
        return null;
    }

    /// <summary>Parses a body and checks it as <typeparamref name="T"/> does; returns the request or the 400.</summary>
    protected static T? TryParse<T>(ReadOnlyMemory<byte> body, Func<JsonDocument, ReadOnlyMemory<byte>, T> create, out ApiError? error)
        where T : GatewayRequest
    {
        return RequestJson.ParseObject(body, create, static (document, bytes, create) => create(document, bytes), static request => request.Read(), out error);
    }

    public void Dispose()
    {
        _disposed = true;
        Interlocked.Exchange(ref _document, null)?.Dispose();
        GC.SuppressFinalize(this);
    }
}
