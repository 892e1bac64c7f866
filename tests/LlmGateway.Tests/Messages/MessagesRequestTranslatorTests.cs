using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Messages;

namespace LlmGateway.Tests.Messages;

public class MessagesRequestTranslatorTests
{
    private static MessagesTranslation Translate(string json, bool countTokens = false) =>
        MessagesRequestTranslator.Translate(Encoding.UTF8.GetBytes(json), countTokens);

    private static JsonElement Chat(string json, bool countTokens = false)
    {
        var t = Translate(json, countTokens);
        Assert.Null(t.Error);
        return JsonDocument.Parse(t.ChatBody!).RootElement;
    }

    private static string Refused(string json, bool countTokens = false)
    {
        var t = Translate(json, countTokens);
        Assert.NotNull(t.Error);
        Assert.Equal(400, t.Error!.Status);
        Assert.Null(t.ChatBody);
        return t.Error.Message;
    }

    [Fact]
    public void A_plain_request_becomes_a_chat_request_with_max_completion_tokens()
    {
        var t = Translate("""{"model":"claude-x","max_tokens":256,"messages":[{"role":"user","content":"Hello, it's me"}]}""");

        Assert.Null(t.Error);
        Assert.Equal("claude-x", t.Model);
        Assert.False(t.Stream);
        Assert.Equal("""{"model":"claude-x","max_completion_tokens":256,"messages":[{"role":"user","content":"Hello, it's me"}]}""", Encoding.UTF8.GetString(t.ChatBody!));
    }

    [Fact]
    public void System_as_a_string_or_as_text_blocks_becomes_one_system_message_without_cache_control()
    {
        var fromString = Chat("""{"model":"m","max_tokens":1,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}""");
        Assert.Equal("""{"role":"system","content":"Be brief."}""", fromString.GetProperty("messages")[0].GetRawText());

        var fromBlocks = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Hi"}],
             "system":[{"type":"text","text":"You are a coder."},{"type":"text","text":"Use tools.","cache_control":{"type":"ephemeral"}}]}
            """);
        var messages = fromBlocks.GetProperty("messages");
        Assert.Equal(2, messages.GetArrayLength());
        Assert.Equal("""{"role":"system","content":"You are a coder.\n\nUse tools."}""", messages[0].GetRawText());
        Assert.DoesNotContain("cache_control", fromBlocks.GetRawText());
    }

    [Fact]
    public void Text_and_image_blocks_become_content_parts_base64_as_a_data_url()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":[
              {"type":"text","text":"What are these?","cache_control":{"type":"ephemeral"}},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
              {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]}]}
            """);

        Assert.Equal("""
            {"role":"user","content":[{"type":"text","text":"What are these?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}
            """.Trim(), chat.GetProperty("messages")[0].GetRawText());
    }

    [Fact]
    public void Assistant_tool_use_becomes_tool_calls_and_earlier_thinking_is_left_out()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[
              {"role":"user","content":"Weather in Paris?"},
              {"role":"assistant","content":[
                {"type":"thinking","thinking":"I should call the tool.","signature":"abc"},
                {"type":"text","text":"Let me check."},
                {"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris","units":["c"]}},
                {"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}]}]}
            """);

        var assistant = chat.GetProperty("messages")[1];
        Assert.Equal("assistant", assistant.GetProperty("role").GetString());
        Assert.Equal("Let me check.", assistant.GetProperty("content").GetString());
        var calls = assistant.GetProperty("tool_calls");
        Assert.Equal(2, calls.GetArrayLength());
        Assert.Equal("""{"id":"toolu_01","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"units\":[\"c\"]}"}}""", calls[0].GetRawText());
        Assert.Equal("{}", calls[1].GetProperty("function").GetProperty("arguments").GetString());
        Assert.DoesNotContain("I should call the tool", chat.GetRawText());
    }

    [Fact]
    public void An_assistant_turn_with_only_tool_calls_has_null_content()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]}]}
            """);
        Assert.Equal(JsonValueKind.Null, chat.GetProperty("messages")[1].GetProperty("content").ValueKind);
    }

    [Fact]
    public void Tool_results_become_tool_messages_before_the_rest_of_the_user_turn()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[
              {"role":"user","content":"Go"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"a","input":{}},{"type":"tool_use","id":"t2","name":"b","input":{}},{"type":"tool_use","id":"t3","name":"c","input":{}}]},
              {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"t1","content":"12 degrees"},
                {"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"line 1"},{"type":"text","text":"line 2"}]},
                {"type":"tool_result","tool_use_id":"t3","content":"file not found","is_error":true},
                {"type":"text","text":"Summarise."}]}]}
            """);

        var messages = chat.GetProperty("messages");
        Assert.Equal(6, messages.GetArrayLength());
        Assert.Equal("""{"role":"tool","tool_call_id":"t1","content":"12 degrees"}""", messages[2].GetRawText());
        Assert.Equal("""{"role":"tool","tool_call_id":"t2","content":"line 1\nline 2"}""", messages[3].GetRawText());
        Assert.Equal("""{"role":"tool","tool_call_id":"t3","content":"Error: file not found"}""", messages[4].GetRawText());
        Assert.Equal("""{"role":"user","content":[{"type":"text","text":"Summarise."}]}""", messages[5].GetRawText());
    }

    [Fact]
    public void Only_tool_results_make_no_empty_user_message_and_a_result_without_content_is_empty_text()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Go"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"a","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"}]}]}
            """);
        var messages = chat.GetProperty("messages");
        Assert.Equal(3, messages.GetArrayLength());
        Assert.Equal("""{"role":"tool","tool_call_id":"t1","content":""}""", messages[2].GetRawText());
    }

    [Fact]
    public void Images_a_tool_returned_follow_in_the_user_message_introduced_by_their_call()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Screenshot?"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"shot","input":{}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
                {"type":"text","text":"Here it is"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}}]}]}]}
            """);
        var messages = chat.GetProperty("messages");
        Assert.Equal(4, messages.GetArrayLength());
        Assert.Equal("""{"role":"tool","tool_call_id":"t1","content":"Here it is"}""", messages[2].GetRawText());
        Assert.Equal("""
            {"role":"user","content":[{"type":"text","text":"Images returned by tool call t1:"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]}
            """.Trim(), messages[3].GetRawText());
    }

    [Fact]
    public void Tools_become_function_tools_with_input_schema_as_parameters()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],
             "tools":[{"name":"get_weather","description":"Weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"cache_control":{"type":"ephemeral"}},
                      {"type":"custom","name":"noop","input_schema":{"type":"object"},"strict":true}]}
            """);
        var tools = chat.GetProperty("tools");
        Assert.Equal("""
            {"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}
            """.Trim(), tools[0].GetRawText());
        Assert.Equal("""{"type":"function","function":{"name":"noop","parameters":{"type":"object"},"strict":true}}""", tools[1].GetRawText());
        Assert.False(chat.TryGetProperty("tool_choice", out _));
    }

    [Theory]
    [InlineData("""{"type":"auto"}""", "\"auto\"", null)]
    [InlineData("""{"type":"any"}""", "\"required\"", null)]
    [InlineData("""{"type":"none"}""", "\"none\"", null)]
    [InlineData("""{"type":"tool","name":"f"}""", """{"type":"function","function":{"name":"f"}}""", null)]
    [InlineData("""{"type":"auto","disable_parallel_tool_use":true}""", "\"auto\"", false)]
    [InlineData("""{"type":"any","disable_parallel_tool_use":true}""", "\"required\"", false)]
    public void Tool_choice_maps_to_chats_tool_choice(string anthropic, string chat, bool? parallel)
    {
        var body = Chat($$$"""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],
             "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{{{anthropic}}}}
            """);
        Assert.Equal(chat, body.GetProperty("tool_choice").GetRawText());
        if (parallel is null) Assert.False(body.TryGetProperty("parallel_tool_calls", out _));
        else Assert.Equal(parallel.Value, body.GetProperty("parallel_tool_calls").GetBoolean());
    }

    [Fact]
    public void Tool_choice_auto_or_none_without_tools_is_left_out_but_any_without_tools_is_refused()
    {
        Assert.False(Chat("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"auto"}}""").TryGetProperty("tool_choice", out _));
        Assert.False(Chat("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":{"type":"none"}}""").TryGetProperty("tool_choice", out _));
        Assert.Contains("tool_choice", Refused("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"any"}}"""));
    }

    [Fact]
    public void Sampling_stop_metadata_and_stream_are_translated()
    {
        var t = Translate("""
            {"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}],"temperature":0.5,"top_p":0.9,
             "stop_sequences":["END","\n\nHuman:"],"metadata":{"user_id":"u-42","task_type":"code"},"stream":true}
            """);
        Assert.Null(t.Error);
        Assert.True(t.Stream);
        var chat = JsonDocument.Parse(t.ChatBody!).RootElement;
        Assert.Equal(0.5, chat.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, chat.GetProperty("top_p").GetDouble());
        Assert.Equal("""["END","\n\nHuman:"]""", chat.GetProperty("stop").GetRawText());
        Assert.Equal("u-42", chat.GetProperty("user").GetString());
        Assert.Equal("""{"task_type":"code"}""", chat.GetProperty("metadata").GetRawText());
        Assert.True(chat.GetProperty("stream").GetBoolean());
        Assert.True(chat.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public void Hints_that_never_change_the_answer_are_accepted_and_left_out()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"service_tier":"auto","cache_control":{"type":"ephemeral"},
             "thinking":{"type":"disabled"},"metadata":{"user_id":null},"top_k":null,"stop_sequences":[]}
            """);
        Assert.Equal("""{"model":"m","max_completion_tokens":1,"messages":[{"role":"user","content":"x"}]}""", chat.GetRawText());
    }

    [Fact]
    public void Output_config_format_becomes_a_strict_json_schema_response_format()
    {
        var chat = Chat("""
            {"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],
             "output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}
            """);
        Assert.Equal("""
            {"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}}
            """.Trim(), chat.GetProperty("response_format").GetRawText());
    }

    [Fact]
    public void Max_tokens_is_required_for_messages_but_not_for_count_tokens()
    {
        Assert.Equal("max_tokens: Field required.", Refused("""{"model":"m","messages":[{"role":"user","content":"x"}]}"""));
        Assert.Contains("max_tokens", Refused("""{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"""));
        Assert.Contains("max_tokens", Refused("""{"model":"m","max_tokens":"10","messages":[{"role":"user","content":"x"}]}"""));

        var t = Translate("""{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}""", countTokens: true);
        Assert.Null(t.Error);
        Assert.False(t.Stream);
        Assert.Equal("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8.GetString(t.ChatBody!));
    }

    [Fact]
    public void Count_tokens_counts_what_only_generation_cant_honour_but_still_refuses_blocks_it_cant_carry()
    {
        var t = Translate("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":1024},"top_k":5,
             "output_config":{"effort":"high"},"context_management":{"edits":[]}}
            """, countTokens: true);
        Assert.Null(t.Error);
        Assert.Equal("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8.GetString(t.ChatBody!));

        Assert.Contains("document", Refused("""{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}""", countTokens: true));
    }

    [Theory]
    [InlineData("""{"top_k":40}""", "top_k")]
    [InlineData("""{"thinking":{"type":"enabled","budget_tokens":2048}}""", "thinking")]
    [InlineData("""{"thinking":{"type":"adaptive"}}""", "thinking")]
    [InlineData("""{"output_config":{"effort":"high"}}""", "output_config.effort")]
    [InlineData("""{"mcp_servers":[{"type":"url","url":"https://x","name":"x"}]}""", "mcp_servers")]
    [InlineData("""{"container":"c1"}""", "container")]
    [InlineData("""{"context_management":{"edits":[]}}""", "context_management")]
    [InlineData("""{"inference_geo":"us"}""", "inference_geo")]
    [InlineData("""{"frequency_penalty":1}""", "frequency_penalty: Extra inputs are not permitted.")]
    [InlineData("""{"metadata":{"session":"s"}}""", "metadata.session")]
    [InlineData("""{"tools":[{"type":"web_search_20250305","name":"web_search"}]}""", "tools.0.type")]
    [InlineData("""{"tools":[{"type":"bash_20250124","name":"bash"}]}""", "built-in tool")]
    [InlineData("""{"tools":[{"name":"f","input_schema":{"type":"object"},"defer_loading":true}]}""", "tools.0.defer_loading")]
    public void What_a_chat_target_cant_honour_is_refused_by_name(string extra, string expected)
    {
        var body = JsonDocument.Parse(extra).RootElement;
        var json = new StringBuilder("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}]""");
        foreach (var p in body.EnumerateObject()) json.Append(',').Append(JsonSerializer.Serialize(p.Name)).Append(':').Append(p.Value.GetRawText());
        json.Append('}');
        Assert.Contains(expected, Refused(json.ToString()));
    }

    [Theory]
    [InlineData("""{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}""", "'document' blocks can't be honoured")]
    [InlineData("""{"type":"search_result","source":"s","title":"t","content":[]}""", "'search_result' blocks")]
    [InlineData("""{"type":"container_upload","file_id":"f"}""", "'container_upload' blocks")]
    [InlineData("""{"type":"web_search_tool_result","tool_use_id":"x","content":[]}""", "only Anthropic's servers run")]
    [InlineData("""{"type":"image","source":{"type":"file","file_id":"file_1"}}""", "Files API")]
    [InlineData("""{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AA=="}}""", "messages.0.content.0.source.media_type")]
    [InlineData("""{"type":"image","source":{"type":"url","url":"ftp://x/y.png"}}""", "messages.0.content.0.source.url")]
    [InlineData("""{"type":"tool_use","id":"t","name":"f","input":{}}""", "belongs in an assistant message")]
    [InlineData("""{"type":"hologram"}""", "messages.0.content.0.type")]
    [InlineData("""{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{}}]}""", "messages.0.content.0.content.0")]
    public void User_blocks_a_chat_target_cant_carry_are_refused_with_their_path(string block, string expected)
    {
        Assert.Contains(expected, Refused($$"""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{{block}}]}]}"""));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("""{"model":"","max_tokens":1,"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("""{"model":7,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("""{"model":"m","max_tokens":1}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":{}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[7]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"content":"x"}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"tool","content":"x"}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user"}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":5}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[5]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text"}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":1}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":7}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":"yes"}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","input":{}}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"system":7}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"system":[{"type":"image","source":{}}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"temperature":1.5}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"temperature":"hot"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"top_p":-1}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"stop_sequences":"END"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"stop_sequences":[1]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"stream":"yes"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"metadata":"u"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"metadata":{"user_id":5}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":{}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[5]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"input_schema":{}}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{},"description":3}]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":"auto"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool"}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"sometimes"}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":1}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"thinking":"on"}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"text"}}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"json_schema"}}}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"output_config":[]}""")]
    [InlineData("""{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"\ud800"}],"system":[{"type":"text","text":"\ud800"}]}""")]
    public void Bad_input_is_a_400_and_never_an_exception(string json)
    {
        Refused(json);
    }

    [Fact]
    public void A_translated_conversation_is_a_valid_chat_request_for_the_pipeline()
    {
        var t = Translate("""
            {"model":"claude-x","max_tokens":300,"stream":true,"system":"Be brief.","temperature":0,
             "messages":[{"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
               {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"get_weather","input":{"city":"Paris"}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"12 degrees"},{"type":"text","text":"And tomorrow?"}]}],
             "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"auto"},
             "metadata":{"task_type":"chat"}}
            """);
        Assert.Null(t.Error);

        using var chat = ChatRequest.TryParse(t.ChatBody, out var error);
        Assert.Null(error);
        Assert.NotNull(chat);
        Assert.Equal("claude-x", chat!.Model);
        Assert.True(chat.Stream);
        Assert.True(chat.ClientWantsUsage);
        Assert.Equal(300, chat.MaxTokens);
        Assert.True(chat.HasTools);
        Assert.True(chat.HasImages);
        Assert.Equal("chat", chat.MetadataTaskType);
        Assert.True(chat.IsReproducible);
        Assert.Equal("And tomorrow?", chat.LastUserText);
        Assert.Equal(5, chat.MessageCount);
    }
}

/// <summary>
/// The native translation (/v1/messages, which an anthropic-type provider takes as it is): what the chat
/// format can't carry is left out of the chat body and reported, never a reason to refuse; what is invalid still is.
/// </summary>
public class MessagesNativeTranslationTests
{
    private static MessagesTranslation Native(string json) =>
        MessagesRequestTranslator.Translate(Encoding.UTF8.GetBytes(json), countTokens: false, native: true);

    [Fact]
    public void Untranslatable_parts_are_left_out_of_the_chat_body_and_the_first_is_reported()
    {
        var t = Native("""
            {"model":"m","max_tokens":10,"top_k":3,"thinking":{"type":"enabled","budget_tokens":1024},"future":{"a":1},
             "tools":[{"type":"web_search_20250305","name":"web_search"},{"name":"get","input_schema":{"type":"object"},"defer_loading":true}],
             "output_config":{"effort":"high"},"metadata":{"user_id":"u","trace":"x"},
             "messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"d"}},{"type":"text","text":"hi"},
               {"type":"image","source":{"type":"file","file_id":"f1"}}]},
               {"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}},{"type":"text","text":"ok"}]}]}
            """);

        Assert.Null(t.Error);
        Assert.Contains("top_k", t.Untranslatable!.Message);
        var chat = JsonDocument.Parse(t.ChatBody!).RootElement;
        var raw = chat.GetRawText();
        foreach (var gone in new[] { "top_k", "thinking", "future", "web_search", "defer_loading", "effort", "trace", "document", "file" })
        {
            Assert.DoesNotContain(gone, raw);
        }
        Assert.Equal("get", Assert.Single(chat.GetProperty("tools").EnumerateArray()).GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("u", chat.GetProperty("user").GetString());
        Assert.Equal("hi", chat.GetProperty("messages")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("ok", chat.GetProperty("messages")[1].GetProperty("content").GetString());
    }

    [Fact]
    public void A_translatable_request_reports_nothing_untranslatable()
    {
        var t = Native("""{"model":"m","max_tokens":10,"service_tier":"auto","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Null(t.Error);
        Assert.Null(t.Untranslatable);
    }

    [Theory]
    [InlineData("""{"model":"m","top_k":3,"messages":[{"role":"user","content":"hi"}]}""", "max_tokens")]
    [InlineData("""{"model":"m","max_tokens":10,"top_k":3,"messages":[{"role":"robot","content":"hi"}]}""", "role")]
    [InlineData("""{"model":"m","max_tokens":10,"thinking":"on","messages":[{"role":"user","content":"hi"}]}""", "thinking")]
    public void What_is_invalid_is_refused_even_beside_an_untranslatable_field(string json, string mentioned)
    {
        var t = Native(json);
        Assert.NotNull(t.Error);
        Assert.Contains(mentioned, t.Error!.Message);
    }
}
