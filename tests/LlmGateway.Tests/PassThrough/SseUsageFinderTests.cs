using System.Text;
using LlmGateway.PassThrough;

namespace LlmGateway.Tests.PassThrough;

public class SseUsageFinderTests
{
    // A Responses API stream as OpenAI sends it: the usage only in the last event, nested in "response".
    private const string ResponsesStream =
        "event: response.created\n" +
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-4o-mini-2024-07-18\",\"status\":\"in_progress\",\"usage\":null}}\n\n" +
        "event: response.output_text.delta\n" +
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello \\\"usage\\\": {\"}\n\n" +
        "event: response.output_text.delta\n" +
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" world\"}\n\n" +
        "event: response.completed\n" +
        "data: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-4o-mini-2024-07-18\",\"status\":\"completed\"," +
        "\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\"}]}]," +
        "\"usage\":{\"input_tokens\":36,\"input_tokens_details\":{\"cached_tokens\":8},\"output_tokens\":87,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":123}}}\n\n";

    // A chat-completions-style stream with stream_options.include_usage: "usage":null until the last chunk.
    private const string ChatStream =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n" +
        "data: [DONE]\n\n";

    private static SseUsageFinder Feed(string stream, int cut)
    {
        var bytes = Encoding.UTF8.GetBytes(stream);
        var finder = new SseUsageFinder();
        finder.Append(bytes.AsSpan(0, cut));
        finder.Append(bytes.AsSpan(cut));
        return finder;
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void A_responses_stream_cut_at_every_byte_gives_the_completed_events_model_and_usage(string newline)
    {
        var stream = ResponsesStream.Replace("\n", newline, StringComparison.Ordinal);
        for (var cut = 0; cut <= Encoding.UTF8.GetByteCount(stream); cut++)
        {
            using var finder = Feed(stream, cut);

            Assert.Equal("gpt-4o-mini-2024-07-18", finder.Usage.Model);
            Assert.Equal((36, 87, 8), (finder.Usage.Usage.Prompt, finder.Usage.Usage.Completion, finder.Usage.Usage.CachedPrompt));
        }
    }

    [Fact]
    public void A_responses_stream_fed_one_byte_at_a_time_gives_its_usage()
    {
        using var finder = new SseUsageFinder();
        foreach (var b in Encoding.UTF8.GetBytes(ResponsesStream.Replace("\n", "\r\n", StringComparison.Ordinal))) finder.Append([b]);

        Assert.Equal(123, finder.Usage.Usage.Total);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void A_chat_style_stream_gives_the_usage_of_its_final_chunk_wherever_it_is_cut(string newline)
    {
        var stream = ChatStream.Replace("\n", newline, StringComparison.Ordinal);
        for (var cut = 0; cut <= stream.Length; cut++)
        {
            using var finder = Feed(stream, cut);

            Assert.Equal("gpt-4o-mini", finder.Usage.Model);
            Assert.Equal((5, 7, 2), (finder.Usage.Usage.Prompt, finder.Usage.Usage.Completion, finder.Usage.Usage.CachedPrompt));
        }
    }

    [Fact]
    public void Incomplete_and_failed_responses_carry_their_usage_too()
    {
        using var incomplete = Feed("data: {\"type\":\"response.incomplete\",\"response\":{\"model\":\"m\",\"status\":\"incomplete\",\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"total_tokens\":7}}}\n\n", 0);
        using var failed = Feed("data: {\"type\":\"response.failed\",\"response\":{\"model\":\"m\",\"status\":\"failed\",\"usage\":{\"input_tokens\":9,\"output_tokens\":0,\"total_tokens\":9}}}\n\n", 0);

        Assert.Equal((3, 4), (incomplete.Usage.Usage.Prompt, incomplete.Usage.Usage.Completion));
        Assert.Equal(9, failed.Usage.Usage.Prompt);
    }

    [Fact]
    public void A_stream_without_a_usage_event_gives_no_usage()
    {
        var cut = ResponsesStream.IndexOf("event: response.completed", StringComparison.Ordinal);
        using var broken = Feed(ResponsesStream[..cut], 0);
        using var chat = Feed(ChatStream.Replace("\"usage\":{", "\"usage_x\":{", StringComparison.Ordinal), 17);

        Assert.True(broken.Usage.Usage.IsEmpty);
        Assert.Null(broken.Usage.Model);
        Assert.True(chat.Usage.Usage.IsEmpty);
    }

    [Fact]
    public void A_usage_event_cut_off_before_its_line_ends_is_not_read()
    {
        var end = ResponsesStream.LastIndexOf("}}}", StringComparison.Ordinal);
        using var finder = Feed(ResponsesStream[..end], 0);

        Assert.True(finder.Usage.Usage.IsEmpty);
    }

    [Fact]
    public void A_usage_line_over_the_limit_is_skipped_and_counted_and_the_stream_is_still_read_after_it()
    {
        var longText = new string('x', SseUsageFinder.MaxLineBytes);
        var tooLong = "data: {\"type\":\"response.completed\",\"response\":{\"model\":\"big\",\"output\":[{\"text\":\"" + longText +
                      "\"}],\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"total_tokens\":3}}}\n\n";
        var after = "data: {\"object\":\"chat.completion.chunk\",\"model\":\"small\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5}}\n\n";
        using var finder = new SseUsageFinder();
        var bytes = Encoding.UTF8.GetBytes(tooLong);
        for (var i = 0; i < bytes.Length; i += 16 * 1024) finder.Append(bytes.AsSpan(i, Math.Min(16 * 1024, bytes.Length - i)));

        Assert.True(finder.Usage.Usage.IsEmpty);
        Assert.Equal(1, finder.SkippedLines);

        finder.Append(Encoding.UTF8.GetBytes(after));
        Assert.Equal("small", finder.Usage.Model);
        Assert.Equal((4, 5), (finder.Usage.Usage.Prompt, finder.Usage.Usage.Completion));
    }

    [Fact]
    public void A_long_line_that_cannot_carry_usage_is_not_counted_as_skipped()
    {
        var delta = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"" + new string('y', SseUsageFinder.MaxLineBytes + 10) + "\"}\n\n";
        using var finder = Feed(delta + ResponsesStream, 100);

        Assert.Equal(0, finder.SkippedLines);
        Assert.Equal(123, finder.Usage.Usage.Total);
    }

    [Fact]
    public void A_usage_line_just_under_the_limit_is_read()
    {
        var prefix = "data: {\"type\":\"response.completed\",\"response\":{\"model\":\"big\",\"output\":[{\"text\":\"";
        var suffix = "\"}],\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"total_tokens\":3}}}";
        var line = prefix + new string('x', SseUsageFinder.MaxLineBytes - prefix.Length - suffix.Length) + suffix;
        Assert.Equal(SseUsageFinder.MaxLineBytes, line.Length);

        using var finder = Feed(line + "\n\n", 5000);

        Assert.Equal(0, finder.SkippedLines);
        Assert.Equal(("big", 1, 2), (finder.Usage.Model, finder.Usage.Usage.Prompt, finder.Usage.Usage.Completion));
    }

    [Fact]
    public void Lines_other_than_data_lines_are_never_read_for_usage()
    {
        using var finder = Feed(": {\"usage\":{\"prompt_tokens\":1}}\nevent: {\"usage\":{\"prompt_tokens\":1}}\nid: 1\n\n", 3);

        Assert.True(finder.Usage.Usage.IsEmpty);
    }

    [Fact]
    public void The_last_event_with_usage_wins()
    {
        using var finder = Feed(
            "data: {\"model\":\"a\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n" +
            "data: {\"model\":\"b\",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n\n" +
            "data: {\"model\":\"c\",\"usage\":null}\n\n", 40);

        Assert.Equal(("b", 2, 3), (finder.Usage.Model, finder.Usage.Usage.Prompt, finder.Usage.Usage.Completion));
    }
}

public class EventStreamTeeTests
{
    [Fact]
    public async Task Every_write_and_flush_goes_through_unchanged_and_the_usage_is_found_on_the_side()
    {
        var inner = new FlushCountingStream();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var tee = new EventStreamTee(inner, time);
        var first = Encoding.UTF8.GetBytes("event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"m\",");
        var second = Encoding.UTF8.GetBytes("\"usage\":{\"input_tokens\":2,\"output_tokens\":3,\"total_tokens\":5}}}\r\n\r\n");

        Assert.Equal(0, tee.FirstByte);
        await tee.WriteAsync(first);
        await tee.FlushAsync();
        Assert.Equal(first, inner.ToArray());
        Assert.Equal(1, inner.Flushes);
        Assert.True(tee.Usage.Usage.IsEmpty); // the event's line has not ended yet
        Assert.NotEqual(0, tee.FirstByte);
        tee.Write(second);
        tee.Flush();

        Assert.Equal([.. first, .. second], inner.ToArray());
        Assert.Equal(2, inner.Flushes);
        Assert.Equal(("m", 2, 3), (tee.Usage.Model, tee.Usage.Usage.Prompt, tee.Usage.Usage.Completion));
    }

    private sealed class FlushCountingStream : MemoryStream
    {
        public int Flushes { get; private set; }

        public override void Flush()
        {
            Flushes++;
            base.Flush();
        }

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Flushes++;
            return Task.CompletedTask;
        }
    }
}
