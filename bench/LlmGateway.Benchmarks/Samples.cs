using System.Text;

namespace LlmGateway.Benchmarks;

/// <summary>Realistic inputs: the load body of bench/run.sh and a 20-chunk OpenAI stream as OpenAI frames it.</summary>
public static class Samples
{
    /// <summary>bench/bodies/chat.json: a system prompt and a user message, about 1 KB.</summary>
    public static readonly byte[] RequestBody = Encoding.UTF8.GetBytes(
        """{"model":"bench-model","messages":[{"role":"system","content":"You are a careful support assistant for an online bookshop. Answer in two or three short paragraphs, in plain language, without markdown. If the customer asks about an order, ask for the order number unless it is already given. Never promise refunds: explain the returns policy instead (30 days, unread condition, free return label for damaged items). Be friendly but brief, and end with one concrete next step for the customer."},{"role":"user","content":"Hello! I ordered three paperbacks last Tuesday (order 48213-B) and the parcel arrived yesterday, but one of the books has a torn cover and a few pages that look water damaged. The other two are fine. I would like a replacement rather than my money back if that is possible, because it is a gift for my sister's birthday next week. Can you tell me what I need to do, whether I have to send the damaged copy back first, and how long a replacement would usually take to arrive?"}],"temperature":0,"max_tokens":256}""");

    private const string Head = """{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[""";

    /// <summary>One content chunk, as the inspector sees it (the SSE data, without framing).</summary>
    public static readonly byte[] ContentChunk = Encoding.UTF8.GetBytes(Head + """{"index":0,"delta":{"content":" replacement"},"logprobs":null,"finish_reason":null}]}""");

    /// <summary>The usage-only chunk that ends a stream when stream_options.include_usage is set.</summary>
    public static readonly byte[] UsageChunk = Encoding.UTF8.GetBytes(Head + """],"usage":{"prompt_tokens":236,"completion_tokens":20,"total_tokens":256,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}""");

    /// <summary>A whole upstream SSE body: role chunk, 20 content chunks, finish, usage, [DONE].</summary>
    public static readonly byte[] Stream = BuildStream();

    /// <summary>The data of every event in <see cref="Stream"/> except [DONE], for the writer.</summary>
    public static readonly byte[][] StreamEvents = BuildEvents();

    private static byte[][] BuildEvents()
    {
        var events = new List<byte[]>
        {
            Encoding.UTF8.GetBytes(Head + """{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"""),
        };
        string[] words = ["Sorry", " about", " the", " damaged", " book", "!", " We", " can", " send", " a", " replacement", " right", " away", ":", " no", " need", " to", " return", " it", " first"];
        foreach (var word in words)
        {
            events.Add(Encoding.UTF8.GetBytes(Head + $$"""{"index":0,"delta":{"content":"{{word}}"},"logprobs":null,"finish_reason":null}]}"""));
        }
        events.Add(Encoding.UTF8.GetBytes(Head + """{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"""));
        events.Add(UsageChunk);
        return [.. events];
    }

    private static byte[] BuildStream()
    {
        var sse = new StringBuilder();
        foreach (var e in BuildEvents()) sse.Append("data: ").Append(Encoding.UTF8.GetString(e)).Append("\n\n");
        sse.Append("data: [DONE]\n\n");
        return Encoding.UTF8.GetBytes(sse.ToString());
    }
}
