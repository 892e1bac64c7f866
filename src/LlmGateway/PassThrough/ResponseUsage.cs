using System.Text.Json;
using LlmGateway.Providers;

namespace LlmGateway.PassThrough;

/// <summary>What a forwarded JSON answer says about itself: the model that answered and the tokens used.</summary>
public readonly record struct ResponseUsage(string? Model, TokenUsage Usage)
{
    /// <summary>
    /// Reads the top-level <c>model</c> and <c>usage</c> of a JSON body. Chat-style endpoints count
    /// <c>prompt_tokens/completion_tokens</c>; /v1/responses, audio and images count
    /// <c>input_tokens/output_tokens</c>; where only <c>total_tokens</c> and one side are given, the
    /// other side is the difference. Anything unreadable (not JSON, an array, cut off) reads as nothing:
    /// the answer has already gone to the client untouched, this only feeds the record.
    /// </summary>
    public static ResponseUsage Read(ReadOnlySpan<byte> json) => ReadBody(json, nestedResponse: false);

    /// <summary>
    /// Reads one streamed event's JSON (an SSE <c>data:</c> line): a chat-style final chunk carries
    /// <c>model</c> and <c>usage</c> at the top like a JSON body; the Responses API's
    /// <c>response.completed</c> (<c>incomplete</c>, <c>failed</c>) events carry them in
    /// <c>response.model</c> and <c>response.usage</c>. Where both are present the nested ones win.
    /// </summary>
    public static ResponseUsage ReadEvent(ReadOnlySpan<byte> json) => ReadBody(json, nestedResponse: true);

    private static ResponseUsage ReadBody(ReadOnlySpan<byte> json, bool nestedResponse)
    {
        var found = new Found();
        try
        {
            var r = new Utf8JsonReader(json);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return default;
            ReadObject(ref r, nestedResponse, ref found);
        }
        catch (JsonException)
        {
            // Keep what was read before the bad part.
        }

        var (model, input, output, total, cached) = (found.Model, found.Input, found.Output, found.Total, found.Cached);
        if (input is null && output is null && total is null) return new ResponseUsage(model, default);
        var prompt = input ?? Math.Max(0, (total ?? 0) - (output ?? 0));
        var completion = output ?? Math.Max(0, (total ?? 0) - prompt);
        return new ResponseUsage(model, new TokenUsage(prompt, completion, Math.Min(cached ?? 0, prompt)));
    }

    /// <summary>What one object said; a nested <c>response</c> object's findings replace the outer ones it repeats.</summary>
    private struct Found
    {
        public string? Model;
        public int? Input, Output, Total, Cached;
    }

    private static void ReadObject(ref Utf8JsonReader r, bool nestedResponse, ref Found found)
    {
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("model"u8))
            {
                r.Read();
                if (r.TokenType == JsonTokenType.String) found.Model = r.GetString();
                else r.Skip();
            }
            else if (r.ValueTextEquals("usage"u8))
            {
                r.Read();
                if (r.TokenType == JsonTokenType.StartObject) ReadUsage(ref r, ref found.Input, ref found.Output, ref found.Total, ref found.Cached);
                else r.Skip();
            }
            else if (nestedResponse && r.ValueTextEquals("response"u8))
            {
                r.Read();
                if (r.TokenType != JsonTokenType.StartObject)
                {
                    r.Skip();
                    continue;
                }
                var inner = new Found();
                try
                {
                    ReadObject(ref r, nestedResponse: false, ref inner);
                }
                finally
                {
                    // Merged even when the rest is unreadable: what was read before the bad part counts.
                    found.Model = inner.Model ?? found.Model;
                    if (inner.Input is not null || inner.Output is not null || inner.Total is not null)
                    {
                        (found.Input, found.Output, found.Total, found.Cached) = (inner.Input, inner.Output, inner.Total, inner.Cached);
                    }
                }
            }
            else
            {
                r.Read();
                r.Skip();
            }
        }
    }

    private static void ReadUsage(ref Utf8JsonReader r, ref int? input, ref int? output, ref int? total, ref int? cached)
    {
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("prompt_tokens"u8) || r.ValueTextEquals("input_tokens"u8)) input = ReadInt(ref r) ?? input;
            else if (r.ValueTextEquals("completion_tokens"u8) || r.ValueTextEquals("output_tokens"u8)) output = ReadInt(ref r) ?? output;
            else if (r.ValueTextEquals("total_tokens"u8)) total = ReadInt(ref r) ?? total;
            else if (r.ValueTextEquals("prompt_tokens_details"u8) || r.ValueTextEquals("input_tokens_details"u8))
            {
                r.Read();
                if (r.TokenType != JsonTokenType.StartObject)
                {
                    r.Skip();
                    continue;
                }
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    if (r.ValueTextEquals("cached_tokens"u8)) cached = ReadInt(ref r) ?? cached;
                    else
                    {
                        r.Read();
                        r.Skip();
                    }
                }
            }
            else
            {
                r.Read();
                r.Skip();
            }
        }
    }

    private static int? ReadInt(ref Utf8JsonReader r)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var value) && value >= 0) return value;
        r.Skip();
        return null;
    }
}
