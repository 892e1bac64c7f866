using System.Text;
using System.Text.Json;
using LlmGateway.Messages;

namespace LlmGateway.Tests.Messages;

public class MessageResponseTranslatorTests
{
    private static JsonElement Translate(string completion, string model = "requested") =>
        JsonDocument.Parse(MessageResponseTranslator.Translate(Encoding.UTF8.GetBytes(completion), model)).RootElement;

    [Fact]
    public void A_text_answer_becomes_a_message_with_one_text_block_and_anthropic_usage()
    {
        var message = Translate("""
            {"id":"chatcmpl-abc123","object":"chat.completion","created":1,"model":"gpt-4o-mini",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":20,"completion_tokens":5,"total_tokens":25}}
            """);

        Assert.Equal("""
            {"id":"msg_abc123","type":"message","role":"assistant","model":"gpt-4o-mini","content":[{"type":"text","text":"Hello there"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":5}}
            """.Trim(), message.GetRawText());
    }

    [Fact]
    public void Tool_calls_become_tool_use_blocks_after_the_text_with_parsed_input()
    {
        var message = Translate("""
            {"id":"chatcmpl-1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Checking.",
              "tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                            {"id":"call_2","type":"function","function":{"name":"get_time","arguments":""}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":10,"completion_tokens":7,"total_tokens":17}}
            """);

        var content = message.GetProperty("content");
        Assert.Equal(3, content.GetArrayLength());
        Assert.Equal("""{"type":"text","text":"Checking."}""", content[0].GetRawText());
        Assert.Equal("""{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}""", content[1].GetRawText());
        Assert.Equal("""{"type":"tool_use","id":"call_2","name":"get_time","input":{}}""", content[2].GetRawText());
        Assert.Equal("tool_use", message.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public void Arguments_that_are_not_a_json_object_are_kept_as_a_string_not_replaced()
    {
        var message = Translate("""
            {"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,
              "tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"city\": \"Par"}}]},"finish_reason":"length"}]}
            """);
        var block = message.GetProperty("content")[0];
        Assert.Equal("{\"city\": \"Par", block.GetProperty("input").GetString());
        Assert.Equal("max_tokens", message.GetProperty("stop_reason").GetString());
    }

    [Theory]
    [InlineData("stop", "end_turn")]
    [InlineData("length", "max_tokens")]
    [InlineData("tool_calls", "tool_use")]
    [InlineData("function_call", "tool_use")]
    [InlineData("content_filter", "refusal")]
    [InlineData(null, "end_turn")]
    public void Finish_reason_maps_to_stop_reason(string? finish, string stop)
    {
        Assert.Equal(stop, MessageResponseTranslator.StopReason(finish));
    }

    [Fact]
    public void Cached_prompt_tokens_are_reported_apart_from_input_tokens_as_anthropic_does()
    {
        var message = Translate("""
            {"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":1000,"completion_tokens":3,"total_tokens":1003,"prompt_tokens_details":{"cached_tokens":800,"cache_creation_tokens":150}}}
            """);
        Assert.Equal("""{"input_tokens":50,"cache_creation_input_tokens":150,"cache_read_input_tokens":800,"output_tokens":3}""", message.GetProperty("usage").GetRawText());
    }

    [Fact]
    public void A_refusal_is_a_text_block_with_stop_reason_refusal()
    {
        var message = Translate("""
            {"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}
            """);
        Assert.Equal("I can't help with that.", message.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("refusal", message.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public void No_choices_and_no_model_still_make_a_well_formed_message()
    {
        var message = Translate("""{"choices":[]}""", model: "claude-x");
        Assert.StartsWith("msg_", message.GetProperty("id").GetString());
        Assert.Equal("claude-x", message.GetProperty("model").GetString());
        Assert.Equal(0, message.GetProperty("content").GetArrayLength());
        Assert.Equal("end_turn", message.GetProperty("stop_reason").GetString());
        Assert.Equal(0, message.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Theory]
    [InlineData("chatcmpl-AbC_9-x", "msg_AbC_9-x")]
    [InlineData("gen-42/with:odd chars", "msg_gen-42withoddchars")]
    public void Message_ids_keep_the_chat_ids_safe_characters(string chatId, string expected)
    {
        Assert.Equal(expected, MessageResponseTranslator.MessageId(chatId));
    }

    [Fact]
    public void A_missing_chat_id_gets_a_fresh_message_id()
    {
        var a = MessageResponseTranslator.MessageId(null);
        var b = MessageResponseTranslator.MessageId("///");
        Assert.StartsWith("msg_", a);
        Assert.StartsWith("msg_", b);
        Assert.NotEqual(a, b);
    }
}
