using System.Text.Json;

namespace LlmGateway.Responses;

/// <summary>A complete chat.completion as a Response: its message, tool calls, usage and status.</summary>
public static class ResponseTranslator
{
    /// <summary>
    /// Fills <paramref name="response"/> from the chat.completion body: the first choice's text (and
    /// refusal) as one message item, each tool call as a function_call item after it, the usage, and
    /// the status from finish_reason (<c>length</c> is <c>incomplete</c> with <c>max_output_tokens</c>).
    /// False when the body is not a chat.completion.
    /// </summary>
    public static bool FromChatCompletion(ReadOnlySpan<byte> completion, ResponseObject response, long now)
    {
        if (ResponsesJson.Parse(completion) is not { } doc) return false;
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return false;
            if (root.TryGetProperty("usage"u8, out var usage)) response.Usage = ResponseUsage.FromChat(usage);
            if (!root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0) return false;
            var choice = choices[0];
            if (choice.ValueKind != JsonValueKind.Object || !choice.TryGetProperty("message"u8, out var message) || message.ValueKind != JsonValueKind.Object) return false;
            var finish = choice.TryGetProperty("finish_reason"u8, out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            response.Finish(finish, now);
            var itemStatus = response.Status == ResponseStatuses.Incomplete ? ResponseStatuses.Incomplete : ResponseStatuses.Completed;

            var content = Text(message, "content"u8);
            var refusal = Text(message, "refusal"u8);
            if (!string.IsNullOrEmpty(content) || !string.IsNullOrEmpty(refusal))
            {
                var item = new MessageItem(ResponseIds.ItemId(response.Id, "msg_", response.Output.Count)) { Status = itemStatus };
                if (!string.IsNullOrEmpty(content)) item.Content.Add(Part(false, content));
                if (!string.IsNullOrEmpty(refusal)) item.Content.Add(Part(true, refusal));
                response.Output.Add(item);
            }
            if (message.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function"u8, out var fn) || fn.ValueKind != JsonValueKind.Object) continue;
                    var index = response.Output.Count;
                    var callId = Text(call, "id"u8) is { Length: > 0 } id ? id : ResponseIds.CallId(response.Id, index);
                    var item = new FunctionCallItem(ResponseIds.ItemId(response.Id, "fc_", index), callId, Text(fn, "name"u8) ?? "") { Status = itemStatus };
                    item.Arguments.Append(Text(fn, "arguments"u8) ?? "");
                    response.Output.Add(item);
                }
            }
            return true;
        }
    }

    private static ContentPart Part(bool refusal, string text)
    {
        var part = new ContentPart(refusal);
        part.Text.Append(text);
        return part;
    }

    /// <summary>A string field; content given as text parts (some upstreams answer that way) is joined.</summary>
    private static string? Text(JsonElement obj, ReadOnlySpan<byte> name)
    {
        if (!obj.TryGetProperty(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind != JsonValueKind.Array) return null;
        var text = new System.Text.StringBuilder();
        foreach (var part in v.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text"u8, out var t) && t.ValueKind == JsonValueKind.String) text.Append(t.GetString());
        }
        return text.ToString();
    }
}
