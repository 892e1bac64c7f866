using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using LlmGateway.Providers;

namespace LlmGateway.Embeddings;

/// <summary>
/// Writes OpenAI's embeddings answer (<c>{"object":"list","data":[{"object":"embedding","index":0,
/// "embedding":…}],"model":…,"usage":{…}}</c>) for providers whose own format differs. With
/// <c>encoding_format: base64</c> each vector is its float32 values, little-endian, in base64: what
/// OpenAI sends and what its SDKs ask for by default.
/// </summary>
public sealed class EmbeddingsResponseBuilder : IDisposable
{
    private readonly ArrayBufferWriter<byte> _buffer;
    private readonly Utf8JsonWriter _w;
    private readonly string _model;
    private readonly bool _base64;
    private int _index;

    public EmbeddingsResponseBuilder(string model, string encodingFormat, int sizeHint = 4096)
    {
        _model = model;
        _base64 = encodingFormat == EmbeddingsRequest.Base64Format;
        _buffer = new ArrayBufferWriter<byte>(sizeHint);
        _w = new Utf8JsonWriter(_buffer);
        _w.WriteStartObject();
        _w.WriteString("object"u8, "list"u8);
        _w.WriteStartArray("data"u8);
    }

    public int Count => _index;

    /// <summary>Adds a vector given as a JSON array of numbers; as floats, the provider's digits are kept as sent.</summary>
    public void Add(JsonElement vector)
    {
        if (vector.ValueKind != JsonValueKind.Array) throw new FormatException("an embedding is not an array of numbers");
        StartItem();
        if (_base64)
        {
            var floats = ArrayPool<float>.Shared.Rent(Math.Max(vector.GetArrayLength(), 1));
            try
            {
                var n = 0;
                foreach (var v in vector.EnumerateArray()) floats[n++] = v.GetSingle();
                WriteBase64(floats.AsSpan(0, n));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(floats);
            }
        }
        else
        {
            foreach (var v in vector.EnumerateArray())
            {
                if (v.ValueKind != JsonValueKind.Number) throw new FormatException("an embedding holds something other than numbers");
            }
            vector.WriteTo(_w);
        }
        _w.WriteEndObject();
    }

    public void Add(ReadOnlySpan<float> vector)
    {
        StartItem();
        if (_base64)
        {
            WriteBase64(vector);
        }
        else
        {
            _w.WriteStartArray();
            foreach (var v in vector) _w.WriteNumberValue(v);
            _w.WriteEndArray();
        }
        _w.WriteEndObject();
    }

    public byte[] Finish(TokenUsage usage)
    {
        _w.WriteEndArray();
        _w.WriteString("model"u8, _model);
        _w.WriteStartObject("usage"u8);
        _w.WriteNumber("prompt_tokens"u8, usage.Prompt);
        _w.WriteNumber("total_tokens"u8, usage.Prompt);
        _w.WriteEndObject();
        _w.WriteEndObject();
        _w.Flush();
        return _buffer.WrittenSpan.ToArray();
    }

    private void StartItem()
    {
        _w.WriteStartObject();
        _w.WriteString("object"u8, "embedding"u8);
        _w.WriteNumber("index"u8, _index++);
        _w.WritePropertyName("embedding"u8);
    }

    private void WriteBase64(ReadOnlySpan<float> vector)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(Math.Max(vector.Length * sizeof(float), 1));
        try
        {
            for (var i = 0; i < vector.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), vector[i]);
            _w.WriteBase64StringValue(bytes.AsSpan(0, vector.Length * sizeof(float)));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    public void Dispose() => _w.Dispose();
}
