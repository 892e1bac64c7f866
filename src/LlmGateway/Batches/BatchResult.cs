using System.Buffers;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Providers;

namespace LlmGateway.Batches;

/// <summary>The result of one item, as its result entry shows it.</summary>
internal sealed class BatchItemResult
{
    public int Status;

    /// <summary>The chat.completion of a succeeded item.</summary>
    public byte[] Body = [];

    /// <summary>What a failed or skipped item got instead.</summary>
    public ApiError? Error;
    public TokenUsage Usage;
    public List<KeyValuePair<string, string>>? Headers;
    public decimal CostUsd;
    public string Outcome = BatchMetrics.Failed;
}

/// <summary>
/// The answer to a batch: <c>{"object":"batch.chat.completions","id","data":[{"index","status","response"|"error","headers"}],"usage","cost_usd","counts"}</c>,
/// every item's result in input order.
/// </summary>
internal static class BatchResultJson
{
    public static ArrayBufferWriter<byte> Write(BatchRun run)
    {
        var results = run.Results;
        var buffer = new ArrayBufferWriter<byte>(4096);
        long prompt = 0, completion = 0;
        using (var w = new Utf8JsonWriter(buffer, ApiError.JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("object"u8, "batch.chat.completions");
            w.WriteString("id"u8, run.Id);
            w.WriteStartArray("data"u8);
            for (var i = 0; i < results.Count; i++)
            {
                var r = results[i];
                w.WriteStartObject();
                w.WriteNumber("index"u8, i);
                w.WriteNumber("status"u8, r.Status);
                if (r.Outcome == BatchMetrics.Succeeded)
                {
                    w.WritePropertyName("response"u8);
                    w.WriteRawValue(r.Body, skipInputValidation: true);
                    prompt += r.Usage.Prompt;
                    completion += r.Usage.Completion;
                }
                else
                {
                    w.WritePropertyName("error"u8);
                    r.Error!.WriteObject(w);
                }
                if (r.Headers is { } headers)
                {
                    w.WriteStartObject("headers"u8);
                    foreach (var (name, value) in headers) w.WriteString(name, value);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("usage"u8);
            w.WriteNumber("prompt_tokens"u8, prompt);
            w.WriteNumber("completion_tokens"u8, completion);
            w.WriteNumber("total_tokens"u8, prompt + completion);
            w.WriteEndObject();
            w.WriteNumber("cost_usd"u8, run.CostUsd);
            w.WriteStartObject("counts"u8);
            w.WriteNumber("succeeded"u8, run.Succeeded);
            w.WriteNumber("failed"u8, run.Failed);
            w.WriteNumber("skipped"u8, run.Skipped);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer;
    }
}
