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
    public static ResponseUsage Read(ReadOnlySpan<byte> json)
    {
        string? model = null;
        int? input = null, output = null, total = null, cached = null;
        try
        {
            var r = new Utf8JsonReader(json);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return default;
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("model"u8))
                {
                    r.Read();
                    if (r.TokenType == JsonTokenType.String) model = r.GetString();
                    else r.Skip();
                }
                else if (r.ValueTextEquals("usage"u8))
                {
                    r.Read();
                    if (r.TokenType == JsonTokenType.StartObject) ReadUsage(ref r, ref input, ref output, ref total, ref cached);
                    else r.Skip();
                }
                else
                {
                    r.Read();
                    r.Skip();
                }
            }
        }
        catch (JsonException)
        {
            // Keep what was read before the bad part.
        }

        if (input is null && output is null && total is null) return new ResponseUsage(model, default);
        var prompt = input ?? Math.Max(0, (total ?? 0) - (output ?? 0));
        var completion = output ?? Math.Max(0, (total ?? 0) - prompt);
        return new ResponseUsage(model, new TokenUsage(prompt, completion, Math.Min(cached ?? 0, prompt)));
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
