using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// Anthropic's Messages API (<c>POST {BaseUrl}/v1/messages</c>, key in <c>x-api-key</c>). A request that
/// came in on <c>/v1/messages</c> is sent as the client wrote it and answered as Anthropic answered
/// (<see cref="AnthropicNative"/>); every other request is translated from the OpenAI Chat Completions
/// format: requests, answers, streams, tool calls, usage and errors.
/// </summary>
public sealed class AnthropicProvider(string name, ProviderOptions options, HttpMessageInvoker client, TimeProvider time)
    : NativeProvider(name, options, client, time)
{
    /// <summary>The API version this translation is written against (anthropic-version header).</summary>
    public const string ApiVersion = "2023-06-01";

    private readonly Uri _messagesUri = new(options.BaseUrl!.TrimEnd('/') + "/v1/messages");

    public override string? NativeDialect => NativeDialects.AnthropicMessages;

    protected override Uri RequestUri(ProviderRequest request) => _messagesUri;

    protected override byte[] WriteBody(ProviderRequest request) =>
        request.Operation == RequestOperation.Embeddings
            // Start-up validation keeps the embeddings capability off Anthropic models; this is the backstop.
            ? throw new RequestTranslationException("Anthropic has no embeddings API.", "model", FailureKind.NextCandidate)
            : AnthropicNative.Of(request) is { } native ? AnthropicNative.WithModel(native.Body.Span, request.UpstreamModel)
            : AnthropicRequestWriter.Write(request);

    protected override void AddHeaders(HttpRequestMessage message, ProviderRequest request)
    {
        // The provider's own key, never the client's (the ingress forwards none of its key headers).
        if (ApiKey is { Length: > 0 }) message.Headers.TryAddWithoutValidation("x-api-key", ApiKey);
        var version = ApiVersion;
        if (AnthropicNative.Of(request) is { } native)
        {
            // The client's version and betas: its body was written against them (the translation is written against ApiVersion).
            foreach (var (name, value) in native.Headers)
            {
                if (string.Equals(name, "anthropic-version", StringComparison.OrdinalIgnoreCase)) version = value;
                else message.Headers.TryAddWithoutValidation(name, value);
            }
        }
        message.Headers.TryAddWithoutValidation("anthropic-version", version);
    }

    protected override ProviderFailure ReadError(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter) =>
        AnthropicResponses.ReadError(Name, status, body, retryAfter);

    protected override ProviderResponse ReadCompletion(ProviderRequest request, byte[] body) => AnthropicNative.Of(request) is not null
        ? AnthropicNative.ReadCompletion(Name, request, body)
        : AnthropicResponses.ReadCompletion(Name, request, body, Time.GetUtcNow().ToUnixTimeSeconds());

    protected override ChatStream OpenStream(ProviderRequest request, HttpResponseMessage response, Stream body) => AnthropicNative.Of(request) is not null
        ? new AnthropicNativeStream(Name, request, response, body)
        : new AnthropicChatStream(Name, request, response, body, Time);
}

public sealed class AnthropicProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.Anthropic;
    public IChatProvider Create(string name, ProviderOptions options) => new AnthropicProvider(name, options, ProviderHttp.CreateInvoker(options), time);
}
