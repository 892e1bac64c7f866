using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Providers.Anthropic;

/// <summary>
/// Anthropic's Messages API (<c>POST {BaseUrl}/v1/messages</c>, key in <c>x-api-key</c>), behind the
/// OpenAI Chat Completions format: requests, answers, streams, tool calls, usage and errors translated.
/// </summary>
public sealed class AnthropicProvider(string name, ProviderOptions options, HttpClient client, TimeProvider time)
    : NativeProvider(name, options, client, time)
{
    /// <summary>The API version this translation is written against (anthropic-version header).</summary>
    public const string ApiVersion = "2023-06-01";

    private readonly Uri _messagesUri = new(options.BaseUrl!.TrimEnd('/') + "/v1/messages");

    protected override Uri RequestUri(ProviderRequest request) => _messagesUri;

    protected override byte[] WriteBody(ProviderRequest request) => request.Operation == RequestOperation.Embeddings
        // Start-up validation keeps the embeddings capability off Anthropic models; this is the backstop.
        ? throw new RequestTranslationException("Anthropic has no embeddings API.", "model", FailureKind.NextCandidate)
        : AnthropicRequestWriter.Write(request);

    protected override void AddHeaders(HttpRequestMessage message)
    {
        if (ApiKey is { Length: > 0 }) message.Headers.TryAddWithoutValidation("x-api-key", ApiKey);
        message.Headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
    }

    protected override ProviderFailure ReadError(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter) =>
        AnthropicResponses.ReadError(Name, status, body, retryAfter);

    protected override ProviderResponse ReadCompletion(ProviderRequest request, byte[] body) =>
        AnthropicResponses.ReadCompletion(Name, request, body, Time.GetUtcNow().ToUnixTimeSeconds());

    protected override ChatStream OpenStream(ProviderRequest request, HttpResponseMessage response, Stream body) =>
        new AnthropicChatStream(Name, request, response, body, Time);
}

public sealed class AnthropicProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.Anthropic;
    public IChatProvider Create(string name, ProviderOptions options) => new AnthropicProvider(name, options, ProviderHttp.CreateClient(options), time);
}
