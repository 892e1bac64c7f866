using System.Buffers;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Responses;

namespace LlmGateway.Tests.Responses;

public class ResponsesStreamTranslatorTests
{
    private sealed class Harness
    {
        public readonly ArrayBufferWriter<byte> Output = new();
        public readonly ResponsesStreamTranslator Translator;

        public Harness(string request = """{"model":"m","input":"x","stream":true}""")
        {
            Translator = new ResponsesStreamTranslator(ResponseTranslatorTests.NewResponse(request), Output, TimeProvider.System);
        }

        public void Chunks(params string[] chunks)
        {
            foreach (var c in chunks) Assert.True(Translator.Chunk(Encoding.UTF8.GetBytes(c)));
        }

        /// <summary>Every SSE event written: its event name must equal its data's type, and sequence numbers count from 0.</summary>
        public List<JsonElement> Events()
        {
            var text = Encoding.UTF8.GetString(Output.WrittenSpan);
            Assert.EndsWith("\n\n", text);
            var events = new List<JsonElement>();
            foreach (var block in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
            {
                var lines = block.Split('\n');
                Assert.Equal(2, lines.Length);
                Assert.StartsWith("event: ", lines[0]);
                Assert.StartsWith("data: ", lines[1]);
                var data = JsonDocument.Parse(lines[1]["data: ".Length..]).RootElement;
                Assert.Equal(lines[0]["event: ".Length..], data.GetProperty("type").GetString());
                Assert.Equal(events.Count, data.GetProperty("sequence_number").GetInt32());
                events.Add(data);
            }
            return events;
        }
    }

    private static string Types(List<JsonElement> events) => string.Join(" ", events.Select(e => e.GetProperty("type").GetString()!.Replace("response.", "")));

    private const string Usage = """{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}""";

    private static string Content(string text) => $$"""{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":{{JsonSerializer.Serialize(text)}}},"finish_reason":null}]}""";

    private static string Finish(string reason) => $$"""{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"{{reason}}"}]}""";

    [Fact]
    public void A_text_answer_streams_the_full_event_sequence_with_usage_at_the_end()
    {
        var h = new Harness();
        h.Translator.Start();
        h.Chunks("""{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}""",
            Content("Hel"), Content("lo"), Finish("stop"), Usage);
        h.Translator.Complete();
        var events = h.Events();
        Assert.Equal("created in_progress output_item.added content_part.added output_text.delta output_text.delta output_text.done content_part.done output_item.done completed", Types(events));

        Assert.Equal("in_progress", events[0].GetProperty("response").GetProperty("status").GetString());
        Assert.Equal(0, events[0].GetProperty("response").GetProperty("output").GetArrayLength());
        var added = events[2];
        Assert.Equal(0, added.GetProperty("output_index").GetInt32());
        var itemId = added.GetProperty("item").GetProperty("id").GetString();
        Assert.Equal("in_progress", added.GetProperty("item").GetProperty("status").GetString());
        Assert.Equal(0, added.GetProperty("item").GetProperty("content").GetArrayLength());
        Assert.Equal("", events[3].GetProperty("part").GetProperty("text").GetString());
        foreach (var e in events.Skip(3).Take(5))
        {
            Assert.Equal(itemId, e.GetProperty("item_id").GetString());
            Assert.Equal(0, e.GetProperty("output_index").GetInt32());
            Assert.Equal(0, e.GetProperty("content_index").GetInt32());
        }
        Assert.Equal("Hel", events[4].GetProperty("delta").GetString());
        Assert.Equal("lo", events[5].GetProperty("delta").GetString());
        Assert.Equal("Hello", events[6].GetProperty("text").GetString());
        Assert.Equal("Hello", events[7].GetProperty("part").GetProperty("text").GetString());
        Assert.Equal("completed", events[8].GetProperty("item").GetProperty("status").GetString());

        var response = events[9].GetProperty("response");
        Assert.Equal("completed", response.GetProperty("status").GetString());
        Assert.Equal("Hello", response.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(5, response.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(2, response.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(7, response.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.True(h.Translator.Ended);
    }

    [Fact]
    public void Tool_calls_stream_as_function_call_items_with_argument_deltas_after_the_text()
    {
        var h = new Harness();
        h.Chunks(Content("Checking."),
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}}]}""",
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}""",
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}""",
            """{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]}}]}""",
            Finish("tool_calls"), Usage);
        h.Translator.Complete();
        var events = h.Events();
        Assert.Equal(
            "created in_progress output_item.added content_part.added output_text.delta output_text.done content_part.done output_item.done " +
            "output_item.added function_call_arguments.delta function_call_arguments.delta output_item.added function_call_arguments.delta " +
            "function_call_arguments.done output_item.done function_call_arguments.done output_item.done completed", Types(events));

        var first = events[8];
        Assert.Equal(1, first.GetProperty("output_index").GetInt32());
        Assert.Equal("function_call", first.GetProperty("item").GetProperty("type").GetString());
        Assert.Equal("call_a", first.GetProperty("item").GetProperty("call_id").GetString());
        Assert.Equal("weather", first.GetProperty("item").GetProperty("name").GetString());
        Assert.Equal("", first.GetProperty("item").GetProperty("arguments").GetString());
        var fcId = first.GetProperty("item").GetProperty("id").GetString();
        Assert.Equal(fcId, events[9].GetProperty("item_id").GetString());
        Assert.Equal("{\"city\":", events[9].GetProperty("delta").GetString());
        Assert.Equal(2, events[11].GetProperty("output_index").GetInt32());

        var done = events[13];
        Assert.Equal(fcId, done.GetProperty("item_id").GetString());
        Assert.Equal("weather", done.GetProperty("name").GetString());
        Assert.Equal("{\"city\":\"Paris\"}", done.GetProperty("arguments").GetString());
        Assert.Equal("{\"city\":\"Paris\"}", events[14].GetProperty("item").GetProperty("arguments").GetString());
        Assert.Equal("completed", events[14].GetProperty("item").GetProperty("status").GetString());

        var output = events[^1].GetProperty("response").GetProperty("output");
        Assert.Equal(3, output.GetArrayLength());
        Assert.Equal("call_b", output[2].GetProperty("call_id").GetString());
        Assert.Equal("{}", output[2].GetProperty("arguments").GetString());
    }

    [Fact]
    public void A_length_cut_ends_with_response_incomplete()
    {
        var h = new Harness();
        h.Chunks(Content("Once"), Finish("length"), Usage);
        h.Translator.Complete();
        var events = h.Events();
        Assert.Equal("response.incomplete", events[^1].GetProperty("type").GetString());
        var response = events[^1].GetProperty("response");
        Assert.Equal("incomplete", response.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", response.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal("incomplete", events[^2].GetProperty("item").GetProperty("status").GetString());
    }

    [Fact]
    public void A_failure_mid_stream_ends_with_response_failed_and_never_completed()
    {
        var h = new Harness();
        h.Chunks(Content("Par"));
        h.Translator.Fail(ApiError.UpstreamTimeout("Provider 'p' stopped sending in the middle of the answer."));
        h.Translator.Complete(); // ignored: the stream already ended
        var events = h.Events();
        Assert.Equal("created in_progress output_item.added content_part.added output_text.delta failed", Types(events));
        var response = events[^1].GetProperty("response");
        Assert.Equal("failed", response.GetProperty("status").GetString());
        Assert.Equal("upstream_timeout", response.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("stopped sending", response.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("in_progress", response.GetProperty("output")[0].GetProperty("status").GetString());
    }

    [Fact]
    public void An_empty_answer_still_completes()
    {
        var h = new Harness();
        h.Chunks(Finish("stop"));
        h.Translator.Complete();
        Assert.Equal("created in_progress completed", Types(h.Events()));
    }

    [Fact]
    public void A_refusal_streams_as_a_refusal_part()
    {
        var h = new Harness();
        h.Chunks("""{"choices":[{"index":0,"delta":{"refusal":"No."}}]}""", Finish("stop"));
        h.Translator.Complete();
        var events = h.Events();
        Assert.Equal("created in_progress output_item.added content_part.added refusal.delta refusal.done content_part.done output_item.done completed", Types(events));
        Assert.Equal("refusal", events[3].GetProperty("part").GetProperty("type").GetString());
        Assert.Equal("No.", events[5].GetProperty("refusal").GetString());
    }

    [Fact]
    public void A_tool_call_without_an_id_gets_one_and_text_after_calls_is_a_new_message()
    {
        var h = new Harness();
        h.Chunks("""{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]}}]}""", Content("after"), Finish("stop"));
        h.Translator.Complete();
        var output = h.Events()[^1].GetProperty("response").GetProperty("output");
        Assert.Equal(2, output.GetArrayLength());
        Assert.StartsWith("call_", output[0].GetProperty("call_id").GetString());
        Assert.Equal("message", output[1].GetProperty("type").GetString());
    }

    [Fact]
    public void A_chunk_that_is_not_json_is_reported()
    {
        var h = new Harness();
        Assert.False(h.Translator.Chunk("nope"u8));
    }
}
