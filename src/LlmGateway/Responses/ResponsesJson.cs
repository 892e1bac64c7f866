using System.Text.Encodings.Web;
using System.Text.Json;

namespace LlmGateway.Responses;

/// <summary>JSON settings shared by the Responses translators.</summary>
internal static class ResponsesJson
{
    /// <summary>
    /// Relaxed escaping keeps text as the model wrote it (no \u0027 for an apostrophe); the bytes are
    /// JSON for an HTTP body or an SSE data line, never embedded in HTML. Validation stays on: every
    /// value written here is built by the gateway, and a mistake should fail a test, not a client.
    /// </summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A chat answer or chunk from the pipeline, parsed; null when it is not JSON (never expected, never thrown).</summary>
    public static JsonDocument? Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            return JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Ids of responses and their output items. A response id is <c>resp_</c> and 32 hex digits; its items
/// carry the same digits (<c>msg_…_0</c>, <c>fc_…_1</c>), so an item id says which response it came from.
/// </summary>
public static class ResponseIds
{
    public const int MaxLength = 128;

    public static string NewResponseId() => Http.RandomIds.New("resp_");

    /// <summary>The item at <paramref name="outputIndex"/> of a response: <c>msg_</c> or <c>fc_</c>, the response's digits, the index.</summary>
    public static string ItemId(string responseId, string prefix, int outputIndex) =>
        prefix + responseId.AsSpan("resp_".Length).ToString() + "_" + outputIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A call id for a tool call that came without one (some providers send none).</summary>
    public static string CallId(string responseId, int outputIndex) => ItemId(responseId, "call_", outputIndex);

    /// <summary>
    /// Whether <paramref name="id"/> can be a response id: <c>resp_</c> then 1 to 123 letters, digits,
    /// '-' or '_' (what a store key may hold). A well-formed id that is not stored is simply not found.
    /// </summary>
    public static bool IsResponseId(string id)
    {
        if (id.Length is <= 5 or > MaxLength || !id.StartsWith("resp_", StringComparison.Ordinal)) return false;
        foreach (var c in id.AsSpan(5))
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) return false;
        }
        return true;
    }
}
