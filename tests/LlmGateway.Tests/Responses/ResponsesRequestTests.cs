using System.Text;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.Responses;

namespace LlmGateway.Tests.Responses;

public class ResponsesRequestTests
{
    private static JsonElement Chat(string body, params string[] history)
    {
        using var request = ResponsesRequest.Parse(Encoding.UTF8.GetBytes(body), out var error);
        Assert.Null(error);
        var chat = request!.ToChatBody(history.Select(Encoding.UTF8.GetBytes));
        return JsonDocument.Parse(chat).RootElement;
    }

    private static ApiError Refused(string body)
    {
        var request = ResponsesRequest.Parse(Encoding.UTF8.GetBytes(body), out var error);
        Assert.Null(request);
        Assert.NotNull(error);
        Assert.Equal(400, error!.Status);
        Assert.Equal("invalid_request_error", error.Type);
        return error;
    }

    [Fact]
    public void A_string_input_is_one_user_message_and_instructions_the_system_message_before_it()
    {
        var chat = Chat("""{"model":"m","instructions":"Be brief.","input":"Hello"}""");
        Assert.Equal("m", chat.GetProperty("model").GetString());
        var messages = chat.GetProperty("messages");
        Assert.Equal(2, messages.GetArrayLength());
        Assert.Equal("system", messages[0].GetProperty("role").GetString());
        Assert.Equal("Be brief.", messages[0].GetProperty("content").GetString());
        Assert.Equal("user", messages[1].GetProperty("role").GetString());
        Assert.Equal("Hello", messages[1].GetProperty("content").GetString());
        Assert.False(chat.TryGetProperty("stream", out _));
    }

    [Fact]
    public void Message_items_keep_roles_and_text_and_images_become_chat_parts()
    {
        var chat = Chat("""
            {"model":"m","input":[
              {"role":"developer","content":"Rules."},
              {"type":"message","role":"user","content":[
                {"type":"input_text","text":"What is in"},
                {"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]},
              {"type":"message","role":"assistant","id":"msg_1","status":"completed","content":[{"type":"output_text","text":"A cat.","annotations":[]}]},
              {"role":"user","content":"Sure?"}]}
            """);
        var messages = chat.GetProperty("messages");
        Assert.Equal(4, messages.GetArrayLength());
        Assert.Equal("developer", messages[0].GetProperty("role").GetString());
        var parts = messages[1].GetProperty("content");
        Assert.Equal("text", parts[0].GetProperty("type").GetString());
        Assert.Equal("What is in", parts[0].GetProperty("text").GetString());
        Assert.Equal("image_url", parts[1].GetProperty("type").GetString());
        Assert.Equal("data:image/png;base64,AAAA", parts[1].GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("low", parts[1].GetProperty("image_url").GetProperty("detail").GetString());
        Assert.Equal("assistant", messages[2].GetProperty("role").GetString());
        Assert.Equal("A cat.", messages[2].GetProperty("content").GetString());
        Assert.Equal("Sure?", messages[3].GetProperty("content").GetString());
    }

    [Fact]
    public void Function_calls_join_the_assistant_message_before_them_and_outputs_become_tool_messages()
    {
        var chat = Chat("""
            {"model":"m","input":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
              {"type":"function_call","id":"fc_1","call_id":"call_a","name":"weather","arguments":"{\"city\":\"Paris\"}"},
              {"type":"function_call","call_id":"call_b","name":"weather","arguments":"{\"city\":\"Rome\"}"},
              {"type":"function_call_output","call_id":"call_a","output":"18C"},
              {"type":"function_call_output","call_id":"call_b","output":[{"type":"input_text","text":"21"},{"type":"input_text","text":"C"}]}]}
            """);
        var messages = chat.GetProperty("messages");
        Assert.Equal(4, messages.GetArrayLength());
        var assistant = messages[1];
        Assert.Equal("Checking.", assistant.GetProperty("content").GetString());
        var calls = assistant.GetProperty("tool_calls");
        Assert.Equal(2, calls.GetArrayLength());
        Assert.Equal("call_a", calls[0].GetProperty("id").GetString());
        Assert.Equal("function", calls[0].GetProperty("type").GetString());
        Assert.Equal("weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("{\"city\":\"Paris\"}", calls[0].GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("call_b", calls[1].GetProperty("id").GetString());
        Assert.Equal("tool", messages[2].GetProperty("role").GetString());
        Assert.Equal("call_a", messages[2].GetProperty("tool_call_id").GetString());
        Assert.Equal("18C", messages[2].GetProperty("content").GetString());
        Assert.Equal("21C", messages[3].GetProperty("content").GetString());
    }

    [Fact]
    public void A_function_call_without_a_message_before_it_is_an_assistant_message_with_null_content()
    {
        var chat = Chat("""
            {"model":"m","input":[{"role":"user","content":"x"},
              {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
              {"type":"function_call_output","call_id":"c1","output":"ok"}]}
            """);
        var assistant = chat.GetProperty("messages")[1];
        Assert.Equal(JsonValueKind.Null, assistant.GetProperty("content").ValueKind);
        Assert.Equal("c1", assistant.GetProperty("tool_calls")[0].GetProperty("id").GetString());
    }

    [Fact]
    public void Flat_function_tools_are_nested_for_chat_and_tool_choice_follows()
    {
        var chat = Chat("""
            {"model":"m","input":"x","tools":[{"type":"function","name":"weather","description":"d","parameters":{"type":"object","properties":{}},"strict":true}],
             "tool_choice":{"type":"function","name":"weather"},"parallel_tool_calls":false}
            """);
        var tool = chat.GetProperty("tools")[0];
        Assert.Equal("function", tool.GetProperty("type").GetString());
        var fn = tool.GetProperty("function");
        Assert.Equal("weather", fn.GetProperty("name").GetString());
        Assert.Equal("d", fn.GetProperty("description").GetString());
        Assert.True(fn.GetProperty("strict").GetBoolean());
        Assert.Equal(JsonValueKind.Object, fn.GetProperty("parameters").ValueKind);
        Assert.False(fn.TryGetProperty("type", out _));
        Assert.Equal("weather", chat.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
        Assert.False(chat.GetProperty("parallel_tool_calls").GetBoolean());
    }

    [Theory]
    [InlineData("\"auto\"")]
    [InlineData("\"none\"")]
    [InlineData("\"required\"")]
    public void String_tool_choices_pass_as_they_are(string choice)
    {
        var chat = Chat($$"""{"model":"m","input":"x","tool_choice":{{choice}}}""");
        Assert.Equal(choice.Trim('"'), chat.GetProperty("tool_choice").GetString());
    }

    [Fact]
    public void A_json_schema_text_format_becomes_a_nested_response_format()
    {
        var chat = Chat("""
            {"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}
            """);
        var format = chat.GetProperty("response_format");
        Assert.Equal("json_schema", format.GetProperty("type").GetString());
        var schema = format.GetProperty("json_schema");
        Assert.Equal("person", schema.GetProperty("name").GetString());
        Assert.True(schema.GetProperty("strict").GetBoolean());
        Assert.Equal("object", schema.GetProperty("schema").GetProperty("type").GetString());
        Assert.False(schema.TryGetProperty("type", out _));
    }

    [Fact]
    public void A_json_object_format_is_chats_json_object_and_text_adds_nothing()
    {
        Assert.Equal("json_object", Chat("""{"model":"m","input":"x","text":{"format":{"type":"json_object"}}}""").GetProperty("response_format").GetProperty("type").GetString());
        Assert.False(Chat("""{"model":"m","input":"x","text":{"format":{"type":"text"}}}""").TryGetProperty("response_format", out _));
    }

    [Fact]
    public void Sampling_limits_and_metadata_carry_over()
    {
        var chat = Chat("""
            {"model":"m","input":"x","temperature":0.2,"top_p":0.9,"max_output_tokens":50,"metadata":{"task_type":"code","team":"a"},"user":"u1","reasoning":{"effort":"low"}}
            """);
        Assert.Equal(0.2, chat.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, chat.GetProperty("top_p").GetDouble());
        Assert.Equal(50, chat.GetProperty("max_completion_tokens").GetInt32());
        Assert.Equal("code", chat.GetProperty("metadata").GetProperty("task_type").GetString());
        Assert.Equal("u1", chat.GetProperty("user").GetString());
        Assert.Equal("low", chat.GetProperty("reasoning_effort").GetString());
    }

    [Fact]
    public void A_streamed_request_always_asks_for_the_usage_chunk()
    {
        var chat = Chat("""{"model":"m","input":"x","stream":true}""");
        Assert.True(chat.GetProperty("stream").GetBoolean());
        Assert.True(chat.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public void Store_and_previous_response_id_are_read_and_history_goes_between_instructions_and_input()
    {
        using var request = ResponsesRequest.Parse(Encoding.UTF8.GetBytes("""{"model":"m","input":"again","instructions":"I","store":false,"previous_response_id":"resp_abc"}"""), out var error);
        Assert.Null(error);
        Assert.False(request!.Store);
        Assert.Equal("resp_abc", request.PreviousResponseId);
        var chat = JsonDocument.Parse(request.ToChatBody([Encoding.UTF8.GetBytes("""{"role":"user","content":"first"}"""), Encoding.UTF8.GetBytes("""{"role":"assistant","content":"one"}""")])).RootElement;
        var contents = chat.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()!).ToArray();
        Assert.Equal(new[] { "I", "first", "one", "again" }, contents);
    }

    [Fact]
    public void Store_defaults_to_true_as_in_openai()
    {
        using var request = ResponsesRequest.Parse(Encoding.UTF8.GetBytes("""{"model":"m","input":"x"}"""), out _);
        Assert.True(request!.Store);
        Assert.Null(request.PreviousResponseId);
    }

    [Theory]
    [InlineData("""{"model":"m","input":[{"type":"reasoning","id":"rs_1","summary":[]}]}""", "input[0].type")]
    [InlineData("""{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}""", "input[0].type")]
    [InlineData("""{"model":"m","input":[{"type":"web_search_call","id":"ws_1"}]}""", "input[0].type")]
    [InlineData("""{"model":"m","input":"x","tools":[{"type":"web_search"}]}""", "tools[0].type")]
    [InlineData("""{"model":"m","input":"x","tools":[{"type":"function","name":"f"},{"type":"file_search","vector_store_ids":[]}]}""", "tools[1].type")]
    [InlineData("""{"model":"m","input":"x","tools":[{"type":"computer_use_preview"}]}""", "tools[0].type")]
    [InlineData("""{"model":"m","input":"x","tool_choice":{"type":"web_search_preview"}}""", "tool_choice.type")]
    [InlineData("""{"model":"m","input":"x","background":true}""", "background")]
    [InlineData("""{"model":"m","input":"x","include":["reasoning.encrypted_content"]}""", "include[0]")]
    [InlineData("""{"model":"m","input":"x","reasoning":{"summary":"auto"}}""", "reasoning.summary")]
    [InlineData("""{"model":"m","input":"x","top_logprobs":5}""", "top_logprobs")]
    [InlineData("""{"model":"m","input":"x","truncation":"auto"}""", "truncation")]
    [InlineData("""{"model":"m","input":"x","conversation":"conv_1"}""", "conversation")]
    [InlineData("""{"model":"m","input":"x","max_tool_calls":3}""", "max_tool_calls")]
    [InlineData("""{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file_1"}]}]}""", "input[0].content[0].type")]
    [InlineData("""{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}""", "input[0].content[0].file_id")]
    [InlineData("""{"model":"m","input":[{"role":"system","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}""", "input[0].content[0].type")]
    [InlineData("""{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x/y.png"}]}]}""", "input[0].output[0].type")]
    public void What_a_chat_target_cant_honour_is_refused_naming_the_param(string body, string param)
    {
        var error = Refused(body);
        Assert.Equal(param, error.Param);
        Assert.Equal("unsupported_parameter", error.Code);
    }

    [Theory]
    [InlineData("""{"input":"x"}""", "model")]
    [InlineData("""{"model":"m"}""", "input")]
    [InlineData("""{"model":"m","input":5}""", "input")]
    [InlineData("""{"model":"m","input":"x","bogus":1}""", "bogus")]
    [InlineData("""{"model":"m","input":[{"role":"robot","content":"x"}]}""", "input[0].role")]
    [InlineData("""{"model":"m","input":[{"role":"user"}]}""", "input[0].content")]
    [InlineData("""{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}""", "input[0].call_id")]
    [InlineData("""{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}""", "input[0].output")]
    [InlineData("""{"model":"m","input":"x","temperature":3}""", "temperature")]
    [InlineData("""{"model":"m","input":"x","max_output_tokens":0}""", "max_output_tokens")]
    [InlineData("""{"model":"m","input":"x","stream":"yes"}""", "stream")]
    [InlineData("""{"model":"m","input":"x","tools":[{"type":"function"}]}""", "tools[0].name")]
    [InlineData("""{"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}""", "text.format.name")]
    [InlineData("""{"model":"m","input":"x","previous_response_id":"chatcmpl-1"}""", "previous_response_id")]
    [InlineData("""{"model":"m","input":"x","previous_response_id":"resp_a:b"}""", "previous_response_id")]
    public void Bad_fields_are_a_400_naming_the_param(string body, string param)
    {
        Assert.Equal(param, Refused(body).Param);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    public void A_body_that_is_not_a_json_object_is_a_400(string body)
    {
        Assert.Equal("invalid_json", Refused(body).Code);
    }

    [Fact]
    public void Too_many_input_items_are_refused_before_translation()
    {
        var items = string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", ResponsesRequest.MaxInputItems + 1));
        Assert.Equal("input", Refused($$"""{"model":"m","input":[{{items}}]}""").Param);
    }

    [Fact]
    public void The_echo_keeps_the_clients_own_json()
    {
        using var request = ResponsesRequest.Parse(Encoding.UTF8.GetBytes("""{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"metadata":{"a":"b"}}"""), out _);
        var echo = ResponseEcho.From(request!.Root);
        Assert.True(echo.TryGet("tools", out var tools));
        Assert.Equal("""[{"type":"function","name":"f"}]""", Encoding.UTF8.GetString(tools));
        Assert.False(echo.TryGet("temperature", out _));
    }
}
