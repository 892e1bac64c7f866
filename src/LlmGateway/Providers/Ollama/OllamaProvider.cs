using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;

namespace LlmGateway.Providers.Ollama;

/// <summary>
/// Ollama's native API (<c>POST {BaseUrl}/api/chat</c>, NDJSON streaming; <c>/api/embed</c> for
/// embeddings) behind the OpenAI Chat Completions and Embeddings formats. Local by default and needs no key; when ApiKeyEnv is set (Ollama behind an
/// authenticating proxy, or ollama.com) the key goes as a bearer token.
/// </summary>
public sealed class OllamaProvider(string name, ProviderOptions options, HttpMessageInvoker client, TimeProvider time)
    : NativeProvider(name, options, client, time)
{
    private readonly Uri _chatUri = new(options.BaseUrl!.TrimEnd('/') + "/api/chat");
    private readonly Uri _embedUri = new(options.BaseUrl!.TrimEnd('/') + "/api/embed");
    private readonly Uri _tagsUri = new(options.BaseUrl!.TrimEnd('/') + "/api/tags");

    protected override Uri RequestUri(ProviderRequest request) => request.Operation == RequestOperation.Embeddings ? _embedUri : _chatUri;

    protected override byte[] WriteBody(ProviderRequest request) => request.Operation == RequestOperation.Embeddings
        ? OllamaEmbeddings.Write(request)
        : OllamaRequestWriter.Write(request);

    protected override void AddHeaders(HttpRequestMessage message, ProviderRequest request) => AddKey(message);

    private void AddKey(HttpRequestMessage message)
    {
        if (ApiKey is { Length: > 0 }) message.Headers.Authorization = new("Bearer", ApiKey);
    }

    protected override ProviderFailure ReadError(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter) =>
        OllamaResponses.ReadError(Name, status, body, retryAfter);

    protected override ProviderResponse ReadCompletion(ProviderRequest request, byte[] body) => request.Operation == RequestOperation.Embeddings
        ? OllamaEmbeddings.Read(Name, request, body)
        : OllamaResponses.ReadCompletion(Name, request, body, Time.GetUtcNow().ToUnixTimeSeconds());

    protected override ChatStream OpenStream(ProviderRequest request, HttpResponseMessage response, Stream body) =>
        new OllamaChatStream(Name, request, response, body, Time);

    /// <summary>
    /// <c>GET {BaseUrl}/api/tags</c>: the models this server has pulled, or why it could not say. Cheap
    /// (no model is loaded), so it is the health probe for Ollama: the resilience capability's active
    /// probes call it on their own schedule and timeout (cancel <paramref name="cancellationToken"/>).
    /// </summary>
    public async Task<OllamaModelList> ListModelsAsync(CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, _tagsUri);
        AddKey(message);
        try
        {
            using var response = await Client.SendAsync(message, cancellationToken).ConfigureAwait(false);
            var body = await ProviderHttp.ReadBoundedAsync(response.Content, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return new OllamaModelList([], ReadError((int)response.StatusCode, body, null));
            }
            var names = new List<string>();
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("models"u8, out var models) && models.ValueKind == JsonValueKind.Array)
            {
                foreach (var model in models.EnumerateArray())
                {
                    if (OllamaResponses.String(model, "name"u8) is { } n) names.Add(n);
                }
            }
            return new OllamaModelList(names, null);
        }
        catch (JsonException e)
        {
            return new OllamaModelList([], ProviderFailure.Protocol(Name, "/api/tags is not JSON: " + e.Message));
        }
        catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
        {
            return new OllamaModelList([], ProviderHttp.FromException(Name, e));
        }
    }
}

/// <summary>The models an Ollama server has (names as <c>model:tag</c>), or the failure that says it is down.</summary>
public sealed record OllamaModelList(IReadOnlyList<string> Models, ProviderFailure? Failure)
{
    public bool IsHealthy => Failure is null;

    /// <summary>True when <paramref name="model"/> is pulled; Ollama treats a name without a tag as <c>:latest</c>.</summary>
    public bool Has(string model)
    {
        var wanted = model.Contains(':', StringComparison.Ordinal) ? model : model + ":latest";
        foreach (var m in Models)
        {
            if (string.Equals(m, wanted, StringComparison.Ordinal) || string.Equals(m, model, StringComparison.Ordinal)) return true;
        }
        return false;
    }
}

public sealed class OllamaProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.Ollama;
    public IChatProvider Create(string name, ProviderOptions options) => new OllamaProvider(name, options, ProviderHttp.CreateInvoker(options), time);
}
