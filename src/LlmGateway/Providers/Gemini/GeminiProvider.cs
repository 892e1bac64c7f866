using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Providers.Gemini;

/// <summary>
/// Google's Gemini API (<c>POST {BaseUrl}/v1beta/models/{model}:generateContent</c>, and
/// <c>:streamGenerateContent?alt=sse</c> for streams; key in <c>x-goog-api-key</c>) behind the OpenAI
/// Chat Completions format; embeddings through <c>:embedContent</c> and <c>:batchEmbedContents</c>.
/// </summary>
public sealed class GeminiProvider(string name, ProviderOptions options, HttpMessageInvoker client, TimeProvider time)
    : NativeProvider(name, options, client, time)
{
    protected override Uri RequestUri(ProviderRequest request)
    {
        var method = request.Operation == RequestOperation.Embeddings ? GeminiEmbeddings.Method(request.Embeddings)
            : request.Stream ? ":streamGenerateContent?alt=sse"
            : ":generateContent";
        return new Uri($"{BaseUrl}/v1beta/models/{Uri.EscapeDataString(ModelId(request))}{method}");
    }

    /// <summary>Model names are sometimes configured as Google writes them in responses ("models/gemini-…").</summary>
    private static string ModelId(ProviderRequest request) =>
        request.UpstreamModel.StartsWith("models/", StringComparison.Ordinal) ? request.UpstreamModel[7..] : request.UpstreamModel;

    /// <summary>
    /// candidateCount answers n in one call, prompt billed once. A stream of several candidates
    /// interleaves them in each event, which the stream translator does not take apart: streams fan out.
    /// </summary>
    protected override bool HasNativeChoices(ProviderRequest request) => !request.Stream;

    protected override byte[] WriteBody(ProviderRequest request) => request.Operation == RequestOperation.Embeddings
        ? GeminiEmbeddings.Write(request, "models/" + ModelId(request))
        : GeminiRequestWriter.Write(request);

    protected override void AddHeaders(HttpRequestMessage message, ProviderRequest request)
    {
        // The header, never the ?key= query parameter: URLs end up in logs and proxies.
        if (ApiKey is { Length: > 0 }) message.Headers.TryAddWithoutValidation("x-goog-api-key", ApiKey);
    }

    protected override ProviderFailure ReadError(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter) =>
        GeminiResponses.ReadError(Name, status, body, retryAfter);

    protected override ProviderResponse ReadCompletion(ProviderRequest request, byte[] body) => request.Operation == RequestOperation.Embeddings
        ? GeminiEmbeddings.Read(Name, request, body)
        : GeminiResponses.ReadCompletion(Name, request, body, Time.GetUtcNow().ToUnixTimeSeconds());

    protected override ChatStream OpenStream(ProviderRequest request, HttpResponseMessage response, Stream body) =>
        new GeminiChatStream(Name, request, response, body, Time);
}

public sealed class GeminiProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.Gemini;
    public IChatProvider Create(string name, ProviderOptions options) => new GeminiProvider(name, options, ProviderHttp.CreateInvoker(options), time);
}
