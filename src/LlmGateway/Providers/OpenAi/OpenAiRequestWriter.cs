using System.Buffers;
using System.Text.Json;
using LlmGateway.ChatCompletions;

namespace LlmGateway.Providers.OpenAi;

/// <summary>
/// The client's body as an OpenAI-compatible upstream receives it: every field copied as it came,
/// except the model (renamed to the upstream model), stream_options (usage always requested on
/// streams, so the gateway always knows what a stream cost) and the gateway's own metadata.task_type.
/// </summary>
public static class OpenAiRequestWriter
{
    /// <summary>
    /// Relaxed escaping keeps the forwarded text as the client wrote it (no \u0027 for an apostrophe);
    /// the bytes are JSON for an HTTP body, never embedded in HTML.
    /// </summary>
    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        SkipValidation = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The chat body for the upstream, in a pooled buffer the provider's request message gives back when disposed.</summary>
    public static PooledJsonContent Content(ChatRequest chat, string upstreamModel) =>
        PooledJsonContent.Write(chat.Body.Length + 64, s_writerOptions, (chat, upstreamModel), static (w, s) => Write(w, s.chat, s.upstreamModel));

    /// <summary>An embeddings body: the client's, with only the model renamed.</summary>
    public static PooledJsonContent EmbeddingsContent(GatewayRequest request, string upstreamModel) =>
        PooledJsonContent.Write(request.Body.Length + 64, s_writerOptions, (request, upstreamModel), static (w, s) => WriteEmbeddings(w, s.request, s.upstreamModel));

    private static void WriteEmbeddings(Utf8JsonWriter w, GatewayRequest request, string upstreamModel)
    {
        w.WriteStartObject();
        foreach (var p in request.Root.EnumerateObject())
        {
            if (p.NameEquals("model"u8)) w.WriteString("model"u8, upstreamModel);
            else p.WriteTo(w);
        }
        w.WriteEndObject();
    }

    public static void Write(Utf8JsonWriter w, ChatRequest chat, string upstreamModel)
    {
        var wroteStreamOptions = false;
        w.WriteStartObject();
        foreach (var p in chat.Root.EnumerateObject())
        {
            if (p.NameEquals("model"u8))
            {
                w.WriteString("model"u8, upstreamModel);
            }
            else if (p.NameEquals("stream_options"u8) && chat.Stream)
            {
                WriteStreamOptions(w, p.Value);
                wroteStreamOptions = true;
            }
            else if (p.NameEquals("metadata"u8) && chat.MetadataTaskType is not null)
            {
                WriteMetadataWithoutTaskType(w, p.Value);
            }
            else
            {
                p.WriteTo(w);
            }
        }
        if (chat.Stream && !wroteStreamOptions)
        {
            WriteStreamOptions(w, default);
        }
        w.WriteEndObject();
    }

    private static void WriteStreamOptions(Utf8JsonWriter w, JsonElement existing)
    {
        w.WriteStartObject("stream_options"u8);
        if (existing.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in existing.EnumerateObject())
            {
                if (!p.NameEquals("include_usage"u8)) p.WriteTo(w);
            }
        }
        w.WriteBoolean("include_usage"u8, true);
        w.WriteEndObject();
    }

    /// <summary>task_type is the gateway's; the rest of metadata is the upstream's business (OpenAI stores it).</summary>
    private static void WriteMetadataWithoutTaskType(Utf8JsonWriter w, JsonElement metadata)
    {
        var others = 0;
        foreach (var p in metadata.EnumerateObject())
        {
            if (!p.NameEquals("task_type"u8)) others++;
        }
        if (others == 0) return;
        w.WriteStartObject("metadata"u8);
        foreach (var p in metadata.EnumerateObject())
        {
            if (!p.NameEquals("task_type"u8)) p.WriteTo(w);
        }
        w.WriteEndObject();
    }
}
