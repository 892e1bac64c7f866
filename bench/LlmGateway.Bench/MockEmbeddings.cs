using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Bench;

/// <summary>
/// A zero-latency OpenAI <c>POST /v1/embeddings</c>: one small fixed vector per input (float or base64,
/// as <c>encoding_format</c> asks, base64 being what the official SDKs send) and the usage OpenAI reports.
/// The vector is short on purpose: the benchmark measures what the hop costs, not moving 6 kB vectors.
/// </summary>
internal static class MockEmbeddings
{
    private const int Dimensions = 16;

    private static readonly byte[] s_head = "{\"object\":\"list\",\"data\":["u8.ToArray();
    private static readonly byte[] s_itemHead = "{\"object\":\"embedding\",\"index\":"u8.ToArray();
    private static readonly byte[] s_floatVector;
    private static readonly byte[] s_base64Vector;
    private static readonly byte[] s_usageHead = "],\"model\":\"bench-embed\",\"usage\":{\"prompt_tokens\":"u8.ToArray();
    private static readonly byte[] s_usageMiddle = ",\"total_tokens\":"u8.ToArray();
    private static readonly byte[] s_usageTail = "}}"u8.ToArray();

#pragma warning disable CA1810 // the two renderings of one vector are built together
    static MockEmbeddings()
#pragma warning restore CA1810
    {
        var values = new float[Dimensions];
        for (var i = 0; i < Dimensions; i++) values[i] = MathF.Round(MathF.Sin(i + 1) / 4, 6);
        var text = new StringBuilder(",\"embedding\":[");
        var raw = new byte[Dimensions * sizeof(float)];
        for (var i = 0; i < Dimensions; i++)
        {
            if (i > 0) text.Append(',');
            text.Append(values[i].ToString("R", CultureInfo.InvariantCulture));
            BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * sizeof(float)), values[i]);
        }
        s_floatVector = Encoding.UTF8.GetBytes(text.Append("]}").ToString());
        s_base64Vector = Encoding.UTF8.GetBytes(",\"embedding\":\"" + Convert.ToBase64String(raw) + "\"}");
    }

    public static async Task HandleAsync(HttpContext http)
    {
        var aborted = http.RequestAborted;
        try
        {
            var reader = http.Request.BodyReader;
            var read = await MockUpstream.ReadWholeBodyAsync(reader, aborted).ConfigureAwait(false);
            var body = Scan(read.Buffer);
            reader.AdvanceTo(read.Buffer.End);
            if (body.Inputs <= 0)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            var vector = body.Base64 ? s_base64Vector : s_floatVector;
            var length = s_head.Length + s_usageHead.Length + Digits(body.Tokens) + s_usageMiddle.Length + Digits(body.Tokens) + s_usageTail.Length
                + (body.Inputs - 1); // commas between items
            for (var i = 0; i < body.Inputs; i++) length += s_itemHead.Length + Digits(i) + vector.Length;

            var response = http.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/json";
            response.ContentLength = length;
            var writer = response.BodyWriter;
            writer.Write(s_head);
            for (var i = 0; i < body.Inputs; i++)
            {
                if (i > 0) writer.Write(","u8);
                writer.Write(s_itemHead);
                WriteInt(writer, i);
                writer.Write(vector);
            }
            writer.Write(s_usageHead);
            WriteInt(writer, body.Tokens);
            writer.Write(s_usageMiddle);
            WriteInt(writer, body.Tokens);
            writer.Write(s_usageTail);
            await writer.FlushAsync(aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away: nothing to do.
        }
    }

    internal readonly record struct EmbeddingsBody(int Inputs, int Tokens, bool Base64);

    /// <summary>
    /// How many vectors the answer needs and the tokens to report: <c>input</c> as a string, strings,
    /// token ids or lists of token ids (a token per 4 characters of text, OpenAI's rule of thumb).
    /// Inputs 0 means the body is not an embeddings request.
    /// </summary>
    internal static EmbeddingsBody Scan(ReadOnlySequence<byte> body)
    {
        var inputs = 0;
        var tokens = 0;
        var base64 = false;
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("input"u8))
                {
                    reader.Read();
                    (inputs, tokens) = ScanInput(ref reader);
                }
                else if (reader.ValueTextEquals("encoding_format"u8))
                {
                    reader.Read();
                    base64 = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("base64"u8);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return new EmbeddingsBody(inputs, tokens, base64);
        }
        catch (JsonException)
        {
            return default;
        }
    }

    private static (int Inputs, int Tokens) ScanInput(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String) return (1, TextTokens(ref reader));
        if (reader.TokenType != JsonTokenType.StartArray) return (0, 0);
        int inputs = 0, tokens = 0;
        var tokenIds = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    inputs++;
                    tokens += TextTokens(ref reader);
                    break;
                case JsonTokenType.Number:
                    // One input given as token ids.
                    tokenIds = true;
                    tokens++;
                    break;
                case JsonTokenType.StartArray:
                    inputs++;
                    while (reader.Read() && reader.TokenType == JsonTokenType.Number) tokens++;
                    break;
                default:
                    return (0, 0);
            }
        }
        return (tokenIds ? inputs + 1 : inputs, tokens);
    }

    private static int TextTokens(ref Utf8JsonReader reader)
    {
        var bytes = reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length;
        return Math.Max(1, (bytes + 3) / 4);
    }

    private static int Digits(int n)
    {
        var digits = 1;
        while (n >= 10)
        {
            n /= 10;
            digits++;
        }
        return digits;
    }

    private static void WriteInt(PipeWriter writer, int value)
    {
        var span = writer.GetSpan(11);
        Utf8Formatter.TryFormat(value, span, out var n);
        writer.Advance(n);
    }
}
