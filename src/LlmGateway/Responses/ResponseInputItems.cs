using System.Buffers;
using System.Globalization;
using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Responses;

/// <summary>
/// The input items of a stored response, as <c>GET /v1/responses/{id}/input_items</c> lists them: the
/// request's own <c>input</c> (a string is one user message), each item as the client sent it plus what
/// OpenAI's listing always has: an <c>id</c> (the client's, else one made from the response id), a
/// <c>type</c>, message content as parts, and a <c>status</c>. The items of the responses it continued
/// from (<c>previous_response_id</c>) are listed under those responses.
/// </summary>
public static class ResponseInputItems
{
    public const int DefaultLimit = 20;
    public const int MaxLimit = 100;

    /// <summary>The items as a JSON array, for the store; <paramref name="input"/> was checked by <see cref="ResponsesRequest"/>.</summary>
    public static byte[] Write(JsonElement input, string responseId)
    {
        var buffer = new ArrayBufferWriter<byte>(input.ValueKind == JsonValueKind.String ? 256 : 1024);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartArray();
            if (input.ValueKind == JsonValueKind.String)
            {
                w.WriteStartObject();
                w.WriteString("id"u8, Id(responseId, "msg_", 0));
                w.WriteString("type"u8, "message"u8);
                w.WriteString("role"u8, "user"u8);
                w.WriteStartArray("content"u8);
                WriteTextPart(w, "input_text"u8, input);
                w.WriteEndArray();
                w.WriteString("status"u8, "completed"u8);
                w.WriteEndObject();
            }
            else if (input.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in input.EnumerateArray()) WriteItem(w, item, responseId, i++);
            }
            w.WriteEndArray();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteItem(Utf8JsonWriter w, JsonElement item, string responseId, int index)
    {
        var type = item.TryGetProperty("type"u8, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "message";
        var isMessage = type == "message";
        w.WriteStartObject();
        if (!item.TryGetProperty("id"u8, out var id) || id.ValueKind != JsonValueKind.String)
        {
            w.WriteString("id"u8, Id(responseId, isMessage ? "msg_" : type == "function_call" ? "fc_" : "fco_", index));
        }
        if (isMessage && t.ValueKind != JsonValueKind.String) w.WriteString("type"u8, "message"u8);
        foreach (var p in item.EnumerateObject())
        {
            if (p.NameEquals("id"u8) && p.Value.ValueKind != JsonValueKind.String) continue; // replaced by the id written above
            if (isMessage && p.NameEquals("content"u8) && p.Value.ValueKind == JsonValueKind.String)
            {
                // The short form ("content": "text") is listed as OpenAI lists it: as one text part.
                w.WriteStartArray("content"u8);
                var assistant = item.TryGetProperty("role"u8, out var role) && role.ValueEquals("assistant"u8);
                WriteTextPart(w, assistant ? "output_text"u8 : "input_text"u8, p.Value);
                w.WriteEndArray();
                continue;
            }
            p.WriteTo(w);
        }
        if (!item.TryGetProperty("status"u8, out _)) w.WriteString("status"u8, "completed"u8);
        w.WriteEndObject();
    }

    private static void WriteTextPart(Utf8JsonWriter w, ReadOnlySpan<byte> type, JsonElement text)
    {
        w.WriteStartObject();
        w.WriteString("type"u8, type);
        w.WritePropertyName("text"u8);
        text.WriteTo(w);
        w.WriteEndObject();
    }

    /// <summary>An id for an input item that came without one: unique within the response, apart from its output items'.</summary>
    private static string Id(string responseId, string prefix, int index) =>
        prefix + responseId.AsSpan("resp_".Length).ToString() + "_in" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>The query of a listing: <c>limit</c> (1 to 100, default 20), <c>order</c> (asc or desc, the default), <c>after</c> (an item id).</summary>
    public readonly record struct Query(int Limit, bool Descending, string? After);

    /// <summary>Reads and checks the query; the 400 that names the bad parameter otherwise.</summary>
    public static ApiError? ReadQuery(IQueryCollection query, out Query result)
    {
        result = new Query(DefaultLimit, true, null);
        var limit = DefaultLimit;
        if (query.TryGetValue("limit", out var l))
        {
            if (l.Count != 1 || !int.TryParse(l[0], NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit)
                return ApiError.InvalidRequest($"'limit' must be an integer from 1 to {MaxLimit}.", "limit");
        }
        var descending = true;
        if (query.TryGetValue("order", out var o))
        {
            if (o.Count != 1 || o[0] is not ("asc" or "desc")) return ApiError.InvalidRequest("'order' must be 'asc' or 'desc'.", "order");
            descending = o[0] == "desc";
        }
        string? after = null;
        if (query.TryGetValue("after", out var a))
        {
            if (a.Count != 1 || !HeaderValues.IsSafe(a[0] ?? "", ResponseIds.MaxLength * 2))
                return ApiError.InvalidRequest($"'after' must be the id of an input item (1 to {ResponseIds.MaxLength * 2} printable characters).", "after");
            after = a[0];
        }
        if (query.ContainsKey("before"))
        {
            return ApiError.InvalidRequest("'before' is not supported: page with 'after' (and 'order').", "before", "unsupported_parameter");
        }
        result = new Query(limit, descending, after);
        return null;
    }

    /// <summary>
    /// One page of the stored items (a JSON array) in OpenAI's list shape: <c>object</c> "list", <c>data</c>,
    /// <c>first_id</c>, <c>last_id</c> (null on an empty page), <c>has_more</c>; or the 400 for an
    /// <c>after</c> that is no item of this response.
    /// </summary>
    public static byte[]? Page(ReadOnlySpan<byte> items, Query query, out ApiError? error)
    {
        error = null;
        var reader = new Utf8JsonReader(items);
        using var doc = JsonDocument.ParseValue(ref reader);
        var all = new List<JsonElement>(doc.RootElement.GetArrayLength());
        foreach (var item in doc.RootElement.EnumerateArray()) all.Add(item);
        if (query.Descending) all.Reverse();

        var start = 0;
        if (query.After is { } after)
        {
            var at = all.FindIndex(item => item.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String && id.ValueEquals(after));
            if (at < 0)
            {
                error = ApiError.InvalidRequest($"'after' names no input item of this response ('{(after.Length <= 64 ? after : after[..64] + "…")}').", "after");
                return null;
            }
            start = at + 1;
        }
        var count = Math.Min(query.Limit, all.Count - start);
        var buffer = new ArrayBufferWriter<byte>(items.Length + 128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("object"u8, "list"u8);
            w.WriteStartArray("data"u8);
            for (var i = start; i < start + count; i++) all[i].WriteTo(w);
            w.WriteEndArray();
            if (count > 0)
            {
                w.WritePropertyName("first_id"u8);
                all[start].GetProperty("id"u8).WriteTo(w);
                w.WritePropertyName("last_id"u8);
                all[start + count - 1].GetProperty("id"u8).WriteTo(w);
            }
            else
            {
                w.WriteNull("first_id"u8);
                w.WriteNull("last_id"u8);
            }
            w.WriteBoolean("has_more"u8, start + count < all.Count);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
