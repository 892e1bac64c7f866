using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Embeddings;

namespace LlmGateway.Providers.Gemini;

/// <summary>
/// OpenAI embeddings to and from Gemini's <c>:embedContent</c> (one input) and
/// <c>:batchEmbedContents</c> (several, answered in the same order). Gemini reports no token usage for
/// embeddings, so the gateway's estimate is what is recorded and priced.
/// </summary>
public static class GeminiEmbeddings
{
    public static string Method(EmbeddingsRequest request) => request.InputCount == 1 ? ":embedContent" : ":batchEmbedContents";

    public static byte[] Write(ProviderRequest request, string modelPath)
    {
        var embeddings = request.Embeddings;
        if (embeddings.InputKind != EmbeddingInputKind.Text)
        {
            throw new RequestTranslationException("Gemini embeds text only; send 'input' as a string or an array of strings, not token ids.", "input");
        }
        var texts = embeddings.Texts();
        return RequestTranslation.Write(embeddings.Body.Length + 64, (texts, embeddings.Dimensions, modelPath), static (w, s) =>
        {
            w.WriteStartObject();
            if (s.texts.Length == 1)
            {
                WriteContent(w, s.texts[0], s.Dimensions);
            }
            else
            {
                w.WriteStartArray("requests"u8);
                foreach (var text in s.texts)
                {
                    w.WriteStartObject();
                    w.WriteString("model"u8, s.modelPath);
                    WriteContent(w, text, s.Dimensions);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        });
    }

    private static void WriteContent(Utf8JsonWriter w, string text, int? dimensions)
    {
        w.WriteStartObject("content"u8);
        w.WriteStartArray("parts"u8);
        w.WriteStartObject();
        w.WriteString("text"u8, text);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
        if (dimensions is { } d) w.WriteNumber("outputDimensionality"u8, d);
    }

    public static ProviderResponse Read(string provider, ProviderRequest request, byte[] body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        var embeddings = request.Embeddings;
        using var answer = new EmbeddingsResponseBuilder(request.UpstreamModel, embeddings.EncodingFormat, body.Length);
        if (root.TryGetProperty("embedding"u8, out var single))
        {
            answer.Add(single.GetProperty("values"u8));
        }
        else
        {
            foreach (var e in root.GetProperty("embeddings"u8).EnumerateArray()) answer.Add(e.GetProperty("values"u8));
        }
        if (answer.Count != embeddings.InputCount)
        {
            return ProviderResponse.Failed(ProviderFailure.Protocol(provider, $"{answer.Count} embeddings came back for {embeddings.InputCount} inputs"));
        }
        var usage = new TokenUsage(embeddings.EstimatedPromptTokens, 0);
        return ProviderResponse.Completed(answer.Finish(usage), usage, null);
    }
}
