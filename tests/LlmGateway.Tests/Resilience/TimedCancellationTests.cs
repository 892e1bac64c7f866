using LlmGateway.Resilience;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Resilience;

public class TimedCancellationTests
{
    private static readonly TimeSpan Total = TimeSpan.FromSeconds(600);
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_request_alone_runs_out_at_its_total_and_says_the_cap_was_reached()
    {
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, Total);
        _time.Advance(Total - TimeSpan.FromMilliseconds(1));
        Assert.False(request.IsCancellationRequested);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(request.CapReached);
        Assert.False(request.TimedOut);
    }

    [Fact]
    public void A_limit_shorter_than_what_is_left_runs_out_as_the_limit()
    {
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, Total);
        request.CancelAfter(TimeSpan.FromSeconds(120), _time.GetTimestamp());
        _time.Advance(TimeSpan.FromSeconds(120));
        Assert.True(request.TimedOut);
        Assert.False(request.CapReached);
    }

    [Fact]
    public void A_limit_longer_than_what_is_left_runs_out_at_the_cap_as_the_total()
    {
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, Total);
        _time.Advance(TimeSpan.FromSeconds(550));
        request.CancelAfter(TimeSpan.FromSeconds(120));
        _time.Advance(TimeSpan.FromSeconds(50) - TimeSpan.FromMilliseconds(1));
        Assert.False(request.IsCancellationRequested);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(request.CapReached);
        Assert.False(request.TimedOut);
    }

    [Fact]
    public void An_infinite_limit_leaves_the_cap_alone_and_a_limit_reset_moves_its_end()
    {
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, Total);
        request.CancelAfter(TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(20));
        request.CancelAfter(TimeSpan.FromSeconds(30)); // an idle timeout reset by a chunk
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(request.IsCancellationRequested);
        request.CancelAfter(Timeout.InfiniteTimeSpan); // the wait is over: only the total runs
        _time.Advance(TimeSpan.FromSeconds(500));
        Assert.False(request.IsCancellationRequested);
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.True(request.CapReached);
    }

    [Fact]
    public void Past_the_cap_a_limit_set_cancels_at_once_as_the_total()
    {
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, TimeSpan.FromSeconds(10));
        // A timer late to fire: the clock is past the cap when the next attempt sets its limit.
        request.CancelAfter(TimeSpan.FromSeconds(5), _time.GetTimestamp() + _time.TimestampFrequency * 11);
        Assert.True(request.CapReached);
        Assert.False(request.TimedOut);
    }

    [Fact]
    public void The_parent_cancelling_is_neither_a_limit_nor_the_cap()
    {
        using var client = new CancellationTokenSource();
        using var request = TimedCancellation.ForRequest(_time, client.Token, Total);
        request.CancelAfter(TimeSpan.FromSeconds(120));
        client.Cancel();
        Assert.True(request.IsCancellationRequested);
        Assert.False(request.TimedOut);
        Assert.False(request.CapReached);
    }

    [Fact]
    public void A_successor_keeps_the_parent_and_the_cap_and_starts_uncancelled()
    {
        using var client = new CancellationTokenSource();
        using var request = TimedCancellation.ForRequest(_time, client.Token, Total);
        request.CancelAfter(TimeSpan.FromSeconds(120));
        _time.Advance(TimeSpan.FromSeconds(120));
        Assert.True(request.TimedOut);

        using var next = request.Successor();
        Assert.False(next.IsCancellationRequested);
        _time.Advance(TimeSpan.FromSeconds(480) - TimeSpan.FromMilliseconds(1));
        Assert.False(next.IsCancellationRequested);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(next.CapReached);

        using var another = request.Successor();
        client.Cancel();
        Assert.True(another.IsCancellationRequested);
        Assert.False(another.TimedOut);
    }

    [Fact]
    public void Without_a_cap_a_limit_that_runs_out_is_the_limit()
    {
        using var timeout = new TimedCancellation(_time, CancellationToken.None);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(timeout.TimedOut);
        Assert.False(timeout.CapReached);
    }

    [Fact]
    public void A_total_of_weeks_runs_out_at_its_time_and_one_beyond_the_timers_reach_throws_as_CancelAfter_does()
    {
        var weeks = TimeSpan.FromDays(40);
        using var request = TimedCancellation.ForRequest(_time, CancellationToken.None, weeks);
        _time.Advance(weeks - TimeSpan.FromMilliseconds(1));
        Assert.False(request.IsCancellationRequested);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(request.CapReached);

        Assert.Throws<ArgumentOutOfRangeException>(() => TimedCancellation.ForRequest(_time, CancellationToken.None, TimeSpan.FromDays(60)));
        Assert.Throws<ArgumentOutOfRangeException>(() => TimedCancellation.ForRequest(TimeProvider.System, CancellationToken.None, TimeSpan.FromDays(400)));
    }
}
