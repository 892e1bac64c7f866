using System.Text;
using System.Text.Json;

namespace LlmGateway.Tests.Pipeline;

public sealed class JsonScannerTests
{
    private static byte[] Json(string s) => Encoding.UTF8.GetBytes(s);

    [Theory]
    [InlineData("""{"model":"gpt"}""", "gpt")]
    [InlineData("""{"messages":[{"model":"inner"}],"model":"outer"}""", "outer")] // nested ones are skipped, not found
    [InlineData("""{"meta":{"model":"inner"}}""", null)]
    [InlineData("""{"model":42}""", null)]
    [InlineData("""{"mod\u0065l":"escaped"}""", "escaped")] // names compare as text, escapes and all
    [InlineData("""{"model":"first","model":"second"}""", "first")]
    [InlineData("""["model","x"]""", null)]
    [InlineData("""{"other":[1,2""", null)] // malformed before it: as good as absent
    [InlineData("", null)]
    public void FindString_reads_only_a_top_level_string(string json, string? expected) =>
        Assert.Equal(expected, JsonScanner.FindString(Json(json), "model"u8));

    [Fact]
    public void TryFind_leaves_the_reader_on_the_value_and_FindNext_goes_on_to_the_next_one()
    {
        var json = Json("""{"a":1,"list":[{"list":0}],"b":{"list":2},"list":true}""");

        Assert.True(JsonScanner.TryFind(json, "list"u8, out var reader));
        Assert.Equal(JsonTokenType.StartArray, reader.TokenType);
        var start = (int)reader.TokenStartIndex;
        reader.Skip();
        Assert.Equal("""[{"list":0}]""", Encoding.UTF8.GetString(json, start, (int)reader.BytesConsumed - start));

        Assert.True(JsonScanner.FindNext(ref reader, "list"u8));
        Assert.Equal(JsonTokenType.True, reader.TokenType);
        Assert.False(JsonScanner.FindNext(ref reader, "list"u8));
    }

    [Fact]
    public void A_missing_property_is_not_found()
    {
        Assert.False(JsonScanner.TryFind(Json("""{"a":{"stream":true}}"""), "stream"u8, out _));
        Assert.False(JsonScanner.TryFind(Json("{}"), "stream"u8, out _));
    }
}
