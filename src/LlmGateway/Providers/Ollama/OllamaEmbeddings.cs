using System.Text.Json;
using LlmGateway.Embeddings;

namespace LlmGateway.Providers.Ollama;

/// <summary>
/// OpenAI embeddings to and from Ollama's <c>POST /api/embed</c>: <c>input</c> a string or an array of
/// strings, <c>embeddings</c> an array of vectors in input order, <c>prompt_eval_count</c> the tokens.
/// </summary>
public static class OllamaEmbeddings
{
    public static byte[] Write(ProviderRequest request)
    {
        var embeddings = request.Embeddings;
        if (embeddings.InputKind != EmbeddingInputKind.Text)
        {
            throw new RequestTranslationException("Ollama embeds text only; send 'input' as a string or an array of strings, not token ids.", "input");
        }
        return RequestTranslation.Write(embeddings.Body.Length + 64, (request.UpstreamModel, embeddings), static (w, s) =>
        {
            w.WriteStartObject();
            w.WriteString("model"u8, s.UpstreamModel);
            w.WritePropertyName("input"u8);
            // Both accepted shapes are Ollama's too: the client's value goes as it came.
            s.embeddings.Root.GetProperty("input"u8).WriteTo(w);
            if (s.embeddings.Dimensions is { } d) w.WriteNumber("dimensions"u8, d);
            w.WriteEndObject();
        });
    }

    public static ProviderResponse Read(string provider, ProviderRequest request, byte[] body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (OllamaResponses.String(root, "error"u8) is { } error)
        {
            return ProviderResponse.Failed(OllamaResponses.Classify(provider, 500, error, null));
        }
        var embeddings = request.Embeddings;
        using var answer = new EmbeddingsResponseBuilder(OllamaResponses.String(root, "model"u8) ?? request.UpstreamModel, embeddings.EncodingFormat, body.Length);
        foreach (var vector in root.GetProperty("embeddings"u8).EnumerateArray()) answer.Add(vector);
        if (answer.Count != embeddings.InputCount)
        {
            return ProviderResponse.Failed(ProviderFailure.Protocol(provider, $"{answer.Count} embeddings came back for {embeddings.InputCount} inputs"));
        }
        var (prompt, _) = OllamaResponses.Counts(root);
        var usage = new TokenUsage(prompt ?? embeddings.EstimatedPromptTokens, 0);
        return ProviderResponse.Completed(answer.Finish(usage), usage, null);
    }
}
