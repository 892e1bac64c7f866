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
    public void Rejects_malformed_json(string json)
    {
        Assert.Null(Parse(json, out var error));
        Assert.Equal("invalid_json", error!.Code);
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
}
