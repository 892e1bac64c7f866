using System.Buffers;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Embeddings;

namespace LlmGateway.Providers;

/// <summary>
/// One configured provider, speaking its own wire format upstream and OpenAI's Chat Completions
/// format to the gateway. Implementations never throw for upstream trouble: every outcome is a
/// <see cref="ProviderResponse"/>; exceptions are for bugs and for the caller's cancellation.
/// </summary>
public interface IChatProvider
{
    string Name { get; }
    ProviderOptions Options { get; }

    /// <summary>False when a key it needs is missing; the router skips it and says why.</summary>
    bool IsUsable { get; }
    string? UnusableReason { get; }

    /// <summary>
    /// The client dialect (<see cref="Pipeline.NativeDialects"/>) this provider's upstream speaks, so a
    /// request that came in it is sent as the client wrote it (<see cref="Pipeline.GatewayRequest.Native"/>)
    /// and answered in it; null when every request goes through the chat format.
    /// </summary>
    string? NativeDialect => null;

    /// <summary>
    /// Sends the request; for a stream, returns once headers arrived (the body is read through <see cref="ProviderResponse.Stream"/>).
    /// Awaited once, at once, by the candidate loop: a provider may return a pooled task (a <see cref="Task"/> was a new
    /// object of about 200 B on every upstream call).
    /// </summary>
    ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken);
}

/// <summary>Builds providers of one configuration <c>Type</c>.</summary>
public interface IChatProviderFactory
{
    string Type { get; }
    IChatProvider Create(string name, ProviderOptions options);
}

/// <summary>
/// What a provider is asked to do: the parsed client request and the model it resolved to. A value, not an object:
/// the candidate loop makes one for every attempt, and a provider only reads it.
/// </summary>
public readonly struct ProviderRequest(GatewayRequest request, string modelName, ModelOptions model)
{
    public GatewayRequest Request { get; } = request;
    public RequestOperation Operation => Request.Operation;

    /// <summary>The chat request; providers read it only for <see cref="RequestOperation.Chat"/>.</summary>
    public ChatRequest Chat => Request as ChatRequest ?? throw new InvalidOperationException($"This is a {Request.Operation} request, not a chat request.");

    /// <summary>The embeddings request; providers read it only for <see cref="RequestOperation.Embeddings"/>.</summary>
    public EmbeddingsRequest Embeddings => Request as Embeddings.EmbeddingsRequest ?? throw new InvalidOperationException($"This is a {Request.Operation} request, not an embeddings request.");

    /// <summary>The name clients use (a key of Gateway:Models).</summary>
    public string ModelName { get; } = modelName;
    public ModelOptions Model { get; } = model;

    /// <summary>The model name the upstream knows.</summary>
    public string UpstreamModel => Model.UpstreamModel ?? ModelName;
    public bool Stream => Request.Stream;

    /// <summary>max_tokens for providers that require one: the client's, else the model's limit.</summary>
    public int MaxOutputTokens => Request.MaxTokens ?? Model.MaxOutputTokens;

    /// <summary>The answers asked for (chat's <c>n</c>); 1 for one of <c>n</c> fanned-out calls.</summary>
    public int Choices => IsFannedOut ? 1 : Request.N;

    /// <summary>This is one of the <c>n</c> calls a provider without <c>n</c> makes for one request (see <see cref="ChoiceFanOut"/>).</summary>
    public bool IsFannedOut { get; private init; }

    /// <summary>The choice index this call's answer gets in the merged answer.</summary>
    public int ChoiceIndex { get; private init; }

    /// <summary>The id every fanned-out answer shares, so the merged stream reads as one completion.</summary>
    public string? CompletionId { get; private init; }

    /// <summary>The single-choice call that produces choice <paramref name="index"/> of a fanned-out request.</summary>
    public ProviderRequest ForChoice(int index, string completionId) =>
        new(Request, ModelName, Model) { IsFannedOut = true, ChoiceIndex = index, CompletionId = completionId };
}

/// <summary>
/// The outcome of <see cref="IChatProvider.SendAsync"/>: a failure, a complete OpenAI-format body,
/// or an open stream of OpenAI-format chunks.
/// </summary>
public sealed class ProviderResponse : IAsyncDisposable
{
    private ProviderResponse() { }

    public ProviderFailure? Failure { get; private init; }

    /// <summary>Non-streaming: the OpenAI chat.completion JSON.</summary>
    public ReadOnlyMemory<byte> Body { get; private init; }
    public TokenUsage Usage { get; private init; }
    public string? FinishReason { get; private init; }

    /// <summary>
    /// Null: <see cref="Body"/> and the stream's events are OpenAI chat format. Otherwise the dialect
    /// (<see cref="Pipeline.NativeDialects"/>) the upstream answered a native request in, passed to the client as it is.
    /// </summary>
    public string? Dialect { get; private init; }

    /// <summary>Streaming: the open stream, owned by this response.</summary>
    public ChatStream? Stream { get; private init; }

    public bool IsSuccess => Failure is null;

    public static ProviderResponse Failed(ProviderFailure failure) => new() { Failure = failure };

    public static ProviderResponse Completed(ReadOnlyMemory<byte> body, TokenUsage usage, string? finishReason) =>
        new() { Body = body, Usage = usage, FinishReason = finishReason };

    /// <summary>
    /// A complete answer read into a buffer rented from <see cref="ArrayPool{T}.Shared"/> (see
    /// <see cref="ProviderHttp.ReadPooledAsync"/>), which this response now owns: <see cref="Body"/> is valid
    /// until it is disposed (the pipeline disposes it after the answer is written and the cache has its copy).
    /// </summary>
    public static ProviderResponse Completed(PooledBody body, TokenUsage usage, string? finishReason) =>
        new() { Body = body.Memory, Usage = usage, FinishReason = finishReason, _rented = body.Buffer };

    public static ProviderResponse Streaming(ChatStream stream) => new() { Stream = stream, Dialect = stream.Dialect };

    /// <summary>A complete answer in the client's own dialect, with the usage read from it.</summary>
    public static ProviderResponse CompletedNative(ReadOnlyMemory<byte> body, TokenUsage usage, string? finishReason, string dialect) =>
        new() { Body = body, Usage = usage, FinishReason = finishReason, Dialect = dialect };

    private byte[]? _rented;

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _rented, null) is { } rented) ArrayPool<byte>.Shared.Return(rented);
        return Stream?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
