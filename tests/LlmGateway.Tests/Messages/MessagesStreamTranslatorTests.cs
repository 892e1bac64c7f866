using System.Buffers;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Messages;

namespace LlmGateway.Tests.Messages;

public class MessagesStreamTranslatorTests
{
    /// <summary>Parses the translator's output as a client would: blank-line separated events, one event and one data line each.</summary>
    internal static List<(string Event, JsonElement Data)> Events(ArrayBufferWriter<byte> output)
    {
        var text = Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.EndsWith("\n\n", text);
        var events = new List<(string, JsonElement)>();
        foreach (var raw in text[..^2].Split("\n\n"))
        {
            var lines = raw.Split('\n');
            Assert.Equal(2, lines.Length);
            Assert.StartsWith("event: ", lines[0]);
            Assert.StartsWith("data: ", lines[1]);
            var name = lines[0]["event: ".Length..];
            var data = JsonDocument.Parse(lines[1]["data: ".Length..]).RootElement;
            // Anthropic's rule, which the SDKs rely on: the event name is the data's type.
            Assert.Equal(name, data.GetProperty("type").GetString());
            events.Add((name, data));
        }
        return events;
    }

    private static string Chunk(string delta, string? finish = null) =>
        $$"""{"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1,"model":"up-model","choices":[{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":{{(finish is null ? "null" : $"\"{finish}\"")}}}]}""";

    private const string UsageChunk = """{"id":"chatcmpl-s1","object":"chat.completion.chunk","created":1,"model":"up-model","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":6,"total_tokens":48}}""";

    [Fact]
    public void A_text_answer_is_message_start_ping_one_text_block_message_delta_and_message_stop()
    {
        var t = new MessagesStreamTranslator("requested", estimatedInputTokens: 40);
        var output = new ArrayBufferWriter<byte>();
        foreach (var chunk in new[] { Chunk("""{"role":"assistant","content":""}"""), Chunk("""{"content":"Hel"}"""), Chunk("""{"content":"lo"}"""), Chunk("{}", "stop"), UsageChunk })
        {
            t.Chunk(Encoding.UTF8.GetBytes(chunk), output);
        }
        Assert.False(t.Ended);
        t.End(output);
        Assert.True(t.Ended);

        var events = Events(output);
        Assert.Equal(["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            events.Select(e => e.Event));
        Assert.Equal("""
            {"id":"msg_s1","type":"message","role":"assistant","model":"up-model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}
            """.Trim(), events[0].Data.GetProperty("message").GetRawText());
        Assert.Equal("""{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}""", events[2].Data.GetRawText());
        Assert.Equal("""{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}""", events[3].Data.GetRawText());
        Assert.Equal("""{"type":"content_block_stop","index":0}""", events[5].Data.GetRawText());
        Assert.Equal("""
            {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":42,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":6}}
            """.Trim(), events[6].Data.GetRawText());
    }

    [Fact]
    public void Tool_calls_become_tool_use_blocks_with_input_json_deltas_after_the_text_block()
    {
        var t = new MessagesStreamTranslator("requested", 10);
        var output = new ArrayBufferWriter<byte>();
        string[] chunks =
        [
            Chunk("""{"role":"assistant","content":"Let me look."}"""),
            Chunk("""{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}"""),
            Chunk("""{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"""),
            Chunk("""{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"""),
            Chunk("""{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}"""),
            Chunk("{}", "tool_calls"),
            UsageChunk,
        ];
        foreach (var chunk in chunks) t.Chunk(Encoding.UTF8.GetBytes(chunk), output);
        t.End(output);

        var events = Events(output);
        Assert.Equal(
            ["message_start", "ping",
             "content_block_start", "content_block_delta", "content_block_stop",
             "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
             "content_block_start", "content_block_delta", "content_block_stop",
             "message_delta", "message_stop"],
            events.Select(e => e.Event));
        Assert.Equal("""{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_a","name":"get_weather","input":{}}}""", events[5].Data.GetRawText());
        Assert.Equal("""{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}""", events[6].Data.GetRawText());
        Assert.Equal(2, events[9].Data.GetProperty("index").GetInt32());
        Assert.Equal("call_b", events[9].Data.GetProperty("content_block").GetProperty("id").GetString());
        Assert.Equal("tool_use", events[12].Data.GetProperty("delta").GetProperty("stop_reason").GetString());

        // What an SDK accumulates from the fragments is the whole input.
        var json = string.Concat(events.Where(e => e.Event == "content_block_delta" && e.Data.GetProperty("index").GetInt32() == 1)
            .Select(e => e.Data.GetProperty("delta").GetProperty("partial_json").GetString()));
        Assert.Equal("""{"city":"Paris"}""", json);
    }

    [Fact]
    public void A_failure_after_the_start_is_one_error_event_and_no_message_stop()
    {
        var t = new MessagesStreamTranslator("requested", 10);
        var output = new ArrayBufferWriter<byte>();
        t.Chunk(Encoding.UTF8.GetBytes(Chunk("""{"content":"Partial"}""")), output);
        t.Fail(ApiError.UpstreamTimeout("Provider 'p' stopped sending in the middle of the answer."), "req_1", output);
        t.End(output); // ignored: the stream already ended with the error

        var events = Events(output);
        Assert.Equal(["message_start", "ping", "content_block_start", "content_block_delta", "error"], events.Select(e => e.Event));
        Assert.Equal("""
            {"type":"error","error":{"type":"timeout_error","message":"Provider 'p' stopped sending in the middle of the answer."},"request_id":"req_1"}
            """.Trim(), events[^1].Data.GetRawText());
    }

    [Fact]
    public void An_answer_with_no_chunks_still_starts_and_stops_with_the_requested_model()
    {
        var t = new MessagesStreamTranslator("claude-x", 7);
        var output = new ArrayBufferWriter<byte>();
        t.End(output);

        var events = Events(output);
        Assert.Equal(["message_start", "ping", "message_delta", "message_stop"], events.Select(e => e.Event));
        Assert.Equal("claude-x", events[0].Data.GetProperty("message").GetProperty("model").GetString());
        Assert.Equal(7, events[2].Data.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public void Text_after_a_tool_call_opens_a_new_text_block_and_a_length_finish_is_max_tokens()
    {
        var t = new MessagesStreamTranslator("m", 1);
        var output = new ArrayBufferWriter<byte>();
        t.Chunk(Encoding.UTF8.GetBytes(Chunk("""{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}""")), output);
        t.Chunk(Encoding.UTF8.GetBytes(Chunk("""{"content":"after"}""")), output);
        t.Chunk(Encoding.UTF8.GetBytes(Chunk("{}", "length")), output);
        t.End(output);

        var starts = Events(output).Where(e => e.Event == "content_block_start").Select(e => (e.Data.GetProperty("index").GetInt32(), e.Data.GetProperty("content_block").GetProperty("type").GetString())).ToList();
        Assert.Equal([(0, "tool_use"), (1, "text")], starts);
        Assert.Equal("max_tokens", Events(output).Single(e => e.Event == "message_delta").Data.GetProperty("delta").GetProperty("stop_reason").GetString());
    }
}
