using System.Text;
using LlmGateway.Pipeline;

namespace LlmGateway.Tests.ChatCompletions;

public class ChatRequestTests
{
    private static ChatRequest? Parse(string json, out LlmGateway.Http.ApiError? error) =>
        ChatRequest.TryParse(Encoding.UTF8.GetBytes(json), out error);

    [Fact]
    public void Reads_the_fields_the_gateway_acts_on()
    {
        using var r = Parse("""
            {"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"max_completion_tokens":7,
             "temperature":0,"seed":42,"tools":[{"type":"function","function":{"name":"f"}}],
             "response_format":{"type":"json_object"},"metadata":{"task_type":"sql"},
             "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]}]}
            """, out var error);
        Assert.Null(error);
        Assert.NotNull(r);
        Assert.Equal("m", r.Model);
        Assert.True(r.Stream);
        Assert.True(r.ClientWantsUsage);
        Assert.Equal(7, r.MaxTokens);
        Assert.Equal(0, r.Temperature);
        Assert.Equal(42, r.Seed);
        Assert.True(r.HasTools);
        Assert.True(r.HasImages);
        Assert.Equal("json_object", r.ResponseFormatType);
        Assert.Equal("sql", r.MetadataTaskType);
        Assert.Equal("hello", r.LastUserText);
        Assert.True(r.EstimatedPromptTokens > TokenEstimator.TokensPerImage);
    }

    [Theory]
    [InlineData("[]", null)]
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model")]
    [InlineData("{\"model\":\"m\"}", "messages")]
    [InlineData("{\"model\":\"m\",\"messages\":[]}", "messages")]
    [InlineData("{\"model\":\"m\",\"messages\":\"hi\"}", "messages")]
    [InlineData("{\"model\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content")]
    [InlineData("{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stream")]
    [InlineData("{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens")]
    [InlineData("{\"model\":\"m\",\"max_tokens\":1e300,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens")]
    [InlineData("{\"model\":\"m\",\"temperature\":9,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "temperature")]
    [InlineData("{\"model\":\"m\",\"tools\":{},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools")]
    [InlineData("{\"model\":\"m\",\"metadata\":{\"task_type\":\"caf\\u00e9\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "metadata.task_type")]
    [InlineData("{\"model\":\"m\",\"metadata\":{\"task_type\":\"a\\nb\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "metadata.task_type")]
    public void Rejects_bad_input_with_the_parameter_named(string json, string? param)
    {
        var r = Parse(json, out var error);
        Assert.Null(r);
        Assert.NotNull(error);
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_request_error", error.Type);
        Assert.Equal(param, error.Param);
    }

    [Theory]
    [InlineData("{\"model\":")]
    [InlineData("not json")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}")]
    [InlineData("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ok \\udc00\"}]}]}")]
    public void Rejects_malformed_json(string json)
    {
        Assert.Null(Parse(json, out var error));
        Assert.Equal("invalid_json", error!.Code);
    }

    [Fact]
    public void Malformed_json_is_refused_as_such_whatever_comes_before_it()
    {
        // The model is wrong first, but the body is not JSON at all: that is what the client hears, as when a
        // document was parsed before any field was read.
        Assert.Null(Parse("""{"model":3,"messages":[{"role":"user","content":"x"}]""", out var error));
        Assert.Equal("invalid_json", error!.Code);
        Assert.StartsWith("The request body is not valid JSON: ", error.Message, StringComparison.Ordinal);

        Assert.Null(Parse("""[1,""", out error));
        Assert.Equal("invalid_json", error!.Code);
        Assert.Null(Parse("""[1]""", out error));
        Assert.Equal("The request body must be a JSON object.", error!.Message);
    }

    [Theory]
    // Sent twice, the last one counts, as a document's lookup finds it.
    [InlineData("""{"model":"m","messages":[{"role":"wizard","content":5,"role":"user","content":"x"}]}""", null)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x","content":5}]}""", "messages[0].content")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\ud800","content":"x"}]}""", null)]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1,"text":"x"}]}]}""", null)]
    [InlineData("""{"model":"m","response_format":{"type":"\ud800","type":"json_object"},"messages":[{"role":"user","content":"x"}]}""", null)]
    // An escaped name that is no text fails the lookup when it comes after the last name looked for.
    [InlineData("""{"model":"m","messages":[{"\ud800role":1,"role":"user","content":"x"}]}""", null)]
    [InlineData("""{"model":"m","messages":[{"role":"user","\ud800role":1,"content":"x"}]}""", "invalid_json")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x","\ud800tool_calls":1}]}""", "invalid_json")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"task_type":"sql","\ud800task_type":1}}""", "invalid_json")]
    // Escaped names that decode to the fields are the fields.
    [InlineData("""{"mod\u0065l":"m","m\u0065ssages":[{"r\u006fle":"us\u0065r","content":[{"typ\u0065":"t\u0065xt","t\u0065xt":"x"}]}]}""", null)]
    public void Names_count_as_a_document_lookup_finds_them(string json, string? refused)
    {
        using var request = Parse(json, out var error);
        Assert.Equal(refused, error is null ? null : error.Code ?? error.Param);
        Assert.Equal(refused is null, request is not null);
    }

    [Fact]
    public void The_document_is_made_when_first_read_and_never_after_dispose()
    {
        var request = Parse("""{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}""", out _)!;

        Assert.Equal("hi", request.LastUserText);
        Assert.Equal(2, request.Root.GetProperty("messages").GetArrayLength());

        request.Dispose();
        Assert.Throws<ObjectDisposedException>(() => request.Root);
    }

    [Fact]
    public void The_model_splice_is_the_properties_around_the_one_model()
    {
        var json = """{ "a" : 1, "model":"m" ,"messages":[{"role":"user","content":"x"}] , "b":[2] }""";
        using var request = Parse(json, out _)!;

        Assert.True(request.TryGetModelSplice(out var before, out var after));
        Assert.Equal("\"a\" : 1", json[before]);
        Assert.Equal("\"messages\":[{\"role\":\"user\",\"content\":\"x\"}] , \"b\":[2]", json[after]);

        using var first = Parse("""{"model":"m","messages":[{"role":"user","content":"x"}]}""", out _)!;
        Assert.True(first.TryGetModelSplice(out before, out _));
        Assert.Equal(default, before);

        using var twice = Parse("""{"model":"m","messages":[{"role":"user","content":"x"}],"model":"n"}""", out _)!;
        Assert.False(twice.TryGetModelSplice(out _, out _));
    }

    [Fact]
    public void A_model_name_seen_again_is_the_same_string_and_any_name_reads_as_sent()
    {
        // Tests running alongside parse other names, which may take the slot in between: a few tries.
        var same = false;
        for (var i = 0; i < 5 && !same; i++)
        {
            using var first = Parse("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}""", out _)!;
            using var again = Parse("""{"model":"gpt-4o-mini","messages":[{"role":"user","content":"y"}]}""", out _)!;
            same = ReferenceEquals(first.Model, again.Model);
        }
        using var accented = Parse("""{"model":"modèle","messages":[{"role":"user","content":"x"}]}""", out _)!;
        using var escaped = Parse("""{"model":"gpt-4o-min\u0069","messages":[{"role":"user","content":"x"}]}""", out _)!;

        Assert.True(same);
        Assert.Equal("modèle", accented.Model);
        Assert.Equal("gpt-4o-mini", escaped.Model);
    }

    [Fact]
    public void Rejects_nesting_deeper_than_the_limit()
    {
        var deep = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x\":" + new string('[', 100) + new string(']', 100) + "}";
        Assert.Null(Parse(deep, out var error));
        Assert.Equal(400, error!.Status);
    }

    [Fact]
    public void Rejects_invalid_utf8()
    {
        var bytes = Encoding.UTF8.GetBytes("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}]}");
        bytes[Array.IndexOf(bytes, (byte)'a')] = 0xC3; // a lead byte with no continuation
        Assert.Null(ChatRequest.TryParse(bytes, out var error));
        Assert.Equal(400, error!.Status);
    }

    [Theory]
    [InlineData(10_000, 512, 128, null)]
    [InlineData(10_001, 0, 1, "messages")]
    [InlineData(1, 513, 1, "tools")]
    [InlineData(1, 0, 129, "n")]
    public void Counts_and_n_are_held_to_the_configured_limits(int messages, int tools, int n, string? param)
    {
        var json = $$"""{"model":"m","n":{{n}},"tools":[{{string.Join(",", Enumerable.Repeat("{}", tools))}}],"messages":[{{string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", messages))}}]}""";
        using var request = ChatRequest.TryParse(System.Text.Encoding.UTF8.GetBytes(json), out var parseError);
        Assert.Null(parseError);

        var error = request!.CheckLimits(new LlmGateway.Configuration.LimitsOptions());

        Assert.Equal(param, error?.Param);
        if (param is not null) Assert.Equal(400, error!.Status);
    }

    [Theory]
    [InlineData("plain ascii")]
    [InlineData("")]
    [InlineData(@"caf\u00e9 \""quoted\"" \\ back\nline")]
    [InlineData("café, naïve, 東京")]
    [InlineData(@"a pair \ud83d\ude00 escaped")]
    [InlineData("an emoji 😀 as UTF-8")]
    public void Text_lengths_are_what_the_decoded_strings_say(string jsonText)
    {
        var json = Encoding.UTF8.GetBytes($"{{\"s\":\"{jsonText}\",\"a\":[\"{jsonText}\",{{\"t\":\"{jsonText}\"}}]}}");
        using var document = System.Text.Json.JsonDocument.Parse(json);

        Assert.True(JsonScanner.TryFind(json, "s"u8, out var s));
        Assert.Equal(document.RootElement.GetProperty("s").GetString()!.Length, RequestJson.TextLength(ref s));
        Assert.True(JsonScanner.TryFind(json, "a"u8, out var a));
        Assert.Equal(document.RootElement.GetProperty("a").GetRawText().Length, RequestJson.RawTextLength(json, ref a));
        Assert.Equal(System.Text.Json.JsonTokenType.EndArray, a.TokenType);
    }

    [Fact]
    public void Estimates_count_escaped_and_multibyte_text_by_its_characters()
    {
        // 9 characters each way (the emoji is two UTF-16 units), so one character fewer moves the estimate
        // across a token (4 characters per token), and counting bytes or escapes (13 and more) moves it too.
        using var escaped = Parse("""{"model":"m","messages":[{"role":"user","content":"h\u00e9llo, \u6771\u4eac"}]}""", out _);
        using var raw = Parse("""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"héllo, 東京"}]}]}""", out _);
        using var emoji = Parse("""{"model":"m","messages":[{"role":"user","content":"東 😀 abcd"}]}""", out _);

        var expected = TokenEstimator.FromCharacters(9, 1, 0);
        Assert.Equal(expected, escaped!.EstimatedPromptTokens);
        Assert.Equal(expected, raw!.EstimatedPromptTokens);
        Assert.Equal(expected, emoji!.EstimatedPromptTokens);
        Assert.NotEqual(TokenEstimator.FromCharacters(8, 1, 0), expected);
        Assert.NotEqual(TokenEstimator.FromCharacters(13, 1, 0), expected);
    }

    [Fact]
    public void Property_names_are_matched_after_unescaping_and_long_unknown_ones_are_ignored()
    {
        using var r = Parse("""{"mod\u0065l":"m","a_property_name_longer_than_thirty_two_characters":1,"messages":[{"role":"user","content":"x"}],"te\u006dperature":0.5}""", out var error);

        Assert.Null(error);
        Assert.Equal("m", r!.Model);
        Assert.Equal(0.5, r.Temperature);
    }
}
