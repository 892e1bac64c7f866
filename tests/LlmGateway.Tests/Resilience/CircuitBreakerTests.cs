using LlmGateway.Configuration;
using LlmGateway.Resilience;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Resilience;

public class CircuitBreakerTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly List<CircuitState> _changes = [];

    private CircuitBreaker Breaker(double ratio = 0.5, int minimum = 4, int sampling = 30, int breakSeconds = 10) =>
        new(new CircuitBreakerOptions { FailureRatio = ratio, MinimumThroughput = minimum, SamplingSeconds = sampling, BreakSeconds = breakSeconds },
            _time, _changes.Add);

    private static void Call(CircuitBreaker breaker, bool fails)
    {
        Assert.True(breaker.TryEnter(out var probe));
        if (fails) breaker.OnFailure(probe);
        else breaker.OnSuccess(probe);
    }

    [Fact]
    public void It_stays_closed_below_the_minimum_throughput_however_bad_the_ratio()
    {
        var breaker = Breaker(minimum: 4);
        for (var i = 0; i < 3; i++) Call(breaker, fails: true);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Empty(_changes);
    }

    [Fact]
    public void It_opens_when_the_failure_ratio_is_reached_with_enough_calls()
    {
        var breaker = Breaker(ratio: 0.5, minimum: 4);
        Call(breaker, fails: false);
        Call(breaker, fails: false);
        Call(breaker, fails: true);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Call(breaker, fails: true); // 2 of 4
        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.Equal([CircuitState.Open], _changes);
        Assert.False(breaker.TryEnter(out _));
        Assert.Equal(TimeSpan.FromSeconds(10), breaker.RemainingBreak);
    }

    [Fact]
    public void Failures_older_than_the_sampling_window_no_longer_count()
    {
        var breaker = Breaker(ratio: 0.5, minimum: 4, sampling: 30);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(40));
        Call(breaker, fails: true);
        Call(breaker, fails: false);
        Call(breaker, fails: false);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal((3, 1), breaker.Totals());
    }

    [Fact]
    public void After_the_break_exactly_one_probe_goes_through_and_its_success_closes_the_circuit()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.False(breaker.TryEnter(out _));

        _time.Advance(TimeSpan.FromSeconds(1));
        // The router reads half-open: a request would be let through as the probe.
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.True(breaker.TryEnter(out var probe));
        Assert.True(probe);
        Assert.False(breaker.TryEnter(out _)); // one probe at a time
        breaker.OnSuccess(probe);

        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed], _changes);
        Assert.Equal((0, 0), breaker.Totals()); // a closed circuit starts counting afresh
        Assert.True(breaker.TryEnter(out var after));
        Assert.False(after);
    }

    [Fact]
    public void A_failed_probe_opens_the_circuit_for_another_break()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(breaker.TryEnter(out var probe));
        breaker.OnFailure(probe);
        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.Equal(TimeSpan.FromSeconds(10), breaker.RemainingBreak);
        Assert.Equal([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Open], _changes);
    }

    [Fact]
    public void A_probe_that_told_nothing_frees_the_slot_for_the_next_one()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(breaker.TryEnter(out var probe));
        breaker.OnNeutral(probe); // the client left before the provider answered
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
        Assert.True(breaker.TryEnter(out var next));
        Assert.True(next);
    }

    [Fact]
    public void A_probe_that_never_reports_back_is_replaced_after_a_whole_break()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(breaker.TryEnter(out _));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(breaker.TryEnter(out _));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(breaker.TryEnter(out var replacement));
        Assert.True(replacement);
    }

    [Fact]
    public void A_stream_that_started_closes_the_circuit_and_is_sampled_when_it_ends()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(breaker.TryEnter(out var probe));
        breaker.OnCommitted(probe);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal((0, 0), breaker.Totals());
        breaker.OnFailure(probe: false); // it broke later: one failure, no flip on its own
        Assert.Equal((1, 1), breaker.Totals());
        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void Reset_closes_an_open_circuit_and_forgets_the_samples()
    {
        var breaker = Breaker(minimum: 2);
        Call(breaker, fails: true);
        Call(breaker, fails: true);
        breaker.Reset();
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal((0, 0), breaker.Totals());
        Call(breaker, fails: true);
        Assert.Equal(CircuitState.Closed, breaker.State);
        Assert.Equal([CircuitState.Open, CircuitState.Closed], _changes);
    }
}
