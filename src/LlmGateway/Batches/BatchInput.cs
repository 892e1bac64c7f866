using System.Text.Json;
using LlmGateway.Http;

namespace LlmGateway.Batches;

/// <summary>
/// The items of a batch body: a JSON array of chat completion request objects, or JSON Lines (one
/// object per line) when the content type says so. Only the shape is checked here (each item is a
/// JSON object); whether an item is a good chat request is the chat pipeline's to say, per item.
/// Items are slices of the body, not copies.
/// </summary>
public static class BatchInput
{
    public static bool IsJsonLines(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return false;
        var semicolon = contentType.IndexOf(';');
        var mediaType = (semicolon < 0 ? contentType : contentType[..semicolon]).Trim();
        return mediaType.Equals("application/jsonl", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/x-ndjson", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/x-jsonlines", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Splits <paramref name="body"/> into its items, or says why the batch as a whole is refused.</summary>
    public static List<ArraySegment<byte>>? TryParse(ArraySegment<byte> body, bool jsonLines, int maxItems, out ApiError? error) =>
        jsonLines ? TryParseLines(body, maxItems, out error) : TryParseArray(body, maxItems, out error);

    private static List<ArraySegment<byte>>? TryParseArray(ArraySegment<byte> body, int maxItems, out ApiError? error)
    {
        var items = new List<ArraySegment<byte>>();
        var (from, to) = Trim(body, 0, body.Count);
        if (from == to)
        {
            error = Invalid("The batch body is empty; send a JSON array of chat completion requests, or JSON Lines with Content-Type application/jsonl.");
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                error = Invalid("The batch body must be a JSON array of chat completion requests (or JSON Lines with Content-Type application/jsonl).");
                return null;
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    error = Invalid($"Item {items.Count} of the batch is not a JSON object; each item is a chat completion request body.", $"[{items.Count}]");
                    return null;
                }
                if (items.Count == maxItems)
                {
                    error = TooMany(maxItems);
                    return null;
                }
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                items.Add(body.Slice(start, (int)reader.BytesConsumed - start));
            }
            // Anything after the array's end is a malformed body, not a second batch (the reader throws).
            reader.Read();
        }
        catch (JsonException e)
        {
            error = Invalid($"The batch body is not valid JSON: {e.Message}", code: ErrorCodes.InvalidJson);
            return null;
        }
        if (items.Count == 0)
        {
            error = Invalid("The batch has no items.");
            return null;
        }
        error = null;
        return items;
    }

    private static List<ArraySegment<byte>>? TryParseLines(ArraySegment<byte> body, int maxItems, out ApiError? error)
    {
        var items = new List<ArraySegment<byte>>();
        var span = body.AsSpan();
        var line = 0;
        var start = 0;
        while (start < span.Length)
        {
            line++;
            var newline = span[start..].IndexOf((byte)'\n');
            var end = newline < 0 ? span.Length : start + newline;
            var (from, to) = Trim(span, start, end);
            start = end + 1;
            if (from == to) continue; // blank lines (and a final newline) are allowed

            var text = body.Slice(from, to - from);
            if (!IsOneObject(text, out var reason))
            {
                error = Invalid($"Line {line} of the batch is not a JSON object{reason}; each line is one chat completion request body.", $"line {line}");
                return null;
            }
            if (items.Count == maxItems)
            {
                error = TooMany(maxItems);
                return null;
            }
            items.Add(text);
        }
        if (items.Count == 0)
        {
            error = Invalid("The batch has no items.");
            return null;
        }
        error = null;
        return items;
    }

    private static (int From, int To) Trim(ReadOnlySpan<byte> span, int from, int to)
    {
        while (from < to && IsSpace(span[from])) from++;
        while (to > from && IsSpace(span[to - 1])) to--;
        return (from, to);
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static bool IsOneObject(ArraySegment<byte> text, out string reason)
    {
        try
        {
            var reader = new Utf8JsonReader(text, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                reason = "";
                return false;
            }
            reader.Skip();
            if (reader.Read())
            {
                reason = " (it has content after the object)";
                return false;
            }
            reason = "";
            return true;
        }
        catch (JsonException e)
        {
            reason = $" ({e.Message})";
            return false;
        }
    }

    /// <summary>Does the request body ask for a stream? Batches answer whole responses only.</summary>
    public static bool AsksForStream(ReadOnlySpan<byte> item) =>
        JsonScanner.TryFind(item, "stream"u8, out var reader, maxDepth: 256) && reader.TokenType == JsonTokenType.True;

    private static ApiError Invalid(string message, string? param = null, string? code = null) =>
        ApiError.InvalidRequest(message, param, code ?? BatchErrorCodes.InvalidBatch);

    private static ApiError TooMany(int maxItems) =>
        ApiError.InvalidRequest($"The batch has more than {maxItems} items (Gateway:Batches:MaxItems); split it.", code: BatchErrorCodes.TooManyItems);
}

/// <summary>Error codes batches add to the contract's.</summary>
public static class BatchErrorCodes
{
    public const string InvalidBatch = "invalid_batch";
    public const string TooManyItems = "batch_too_large";
    public const string StreamNotSupported = "stream_not_supported_in_batch";
    public const string CostLimitReached = "batch_cost_limit_reached";
}
