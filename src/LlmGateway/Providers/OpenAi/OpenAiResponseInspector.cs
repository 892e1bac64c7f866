using System.Text.Json;

namespace LlmGateway.Providers.OpenAi;

/// <summary>What the gateway needs to know of an OpenAI-format completion or chunk.</summary>
public struct ResponseInfo
{
    public bool IsError;
    public bool HasContent;
    public bool HasChoices;
    public TokenUsage? Usage;
    public string? FinishReason;
    /// <summary>Characters of generated text and tool arguments, for an estimate when no usage comes.</summary>
    public int GeneratedChars;
    public string? ErrorMessage;
    public string? ErrorType;
    public string? ErrorCode;
    public string? ErrorParam;
}

/// <summary>
/// Reads usage, finish_reason, content presence and errors out of an OpenAI chat.completion or
/// chat.completion.chunk with a forward-only reader, leaving the bytes themselves untouched so they
/// can be passed on as they came.
/// </summary>
public static class OpenAiResponseInspector
{
    public static ResponseInfo Inspect(ReadOnlySpan<byte> json)
    {
        var info = new ResponseInfo();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 128 });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("Expected a JSON object.");
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray) ReadChoices(ref reader, ref info);
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject) info.Usage = ReadUsage(ref reader);
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Null) continue;
                info.IsError = true;
                if (reader.TokenType == JsonTokenType.StartObject) ReadError(ref reader, ref info);
                else if (reader.TokenType == JsonTokenType.String) info.ErrorMessage = reader.GetString();
                else reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return info;
    }

    private static void ReadChoices(ref Utf8JsonReader reader, ref ResponseInfo info)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            info.HasChoices = true;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("delta"u8) || reader.ValueTextEquals("message"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject) ReadDelta(ref reader, ref info);
                    else reader.Skip();
                }
                else if (reader.ValueTextEquals("finish_reason"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        info.FinishReason = FinishReason(ref reader);
                        info.HasContent = true;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
    }

    /// <summary>OpenAI's reasons as shared strings, not a new one per answer; any other as it came.</summary>
    private static string? FinishReason(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("stop"u8) ? "stop"
        : reader.ValueTextEquals("length"u8) ? "length"
        : reader.ValueTextEquals("tool_calls"u8) ? "tool_calls"
        : reader.ValueTextEquals("content_filter"u8) ? "content_filter"
        : reader.GetString();

    private static void ReadDelta(ref Utf8JsonReader reader, ref ResponseInfo info)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8) ||
                         reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8);
            var isCall = !isText && (reader.ValueTextEquals("tool_calls"u8) || reader.ValueTextEquals("function_call"u8));
            reader.Read();
            if (isText && reader.TokenType == JsonTokenType.String)
            {
                var length = reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length;
                if (length > 0)
                {
                    info.HasContent = true;
                    info.GeneratedChars += length;
                }
            }
            else if (isCall && reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
            {
                var start = reader.TokenStartIndex;
                reader.Skip();
                info.HasContent = true;
                info.GeneratedChars += (int)(reader.TokenStartIndex - start);
            }
            else
            {
                reader.Skip();
            }
        }
    }

    private static TokenUsage ReadUsage(ref Utf8JsonReader reader)
    {
        int prompt = 0, completion = 0, cached = 0, cacheWrite = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("prompt_tokens"u8)) prompt = ReadInt(ref reader);
            else if (reader.ValueTextEquals("completion_tokens"u8)) completion = ReadInt(ref reader);
            else if (reader.ValueTextEquals("prompt_tokens_details"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("cached_tokens"u8)) cached = ReadInt(ref reader);
                    else if (reader.ValueTextEquals("cache_creation_tokens"u8)) cacheWrite = ReadInt(ref reader);
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new TokenUsage(prompt, completion, cached, cacheWrite);
    }

    private static void ReadError(ref Utf8JsonReader reader, ref ResponseInfo info)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("message"u8)) info.ErrorMessage = ReadString(ref reader);
            else if (reader.ValueTextEquals("type"u8)) info.ErrorType = ReadString(ref reader);
            else if (reader.ValueTextEquals("code"u8)) info.ErrorCode = ReadString(ref reader);
            else if (reader.ValueTextEquals("param"u8)) info.ErrorParam = ReadString(ref reader);
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }

    private static int ReadInt(ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var v) && v >= 0 ? v : 0;
    }

    /// <summary>A string value, or a number written as text (some servers send numeric codes).</summary>
    private static string? ReadString(ref Utf8JsonReader reader)
    {
        reader.Read();
        return reader.TokenType switch
        {
            JsonTokenType.String => reader.GetString(),
            JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
            JsonTokenType.StartObject or JsonTokenType.StartArray => SkipAndNull(ref reader),
            _ => null,
        };
    }

    private static string? SkipAndNull(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return null;
    }
}
