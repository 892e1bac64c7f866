using System.Text;

namespace LlmGateway.Benchmarks;

/// <summary>Realistic inputs: the load body of bench/run.sh and a 20-chunk OpenAI stream as OpenAI frames it.</summary>
public static class Samples
{
    /// <summary>bench/bodies/chat-cacheable.json: a system prompt and a user message, about 1 KB, temperature 0 (cacheable).</summary>
    public static readonly byte[] RequestBody = Encoding.UTF8.GetBytes(
        """{"model":"bench-model","messages":[{"role":"system","content":"You are a careful support assistant for an online bookshop. Answer in two or three short paragraphs, in plain language, without markdown. If the customer asks about an order, ask for the order number unless it is already given. Never promise refunds: explain the returns policy instead (30 days, unread condition, free return label for damaged items). Be friendly but brief, and end with one concrete next step for the customer."},{"role":"user","content":"Hello! I ordered three paperbacks last Tuesday (order 48213-B) and the parcel arrived yesterday, but one of the books has a torn cover and a few pages that look water damaged. The other two are fine. I would like a replacement rather than my money back if that is possible, because it is a gift for my sister's birthday next week. Can you tell me what I need to do, whether I have to send the damaged copy back first, and how long a replacement would usually take to arrive?"}],"temperature":0,"max_tokens":256}""");

    /// <summary>The same body at temperature 0.2 (bench/bodies/chat.json): not cacheable, the bench's miss.</summary>
    public static readonly byte[] MissBody = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(RequestBody).Replace("\"temperature\":0,", "\"temperature\":0.2,", StringComparison.Ordinal));

    /// <summary>bench/bodies/embeddings.json: 8 short inputs, base64 as the official SDKs ask.</summary>
    public static readonly byte[] EmbeddingsBody = Encoding.UTF8.GetBytes(
        """{"model":"bench-embed","input":["How do I return a damaged book?","Where is my order 48213-B?","Can I change the delivery address after ordering?","Do you ship paperbacks to Norway?","What is your returns policy for unread books?","How long does a replacement usually take?","Is gift wrapping available for birthday orders?","Can I pay with a gift card and a credit card together?"],"encoding_format":"base64"}""");

    /// <summary>The mock upstream's non-streamed answer: about sixty tokens of text and the usage.</summary>
    public static readonly byte[] Completion = Encoding.UTF8.GetBytes(
        """{"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion","created":1730000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"A gateway in front of every model call has to cost close to nothing: parse only the fields it acts on, pass the rest through untouched, reuse connections, and never buffer a stream. This answer is a fixed text of about sixty tokens so that the response size is realistic for a short chat reply.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":236,"completion_tokens":58,"total_tokens":294,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}""");

    private const string Head = """{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[""";

    /// <summary>One content chunk, as the inspector sees it (the SSE data, without framing).</summary>
    public static readonly byte[] ContentChunk = Encoding.UTF8.GetBytes(Head + """{"index":0,"delta":{"content":" replacement"},"logprobs":null,"finish_reason":null}]}""");

    /// <summary>The usage-only chunk that ends a stream when stream_options.include_usage is set.</summary>
    public static readonly byte[] UsageChunk = Encoding.UTF8.GetBytes(Head + """],"usage":{"prompt_tokens":236,"completion_tokens":20,"total_tokens":256,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}""");

    /// <summary>A whole upstream SSE body: role chunk, 20 content chunks, finish, usage, [DONE].</summary>
    public static readonly byte[] Stream = BuildStream();

    /// <summary>The data of every event in <see cref="Stream"/> except [DONE], for the writer.</summary>
    public static readonly byte[][] StreamEvents = BuildEvents();

    /// <summary>The same 20-word answer as Anthropic streams it (Messages API events), for the translation to OpenAI chunks.</summary>
    public static readonly byte[] AnthropicStream = BuildAnthropicStream();

    private static byte[] BuildAnthropicStream()
    {
        var sse = new StringBuilder();
        void Event(string type, string data) => sse.Append("event: ").Append(type).Append("\ndata: ").Append(data).Append("\n\n");
        Event("message_start", """{"type":"message_start","message":{"id":"msg_01BenchAbCdEfGhIjKlMnOpQr","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":236,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}""");
        Event("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""");
        Event("ping", """{"type":"ping"}""");
        string[] words = ["Sorry", " about", " the", " damaged", " book", "!", " We", " can", " send", " a", " replacement", " right", " away", ":", " no", " need", " to", " return", " it", " first"];
        foreach (var word in words)
        {
            Event("content_block_delta", $$$"""{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"{{{word}}}"}}""");
        }
        Event("content_block_stop", """{"type":"content_block_stop","index":0}""");
        Event("message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}""");
        Event("message_stop", """{"type":"message_stop"}""");
        return Encoding.UTF8.GetBytes(sse.ToString());
    }

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
