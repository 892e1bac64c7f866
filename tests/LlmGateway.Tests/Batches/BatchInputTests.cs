using System.Text;
using LlmGateway.Batches;

namespace LlmGateway.Tests.Batches;

public sealed class BatchInputTests
{
    private static List<string>? Parse(string body, bool jsonLines, out LlmGateway.Http.ApiError? error, int maxItems = 100)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var items = BatchInput.TryParse(new ArraySegment<byte>(bytes), jsonLines, maxItems, out error);
        return items?.Select(i => Encoding.UTF8.GetString(i)).ToList();
    }

    [Fact]
    public void A_json_array_is_split_into_its_objects_as_written()
    {
        var items = Parse(""" [ {"model":"a","messages":[{"role":"user","content":"[x]"}]} ,{"model":"b"}] """, jsonLines: false, out var error);

        Assert.Null(error);
        Assert.Equal(["""{"model":"a","messages":[{"role":"user","content":"[x]"}]}""", """{"model":"b"}"""], items);
    }

    [Fact]
    public void Json_lines_skip_blank_lines_and_carriage_returns()
    {
        var items = Parse("{\"model\":\"a\"}\r\n\r\n  {\"model\":\"b\"}  \n{\"model\":\"c\"}\n", jsonLines: true, out var error);

        Assert.Null(error);
        Assert.Equal(["{\"model\":\"a\"}", "{\"model\":\"b\"}", "{\"model\":\"c\"}"], items);
    }

    [Theory]
    [InlineData("", false, "invalid_batch")]
    [InlineData("[]", false, "invalid_batch")]
    [InlineData("{\"model\":\"a\"}", false, "invalid_batch")]
    [InlineData("[{\"model\":\"a\"}, 3]", false, "invalid_batch")]
    [InlineData("[{\"model\":\"a\"}", false, "invalid_json")]
    [InlineData("[{\"model\":\"a\"}] []", false, "invalid_json")]
    [InlineData("\n\n", true, "invalid_batch")]
    [InlineData("{\"model\":\"a\"}\n[1]", true, "invalid_batch")]
    [InlineData("{\"model\":\"a\"}\n{\"model\":", true, "invalid_batch")]
    [InlineData("{\"model\":\"a\"} {\"model\":\"b\"}", true, "invalid_batch")]
    public void A_body_that_is_not_a_batch_of_objects_is_refused_whole(string body, bool jsonLines, string code)
    {
        var items = Parse(body, jsonLines, out var error);

        Assert.Null(items);
        Assert.Equal(400, error!.Status);
        Assert.Equal("invalid_request_error", error.Type);
        Assert.Equal(code, error.Code);
    }

    [Fact]
    public void A_bad_line_is_named_by_its_number()
    {
        Parse("{\"model\":\"a\"}\n\nnot json\n", jsonLines: true, out var error);

        Assert.Equal("line 3", error!.Param);
        Assert.StartsWith("Line 3 of the batch is not a JSON object", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void More_items_than_the_limit_are_refused(bool jsonLines)
    {
        var body = jsonLines ? "{}\n{}\n{}\n{}" : "[{},{},{},{}]";

        Assert.NotNull(Parse(body, jsonLines, out _, maxItems: 4));
        Assert.Null(Parse(body, jsonLines, out var error, maxItems: 3));
        Assert.Equal("batch_too_large", error!.Code);
    }

    [Theory]
    [InlineData("application/jsonl", true)]
    [InlineData("application/x-ndjson; charset=utf-8", true)]
    [InlineData("APPLICATION/JSONL", true)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Json_lines_are_recognised_by_content_type(string? contentType, bool expected) =>
        Assert.Equal(expected, BatchInput.IsJsonLines(contentType));

    [Theory]
    [InlineData("""{"model":"a","stream":true}""", true)]
    [InlineData("""{"metadata":{"stream":true},"stream":false}""", false)]
    [InlineData("""{"messages":[{"stream":true}]}""", false)]
    [InlineData("""{"model":"a"}""", false)]
    public void Only_a_top_level_stream_true_asks_for_a_stream(string item, bool expected) =>
        Assert.Equal(expected, BatchInput.AsksForStream(Encoding.UTF8.GetBytes(item)));
}
