using System.Text;
using LlmGateway.Streaming;

namespace LlmGateway.Tests.Streaming;

public class LineReaderTests
{
    private static async Task<List<string>> ReadAll(LineReader reader)
    {
        var lines = new List<string>();
        while (await reader.ReadLineAsync(CancellationToken.None) is { } line) lines.Add(Encoding.UTF8.GetString(line.Span));
        return lines;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(4096)]
    public async Task Reads_lf_and_crlf_lines_across_reads_and_a_last_line_without_terminator(int step)
    {
        var body = "{\"a\":1}\r\n\n{\"b\":2}\nlast";
        using var reader = new LineReader(new SseReaderTests.TricklingStream(Encoding.UTF8.GetBytes(body), step));
        Assert.Equal(["{\"a\":1}", "", "{\"b\":2}", "last"], await ReadAll(reader));
        Assert.True(reader.AtEnd);
    }

    [Fact]
    public async Task The_sync_and_async_ways_take_the_same_lines_in_turn()
    {
        using var reader = new LineReader(new SseReaderTests.TricklingStream(Encoding.UTF8.GetBytes("one\ntwo\nthree\n"), 2));
        Assert.False(reader.TryReadLine(out _)); // nothing read yet
        reader.Filled(await reader.FillAsync(CancellationToken.None));
        reader.Filled(await reader.FillAsync(CancellationToken.None));
        Assert.True(reader.TryReadLine(out var first));
        Assert.Equal("one", Encoding.UTF8.GetString(first.Span));
        Assert.Equal(["two", "three"], await ReadAll(reader));
    }

    [Fact]
    public async Task A_line_over_the_limit_is_refused_without_growing_past_it()
    {
        var body = new string('x', 40_000) + "\n";
        using var reader = new LineReader(new SseReaderTests.TricklingStream(Encoding.UTF8.GetBytes(body), 4096), maxLineBytes: 32 * 1024);
        var error = await Assert.ThrowsAsync<InvalidDataException>(async () => await reader.ReadLineAsync(CancellationToken.None));
        Assert.Contains("32768", error.Message);
    }

    [Fact]
    public async Task A_line_under_the_limit_grows_the_buffer()
    {
        var body = new string('y', 20_000) + "\nz\n";
        using var reader = new LineReader(new SseReaderTests.TricklingStream(Encoding.UTF8.GetBytes(body), 3000), maxLineBytes: 32 * 1024);
        var lines = await ReadAll(reader);
        Assert.Equal(2, lines.Count);
        Assert.Equal(20_000, lines[0].Length);
        Assert.Equal("z", lines[1]);
    }
}
