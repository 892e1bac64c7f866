using LlmGateway.Caching;
using LlmGateway.Providers;

namespace LlmGateway.Tests.Caching;

public class CapturingStreamTests
{
    /// <summary>
    /// A relay flushes once for events that arrived together only when its stream says the next one is in hand: a
    /// capturing stream (a cacheable answer, a stored conversation turn) must say what the stream it wraps says.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Says_whether_the_next_event_is_in_hand_as_the_wrapped_stream_does(bool buffered)
    {
        var inner = new InHand { Buffered = buffered };
        var capture = new CapturingStream(inner, [], maxBytes: 1024);
        Assert.Equal(buffered, capture.HasBufferedEvent);
        inner.Buffered = !buffered;
        Assert.Equal(!buffered, capture.HasBufferedEvent);
    }

    private sealed class InHand : ChatStream
    {
        public bool Buffered { get; set; }

        public override bool HasBufferedEvent => Buffered;

        public override ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken) => new(new StreamEvent(StreamEventKind.End, default));

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
