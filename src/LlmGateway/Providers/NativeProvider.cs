using System.Net.Http.Headers;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Http;

namespace LlmGateway.Providers;

/// <summary>
/// The HTTP plumbing of the providers whose wire format is not OpenAI's (Anthropic, Gemini, Ollama):
/// the key from its variable, one long-lived client, translation failures and upstream errors as
/// values. A subclass says how to translate: the URL, the body, the key header, the error body,
/// the complete answer and the stream.
/// </summary>
public abstract class NativeProvider : IChatProvider, IDisposable
{
    private static readonly MediaTypeHeaderValue s_json = new("application/json");
    private readonly HttpMessageInvoker _client;

    /// <summary><see cref="ReadError"/> as a delegate, made once rather than per request.</summary>
    private readonly ProviderHttp.ErrorReader _readError;

    protected NativeProvider(string name, ProviderOptions options, HttpMessageInvoker client, TimeProvider time)
    {
        Name = name;
        Options = options;
        _client = client;
        Time = time;
        _readError = ReadError;
        BaseUrl = options.BaseUrl!.TrimEnd('/');
        if (options.ApiKeyEnv is { Length: > 0 } env)
        {
            ApiKey = Environment.GetEnvironmentVariable(env);
            SecretScrubber.Register(ApiKey);
            if (string.IsNullOrEmpty(ApiKey)) UnusableReason = $"its key variable {env} is not set";
        }
    }

    public string Name { get; }
    public ProviderOptions Options { get; }
    public bool IsUsable => UnusableReason is null;
    public string? UnusableReason { get; }

    /// <inheritdoc/>
    public virtual string? NativeDialect => null;

    protected string? ApiKey { get; }
    protected string BaseUrl { get; }
    protected TimeProvider Time { get; }
    protected HttpMessageInvoker Client => _client;

    /// <summary>The upstream URL of this request (chat or embeddings, streamed or not).</summary>
    protected abstract Uri RequestUri(ProviderRequest request);

    /// <summary>The native body; throws <see cref="RequestTranslationException"/> for what it cannot express.</summary>
    protected abstract byte[] WriteBody(ProviderRequest request);

    /// <summary>Adds the key (and any version header) to an upstream request.</summary>
    protected abstract void AddHeaders(HttpRequestMessage message, ProviderRequest request);

    /// <summary>Classifies a non-2xx answer from its status and the provider's own error body.</summary>
    protected abstract ProviderFailure ReadError(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter);

    /// <summary>Translates a complete native answer; may throw JsonException (or InvalidOperationException) on a body it can't read.</summary>
    protected abstract ProviderResponse ReadCompletion(ProviderRequest request, byte[] body);

    /// <summary>Wraps an open native stream; the stream owns <paramref name="response"/> from here on.</summary>
    protected abstract ChatStream OpenStream(ProviderRequest request, HttpResponseMessage response, Stream body);

    /// <summary>
    /// Whether this provider's own API serves <c>n</c> answers for this request (Gemini's candidateCount);
    /// when not, <c>n &gt; 1</c> fans out into <c>n</c> calls (<see cref="ChoiceFanOut"/>).
    /// </summary>
    protected virtual bool HasNativeChoices(ProviderRequest request) => false;

    public ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken)
    {
        if (request.Operation == Pipeline.RequestOperation.Chat && request.Choices > 1)
        {
            // Settled before any call: more than the provider can give is the request's fault (400), never a 5xx.
            if (request.Choices > ChoiceFanOut.MaxChoices) return ValueTask.FromResult(ProviderResponse.Failed(ChoiceFanOut.TooMany(Name, request.Choices)));
            if (!HasNativeChoices(request)) return new(ChoiceFanOut.SendAsync(request, request.Choices, SendOneAsync, Time, cancellationToken));
        }
        return new(SendOneAsync(request, cancellationToken));
    }

    private async Task<ProviderResponse> SendOneAsync(ProviderRequest request, CancellationToken cancellationToken)
    {
        if (UnusableReason is not null) return ProviderResponse.Failed(ProviderFailure.NotConfigured(Name, UnusableReason));

        byte[] body;
        try
        {
            body = WriteBody(request);
        }
        catch (RequestTranslationException e)
        {
            return ProviderResponse.Failed(TranslationFailure(e.Kind, e.Message, e.Param));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // JsonElement.GetString and Utf8JsonWriter refuse a string with an escaped unpaired
            // surrogate (valid JSON, but no text): the request is bad, not the gateway.
            return ProviderResponse.Failed(TranslationFailure(FailureKind.FailRequest, "The request contains a string that is not valid Unicode text.", null));
        }

        using var message = new HttpRequestMessage(HttpMethod.Post, RequestUri(request));
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = s_json;
        message.Content = content;
        AddHeaders(message, request);

        var (response, failure) = await ProviderHttp.SendAsync(_client, message, Name, _readError, Time, cancellationToken).ConfigureAwait(false);
        if (response is null) return ProviderResponse.Failed(failure!);

        var keep = false;
        try
        {
            if (request.Stream)
            {
                var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                keep = true;
                return ProviderResponse.Streaming(OpenStream(request, response, stream));
            }

            var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return ReadCompletion(request, bytes);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
            {
                return ProviderResponse.Failed(ProviderFailure.Protocol(Name, "the body is not a readable answer: " + e.Message));
            }
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

    /// <summary>A request this provider's format cannot carry: 400 to the client, or (NextCandidate) a reason to try another model.</summary>
    private ProviderFailure TranslationFailure(FailureKind kind, string message, string? param) =>
        new(kind, FailureCause.UpstreamStatus, Name,
            kind == FailureKind.FailRequest ? message : $"Provider '{Name}' cannot take this request: {message}",
            StatusCodes.Status400BadRequest, ErrorTypes.InvalidRequest, null, param);

    /// <summary>An id for a chat completion the provider gave none of its own.</summary>
    public static string NewCompletionId() => Http.RandomIds.New("chatcmpl-", 24);

    /// <summary>An id for a tool call the provider gave none of its own (Gemini, older Ollama).</summary>
    public static string NewToolCallId() => Http.RandomIds.New("call_", 24);

    public void Dispose()
    {
        _client.Dispose();
        GC.SuppressFinalize(this);
    }
}
