using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LlmGateway.ChatCompletions;

namespace LlmGateway.Providers.OpenAi;

/// <summary>
/// The client's body as an OpenAI-compatible upstream receives it: every field copied as it came,
/// except the model (renamed to the upstream model), stream_options (usage always requested on
/// streams, so the gateway always knows what a stream cost) and the gateway's own metadata.task_type.
/// The fields kept are copied as raw bytes out of the client's body (where the request's reader saw the
/// model, or, when more changes, from its document), not written again token by token: the upstream gets
/// the client's own spacing and escapes.
/// </summary>
public static class OpenAiRequestWriter
{
    /// <summary>Printable ASCII but the quote and the backslash: a model name of only these is its own JSON text.</summary>
    private static readonly SearchValues<char> s_plain = SearchValues.Create(
        " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>The chat body for the upstream, in a pooled buffer the provider's request message gives back when disposed.</summary>
    public static PooledJsonContent Content(ChatRequest chat, string upstreamModel) =>
        PooledJsonContent.Write(chat.Body.Length + 64, (chat, upstreamModel), static (output, s) => Write(output, s.chat, s.upstreamModel));

    /// <summary>An embeddings body: the client's, with only the model renamed.</summary>
    public static PooledJsonContent EmbeddingsContent(GatewayRequest request, string upstreamModel) =>
        PooledJsonContent.Write(request.Body.Length + 64, (request, upstreamModel), static (output, s) => WriteEmbeddings(output, s.request, s.upstreamModel));

    private static void WriteEmbeddings(IBufferWriter<byte> output, GatewayRequest request, string upstreamModel)
    {
        var body = new ObjectSplice(output, request.Body.Span);
        foreach (var p in request.Root.EnumerateObject())
        {
            if (p.NameEquals("model"u8)) WriteModel(output, ref body, upstreamModel);
            else body.Keep(p);
        }
        body.End();
    }

    public static void Write(IBufferWriter<byte> output, ChatRequest chat, string upstreamModel)
    {
        var client = chat.Body.Span;
        // Most bodies only need their model renamed (and a stream, usage asked for): the two runs of properties around
        // the model, from where the request's reader saw them, without parsing the body into a document. The splice
        // below would write the same bytes.
        if ((!chat.Stream || !chat.HasStreamOptions) && chat.MetadataTaskType is null && chat.TryGetModelSplice(out var before, out var after))
        {
            output.Write("{"u8);
            if (!client[before].IsEmpty)
            {
                output.Write(client[before]);
                output.Write(","u8);
            }
            output.Write("\"model\":"u8);
            WriteModelValue(output, upstreamModel);
            if (!client[after].IsEmpty)
            {
                output.Write(","u8);
                output.Write(client[after]);
            }
            if (chat.Stream) output.Write(",\"stream_options\":{\"include_usage\":true}"u8);
            output.Write("}"u8);
            return;
        }
        var body = new ObjectSplice(output, client);
        var wroteStreamOptions = false;
        foreach (var p in chat.Root.EnumerateObject())
        {
            if (p.NameEquals("model"u8))
            {
                WriteModel(output, ref body, upstreamModel);
            }
            else if (chat.Stream && p.NameEquals("stream_options"u8))
            {
                body.Start("\"stream_options\":"u8);
                WriteStreamOptions(output, client, p.Value);
                wroteStreamOptions = true;
            }
            else if (chat.MetadataTaskType is not null && p.NameEquals("metadata"u8))
            {
                WriteMetadataWithoutTaskType(output, ref body, client, p.Value);
            }
            else
            {
                body.Keep(p);
            }
        }
        if (chat.Stream && !wroteStreamOptions)
        {
            body.Start("\"stream_options\":"u8);
            output.Write("{\"include_usage\":true}"u8);
        }
        body.End();
    }

    private static void WriteModel(IBufferWriter<byte> output, ref ObjectSplice body, string upstreamModel)
    {
        body.Start("\"model\":"u8);
        WriteModelValue(output, upstreamModel);
    }

    private static void WriteModelValue(IBufferWriter<byte> output, string upstreamModel)
    {
        if (upstreamModel.AsSpan().ContainsAnyExcept(s_plain))
        {
            // Rare (configured names are plain words): escaped as JSON needs, made per call. Relaxed escaping
            // keeps the name as written (no \u0027 for an apostrophe); the body is never embedded in HTML.
            output.Write("\""u8);
            output.Write(JsonEncodedText.Encode(upstreamModel, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).EncodedUtf8Bytes);
            output.Write("\""u8);
            return;
        }
        var span = output.GetSpan(upstreamModel.Length + 2);
        span[0] = (byte)'"';
        var written = Encoding.ASCII.GetBytes(upstreamModel, span[1..]);
        span[written + 1] = (byte)'"';
        output.Advance(written + 2);
    }

    private static void WriteStreamOptions(IBufferWriter<byte> output, ReadOnlySpan<byte> client, JsonElement existing)
    {
        var options = new ObjectSplice(output, client);
        if (existing.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in existing.EnumerateObject())
            {
                if (p.NameEquals("include_usage"u8)) options.Leave();
                else options.Keep(p);
            }
        }
        options.Start("\"include_usage\":"u8);
        output.Write("true"u8);
        options.End();
    }

    /// <summary>task_type is the gateway's; the rest of metadata is the upstream's business (OpenAI stores it).</summary>
    private static void WriteMetadataWithoutTaskType(IBufferWriter<byte> output, ref ObjectSplice body, ReadOnlySpan<byte> client, JsonElement metadata)
    {
        var others = 0;
        foreach (var p in metadata.EnumerateObject())
        {
            if (!p.NameEquals("task_type"u8)) others++;
        }
        if (others == 0)
        {
            body.Leave();
            return;
        }
        body.Start("\"metadata\":"u8);
        var kept = new ObjectSplice(output, client);
        foreach (var p in metadata.EnumerateObject())
        {
            if (p.NameEquals("task_type"u8)) kept.Leave();
            else kept.Keep(p);
        }
        kept.End();
    }

    /// <summary>
    /// A JSON object written as one of the client's with some of its properties left out or replaced: the
    /// properties kept are copied out of <c>client</c> as they came, a run of neighbours in one copy (the
    /// commas and spacing between them included); a property written instead starts with <see cref="Start"/>,
    /// after which the caller writes its value.
    /// </summary>
    private ref struct ObjectSplice
    {
        private readonly IBufferWriter<byte> _output;
        private readonly ReadOnlySpan<byte> _client;
        private int _runStart;
        private int _runEnd;
        private bool _wroteAny;

        public ObjectSplice(IBufferWriter<byte> output, ReadOnlySpan<byte> client)
        {
            _output = output;
            _client = client;
            _runStart = -1;
            output.Write("{"u8);
        }

        /// <summary>Keeps <paramref name="property"/> (of an object in <c>client</c>) as it came.</summary>
        public void Keep(JsonProperty property)
        {
            var name = JsonMarshal.GetRawUtf8PropertyName(property);
            var value = JsonMarshal.GetRawUtf8Value(property.Value);
            // The request's document is parsed over its body without a copy: its raw spans lie inside it.
            if (!_client.Overlaps(name, out var nameAt) || !_client.Overlaps(value, out var valueAt))
            {
                throw new InvalidOperationException("The request's document is not over its body.");
            }
            if (_runStart < 0) _runStart = nameAt - 1; // the name's opening quote
            _runEnd = valueAt + value.Length;
        }

        /// <summary>Leaves a property out: the run of kept ones before it ends there.</summary>
        public void Leave() => EndRun();

        /// <summary>Starts a property the caller writes: <paramref name="nameAndColon"/>, after a comma where one is due.</summary>
        public void Start(ReadOnlySpan<byte> nameAndColon)
        {
            EndRun();
            if (_wroteAny) _output.Write(","u8);
            _output.Write(nameAndColon);
            _wroteAny = true;
        }

        public void End()
        {
            EndRun();
            _output.Write("}"u8);
        }

        private void EndRun()
        {
            if (_runStart < 0) return;
            if (_wroteAny) _output.Write(","u8);
            _output.Write(_client[_runStart.._runEnd]);
            _wroteAny = true;
            _runStart = -1;
        }
    }
}
