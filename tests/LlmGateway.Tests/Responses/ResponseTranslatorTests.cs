using System.Text;
using System.Text.Json;
using LlmGateway.Responses;

namespace LlmGateway.Tests.Responses;

public class ResponseTranslatorTests
{
    internal static ResponseObject NewResponse(string request = """{"model":"m","input":"x"}""")
    {
        var echo = ResponseEcho.From(JsonDocument.Parse(request).RootElement);
        return new ResponseObject("resp_0123456789abcdef0123456789abcdef", 1_700_000_000, "m", echo);
    }

    private static JsonElement Translate(string completion, ResponseObject? response = null)
    {
        response ??= NewResponse();
        Assert.True(ResponseTranslator.FromChatCompletion(Encoding.UTF8.GetBytes(completion), response, 1_700_000_005));
        return JsonDocument.Parse(response.ToJson()).RootElement;
    }

    [Fact]
    public void A_text_answer_is_one_completed_message_with_output_text_and_the_usage_renamed()
    {
        var r = Translate("""
            {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}
            """);
        Assert.Equal("resp_0123456789abcdef0123456789abcdef", r.GetProperty("id").GetString());
        Assert.Equal("response", r.GetProperty("object").GetString());
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.Equal(1_700_000_000, r.GetProperty("created_at").GetInt64());
        Assert.Equal(1_700_000_005, r.GetProperty("completed_at").GetInt64());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("error").ValueKind);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("incomplete_details").ValueKind);
        var output = r.GetProperty("output");
        Assert.Equal(1, output.GetArrayLength());
        var message = output[0];
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("completed", message.GetProperty("status").GetString());
        Assert.StartsWith("msg_", message.GetProperty("id").GetString());
        var part = message.GetProperty("content")[0];
        Assert.Equal("output_text", part.GetProperty("type").GetString());
        Assert.Equal("Hi there", part.GetProperty("text").GetString());
        Assert.Equal(0, part.GetProperty("annotations").GetArrayLength());
        var usage = r.GetProperty("usage");
        Assert.Equal(12, usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(3, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(1, usage.GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.Equal(15, usage.GetProperty("total_tokens").GetInt32());
        Assert.False(r.TryGetProperty("output_text", out _)); // an SDK convenience, not on the wire
    }

    [Fact]
    public void Tool_calls_are_function_call_items_after_the_message()
    {
        var r = Translate("""
            {"choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","tool_calls":[
               {"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
               {"id":"call_2","type":"function","function":{"name":"time","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}
            """);
        Assert.Equal("completed", r.GetProperty("status").GetString());
        var output = r.GetProperty("output");
        Assert.Equal(3, output.GetArrayLength());
        Assert.Equal("message", output[0].GetProperty("type").GetString());
        var call = output[1];
        Assert.Equal("function_call", call.GetProperty("type").GetString());
        Assert.Equal("call_1", call.GetProperty("call_id").GetString());
        Assert.Equal("weather", call.GetProperty("name").GetString());
        Assert.Equal("{\"city\":\"Paris\"}", call.GetProperty("arguments").GetString());
        Assert.Equal("completed", call.GetProperty("status").GetString());
        Assert.StartsWith("fc_", call.GetProperty("id").GetString());
        Assert.Equal("call_2", output[2].GetProperty("call_id").GetString());
        Assert.NotEqual(output[1].GetProperty("id").GetString(), output[2].GetProperty("id").GetString());
    }

    [Fact]
    public void Only_tool_calls_means_no_message_item()
    {
        var r = Translate("""{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}""");
        var output = r.GetProperty("output");
        Assert.Equal(1, output.GetArrayLength());
        Assert.Equal("function_call", output[0].GetProperty("type").GetString());
    }

    [Fact]
    public void A_length_cut_is_incomplete_with_max_output_tokens()
    {
        var r = Translate("""{"choices":[{"message":{"role":"assistant","content":"Once upon"},"finish_reason":"length"}]}""");
        Assert.Equal("incomplete", r.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", r.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal("incomplete", r.GetProperty("output")[0].GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, r.GetProperty("completed_at").ValueKind);
    }

    [Fact]
    public void A_content_filter_stop_is_incomplete_with_content_filter()
    {
        var r = Translate("""{"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}""");
        Assert.Equal("content_filter", r.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal(0, r.GetProperty("output").GetArrayLength());
    }

    [Fact]
    public void A_refusal_is_a_refusal_part()
    {
        var r = Translate("""{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}""");
        var part = r.GetProperty("output")[0].GetProperty("content")[0];
        Assert.Equal("refusal", part.GetProperty("type").GetString());
        Assert.Equal("I can't help with that.", part.GetProperty("refusal").GetString());
    }

    [Fact]
    public void The_request_parameters_are_echoed_with_openais_defaults_for_the_rest()
    {
        var response = NewResponse("""
            {"model":"m","input":"x","instructions":"Be brief.","temperature":0.5,"max_output_tokens":99,"metadata":{"k":"v"},
             "tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":"required","text":{"format":{"type":"json_object"}},
             "previous_response_id":"resp_prev","store":false,"user":"u"}
            """);
        var r = Translate("""{"choices":[{"message":{"role":"assistant","content":"{}"},"finish_reason":"stop"}]}""", response);
        Assert.Equal("Be brief.", r.GetProperty("instructions").GetString());
        Assert.Equal(0.5, r.GetProperty("temperature").GetDouble());
        Assert.Equal(99, r.GetProperty("max_output_tokens").GetInt32());
        Assert.Equal("v", r.GetProperty("metadata").GetProperty("k").GetString());
        Assert.Equal("f", r.GetProperty("tools")[0].GetProperty("name").GetString());
        Assert.Equal("required", r.GetProperty("tool_choice").GetString());
        Assert.Equal("json_object", r.GetProperty("text").GetProperty("format").GetProperty("type").GetString());
        Assert.Equal("resp_prev", r.GetProperty("previous_response_id").GetString());
        Assert.False(r.GetProperty("store").GetBoolean());
        Assert.Equal("u", r.GetProperty("user").GetString());

        var plain = Translate("""{"choices":[{"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}""");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("instructions").ValueKind);
        Assert.Equal("auto", plain.GetProperty("tool_choice").GetString());
        Assert.Equal(0, plain.GetProperty("tools").GetArrayLength());
        Assert.True(plain.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.True(plain.GetProperty("store").GetBoolean());
        Assert.Equal("text", plain.GetProperty("text").GetProperty("format").GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Object, plain.GetProperty("metadata").ValueKind);
        Assert.Equal("m", plain.GetProperty("model").GetString());
    }

    [Fact]
    public void A_body_that_is_not_a_chat_completion_is_refused()
    {
        Assert.False(ResponseTranslator.FromChatCompletion("""{"error":{"message":"x"}}"""u8, NewResponse(), 0));
        Assert.False(ResponseTranslator.FromChatCompletion("not json"u8, NewResponse(), 0));
    }

    [Fact]
    public void The_assistants_side_replays_as_one_chat_message_with_its_tool_calls()
    {
        var response = NewResponse();
        Translate("""
            {"choices":[{"message":{"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}]}
            """, response);
        var messages = response.ToChatMessages();
        Assert.Single(messages);
        var m = JsonDocument.Parse(messages[0]).RootElement;
        Assert.Equal("assistant", m.GetProperty("role").GetString());
        Assert.Equal("Checking.", m.GetProperty("content").GetString());
        Assert.Equal("call_1", m.GetProperty("tool_calls")[0].GetProperty("id").GetString());
        Assert.Equal("{\"a\":1}", m.GetProperty("tool_calls")[0].GetProperty("function").GetProperty("arguments").GetString());
    }
}
