using System.Runtime.CompilerServices;
using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Streaming;

namespace LlmGateway.Providers.OpenAi;

/// <summary>
/// Any server that speaks OpenAI's Chat Completions (OpenAI, vLLM, LM Studio, Ollama's /v1, Groq,
/// Mistral, ...), and Azure OpenAI, which differs only in its URL and key header. Bodies pass through
/// with the model renamed; responses come back byte for byte.
/// </summary>
public sealed class OpenAiProvider : IChatProvider
{
    private readonly HttpMessageInvoker _client;
    private readonly string? _apiKey;
    private readonly string? _authorization;
    private readonly bool _azure;
    private readonly TimeProvider _time;
    private readonly string _baseUrl;
    private readonly ProviderHttp.ErrorReader _readError;

    public OpenAiProvider(string name, ProviderOptions options, HttpMessageInvoker client, TimeProvider time)
    {
        Name = name;
        Options = options;
        _client = client;
        _time = time;
        _azure = options.Type == ProviderTypes.AzureOpenAi;
        _baseUrl = options.BaseUrl!.TrimEnd('/');
        _readError = (status, body, retryAfter) => ProviderHttp.FromOpenAiError(name, status, body, retryAfter);
        if (options.ApiKeyEnv is { Length: > 0 } env)
        {
            _apiKey = Environment.GetEnvironmentVariable(env);
            _authorization = "Bearer " + _apiKey;
            SecretScrubber.Register(_apiKey);
            if (string.IsNullOrEmpty(_apiKey)) UnusableReason = $"its key variable {env} is not set";
        }
    }

    public string Name { get; }
    public ProviderOptions Options { get; }
    public bool IsUsable => UnusableReason is null;
    public string? UnusableReason { get; }

    /// <summary>OpenAI-style URLs don't depend on the model: built once, not per request.</summary>
    private Uri? _chatUri, _embeddingsUri;

    private Uri ChatUri(string upstreamModel) => _azure
        ? AzureUri(upstreamModel, "chat/completions")
        : _chatUri ??= new Uri(_baseUrl + "/chat/completions");

    private Uri EmbeddingsUri(string upstreamModel) => _azure
        ? AzureUri(upstreamModel, "embeddings")
        : _embeddingsUri ??= new Uri(_baseUrl + "/embeddings");

    /// <summary>Azure names the deployment (the upstream model) in the path and versions the API in the query.</summary>
    private Uri AzureUri(string deployment, string operation) =>
        new($"{_baseUrl}/openai/deployments/{Uri.EscapeDataString(deployment)}/{operation}?api-version={Uri.EscapeDataString(Options.ApiVersion!)}");

    /// <remarks>
    /// The send is awaited here through <see cref="ProviderHttp.Send"/>, an awaitable, not through the async
    /// <see cref="ProviderHttp.SendAsync"/>: one async level fewer to suspend and resume when the upstream answers, on
    /// every call. Its state machine is pooled (see <see cref="IChatProvider.SendAsync"/>).
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken)
    {
        if (UnusableReason is not null) return ProviderResponse.Failed(ProviderFailure.NotConfigured(Name, UnusableReason));

        var embeddings = request.Operation == RequestOperation.Embeddings;
        using var message = new HttpRequestMessage(HttpMethod.Post, embeddings ? EmbeddingsUri(request.UpstreamModel) : ChatUri(request.UpstreamModel));
        // Disposing the message (at the end of this call) gives the body's pooled buffer back.
        message.Content = embeddings
            ? OpenAiRequestWriter.EmbeddingsContent(request.Request, request.UpstreamModel)
            : OpenAiRequestWriter.Content(request.Chat, request.UpstreamModel);
        if (_apiKey is { Length: > 0 })
        {
            // The header as one string made once: no header value object, and no string built from it, per call.
            if (_azure) message.Headers.TryAddWithoutValidation("api-key", _apiKey);
            else message.Headers.TryAddWithoutValidation("Authorization", _authorization);
        }
        // Added as text: not parsed into a header value object on every stream.
        if (request.Stream) message.Headers.TryAddWithoutValidation("Accept", "text/event-stream");

        var (response, failure) = await ProviderHttp.Send(_client, message, Name, cancellationToken);
        if (response is null) return ProviderResponse.Failed(failure!);
        if (!response.IsSuccessStatusCode)
        {
            return ProviderResponse.Failed(await ProviderHttp.ReadFailureAsync(response, Name, _readError, _time, cancellationToken).ConfigureAwait(false));
        }

        var keep = false;
        try
        {
            // Only a streamed request looks at the answer's type: reading it parses the header into an object.
            if (request.Stream && response.Content.Headers.ContentType?.MediaType == "text/event-stream")
            {
                var events = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                keep = true;
                return ProviderResponse.Streaming(new OpenAiChatStream(Name, response, events, request.Chat.EstimatedPromptTokens));
            }

            // A complete JSON body: the normal non-streaming answer, or a server that ignored stream:true
            // or reported an error with a 200. Read into a pooled buffer the answer owns from here.
            var body = await ProviderHttp.ReadPooledAsync(response.Content, cancellationToken).ConfigureAwait(false);
            return embeddings ? ReadEmbeddings(request, body) : ReadCompletion(request, body);
        }
        catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
        {
            return ProviderResponse.Failed(ProviderHttp.FromException(Name, e));
        }
        finally
        {
            if (!keep) response.Dispose();
        }
    }

    /// <summary>
    /// A chat completion goes to the client byte for byte; its usage and finish are read (and an error
    /// reported with a 200, or a body without choices, is a failure like any other). The body's buffer
    /// goes to the completed answer, or back to the pool.
    /// </summary>
    private ProviderResponse ReadCompletion(ProviderRequest request, PooledBody body)
    {
        var handedOver = false;
        try
        {
            ResponseInfo info;
            try
            {
                info = OpenAiResponseInspector.Inspect(body.Span);
            }
            catch (JsonException e)
            {
                return ProviderResponse.Failed(ProviderFailure.Protocol(Name, "the body is not a chat completion: " + e.Message));
            }
            if (info.IsError)
            {
                return ProviderResponse.Failed(ProviderHttp.Classify(Name, 502, info.ErrorMessage, info.ErrorType, info.ErrorCode, null));
            }
            if (!info.HasChoices)
            {
                return ProviderResponse.Failed(ProviderFailure.Protocol(Name, "the body has no choices"));
            }
            if (request.Stream)
            {
                return ProviderResponse.Streaming(new CompletedAsStream(body.Span.ToArray(), info));
            }
            var usage = info.Usage ?? new TokenUsage(request.Chat.EstimatedPromptTokens, TokenEstimatorChars(info.GeneratedChars));
            handedOver = true;
            return ProviderResponse.Completed(body, usage, info.FinishReason);
        }
        finally
        {
            if (!handedOver) body.Return();
        }
    }

    /// <summary>
    /// An OpenAI embeddings answer goes to the client byte for byte; only its usage is read (and an
    /// error reported with a 200, or a body without data, is a failure like any other).
    /// </summary>
    private ProviderResponse ReadEmbeddings(ProviderRequest request, PooledBody body)
    {
        var handedOver = false;
        try
        {
            using var doc = JsonDocument.Parse(body.Memory);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error"u8, out var error) && error.ValueKind == JsonValueKind.Object)
            {
                return ProviderResponse.Failed(ProviderHttp.FromOpenAiError(Name, 502, body.Span, null));
            }
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data"u8, out var data) || data.ValueKind != JsonValueKind.Array)
            {
                return ProviderResponse.Failed(ProviderFailure.Protocol(Name, "the body is not an embeddings list"));
            }
            var prompt = root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object
                && usage.TryGetProperty("prompt_tokens"u8, out var p) && p.TryGetInt32(out var tokens)
                ? tokens
                : request.Request.EstimatedPromptTokens;
            handedOver = true;
            return ProviderResponse.Completed(body, new TokenUsage(prompt, 0), null);
        }
        catch (JsonException e)
        {
            return ProviderResponse.Failed(ProviderFailure.Protocol(Name, "the body is not JSON: " + e.Message));
        }
        finally
        {
            if (!handedOver) body.Return();
        }
    }

    internal static int TokenEstimatorChars(int chars) => (chars + TokenEstimator.CharsPerToken - 1) / TokenEstimator.CharsPerToken;

    /// <summary>A server that answered a streaming request with one JSON body: replayed as a single content event.</summary>
    private sealed class CompletedAsStream : ChatStream
    {
        private readonly byte[] _chunk;
        private int _state;

        public CompletedAsStream(byte[] completion, ResponseInfo info)
        {
            _chunk = OpenAiChunks.FromCompletion(completion);
            Usage = info.Usage ?? default;
            FinishReason = info.FinishReason;
        }

        public override ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken) => _state++ switch
        {
            0 => ValueTask.FromResult(new StreamEvent(StreamEventKind.Content, _chunk)),
            1 when !Usage.IsEmpty => ValueTask.FromResult(new StreamEvent(StreamEventKind.Usage, UsageChunk())),
            _ => ValueTask.FromResult(StreamEvent.EndOfStream),
        };

        private byte[] UsageChunk()
        {
            var header = JsonDocument.Parse(_chunk).RootElement;
            var id = header.TryGetProperty("id"u8, out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : "chatcmpl";
            var created = header.TryGetProperty("created"u8, out var c) && c.TryGetInt64(out var t) ? t : 0;
            var model = header.TryGetProperty("model"u8, out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
            return new ChunkBuilder(id, created, model).Usage(Usage);
        }

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>An OpenAI SSE stream, passed on chunk by chunk with usage and finish_reason noted on the way.</summary>
public sealed class OpenAiChatStream : ChatStream
{
    private readonly string _provider;
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;
    private readonly SseReader _reader;
    private readonly int _estimatedPrompt;
    private bool _sawUsage;
    private int _generatedChars;
    private bool _ended;

    public OpenAiChatStream(string provider, HttpResponseMessage response, Stream body, int estimatedPromptTokens)
    {
        _provider = provider;
        _response = response;
        _body = body;
        _reader = new SseReader(body);
        _estimatedPrompt = estimatedPromptTokens;
        Usage = new TokenUsage(estimatedPromptTokens, 0);
    }

    public override bool HasBufferedEvent => !_ended && _reader.HasBufferedEvent;

    /// <remarks>
    /// Takes the events already read with <see cref="SseReader.TryRead"/> and awaits the upstream's body itself when it
    /// needs more: each chunk resumes this level straight from the body's read, not through the SSE reader's own.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        if (_ended) return StreamEvent.EndOfStream;
        while (true)
        {
            bool more;
            try
            {
                while (!(more = _reader.TryRead()) && !_reader.AtEnd)
                {
                    _reader.Filled(await _reader.FillAsync(cancellationToken).ConfigureAwait(false));
                }
            }
            catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
            {
                return StreamEvent.Fail(ProviderHttp.FromException(_provider, e));
            }
            if (!more)
            {
                // Some compatible servers omit [DONE]; a finish_reason says the answer was complete anyway.
                if (FinishReason is not null)
                {
                    _ended = true;
                    return StreamEvent.EndOfStream;
                }
                return StreamEvent.Fail(ProviderFailure.Protocol(_provider, "the stream ended before the answer was complete"));
            }

            var data = _reader.Data;
            if (data.Span.SequenceEqual("[DONE]"u8))
            {
                _ended = true;
                return StreamEvent.EndOfStream;
            }
            if (data.IsEmpty) continue;

            ResponseInfo info;
            try
            {
                info = OpenAiResponseInspector.Inspect(data.Span);
            }
            catch (JsonException e)
            {
                return StreamEvent.Fail(ProviderFailure.Protocol(_provider, "a chunk is not JSON: " + e.Message));
            }
            if (info.IsError)
            {
                // An error event after a 200: the provider failed mid-answer; worth another try.
                var failure = ProviderHttp.Classify(_provider, 500, info.ErrorMessage, info.ErrorType, info.ErrorCode, null);
                return StreamEvent.Fail(failure);
            }
            if (!info.HasChoices && info.Usage is null)
            {
                // Nothing for the client: Azure opens every stream with a chunk of only
                // prompt_filter_results, an empty id and an empty object, which would break "one id per stream".
                continue;
            }

            _generatedChars += info.GeneratedChars;
            if (info.FinishReason is not null) FinishReason = info.FinishReason;
            if (info.Usage is { } usage)
            {
                _sawUsage = true;
                Usage = usage;
            }
            else if (!_sawUsage)
            {
                Usage = new TokenUsage(_estimatedPrompt, OpenAiProvider.TokenEstimatorChars(_generatedChars));
            }

            var kind = !info.HasChoices && info.Usage is not null ? StreamEventKind.Usage
                : info.HasContent ? StreamEventKind.Content
                : StreamEventKind.Chunk;
            return new StreamEvent(kind, data);
        }
    }

    public override ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _body.Dispose();
        _response.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class OpenAiProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.OpenAi;
    public IChatProvider Create(string name, ProviderOptions options) => new OpenAiProvider(name, options, ProviderHttp.CreateInvoker(options), time);
}

public sealed class AzureOpenAiProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.AzureOpenAi;
    public IChatProvider Create(string name, ProviderOptions options) => new OpenAiProvider(name, options, ProviderHttp.CreateInvoker(options), time);
}
