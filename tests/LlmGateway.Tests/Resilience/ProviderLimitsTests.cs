using LlmGateway.Configuration;
using LlmGateway.Resilience;
using LlmGateway.Tests.Routing;

namespace LlmGateway.Tests.Resilience;

public class ProviderLimitsTests
{
    [Fact]
    public void MaxConcurrency_calls_are_let_through_the_next_is_refused_and_a_released_slot_lets_one_more_in()
    {
        using var limits = new ProviderLimits(new ProviderOptions { Type = ProviderTypes.OpenAi, MaxConcurrency = 2 });
        using var request = RoutingSetup.Ask("m");

        Assert.Equal(LimitVerdict.Acquired, limits.TryAcquire(request, out _));
        Assert.Equal(LimitVerdict.Acquired, limits.TryAcquire(request, out _));
        Assert.Equal(2, limits.InFlight);
        Assert.Equal(LimitVerdict.Concurrency, limits.TryAcquire(request, out var retryAfter));
        Assert.Equal(ResilienceDefaults.ConcurrencyRetryAfter, retryAfter);
        Assert.Equal(2, limits.InFlight);

        limits.Release();
        Assert.Equal(1, limits.InFlight);
        Assert.Equal(LimitVerdict.Acquired, limits.TryAcquire(request, out _));
        Assert.Equal(LimitVerdict.Concurrency, limits.TryAcquire(request, out _));
    }

    [Fact]
    public void A_call_refused_by_the_rpm_limit_gives_its_concurrency_slot_back()
    {
        using var limits = new ProviderLimits(new ProviderOptions { Type = ProviderTypes.OpenAi, MaxConcurrency = 5, Rpm = 1 });
        using var request = RoutingSetup.Ask("m");

        Assert.Equal(LimitVerdict.Acquired, limits.TryAcquire(request, out _));
        Assert.Equal(LimitVerdict.Rpm, limits.TryAcquire(request, out _));
        Assert.Equal(1, limits.InFlight);
    }

    [Fact]
    public async Task Racing_callers_never_hold_more_slots_than_MaxConcurrency()
    {
        const int max = 3;
        using var limits = new ProviderLimits(new ProviderOptions { Type = ProviderTypes.OpenAi, MaxConcurrency = max });
        using var request = RoutingSetup.Ask("m");
        var held = 0;
        var most = 0;
        var granted = 0;

        await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                if (limits.TryAcquire(request, out _) != LimitVerdict.Acquired) continue;
                Interlocked.Increment(ref granted);
                var now = Interlocked.Increment(ref held);
                int seen;
                while (now > (seen = Volatile.Read(ref most)) && Interlocked.CompareExchange(ref most, now, seen) != seen) { }
                Interlocked.Decrement(ref held);
                limits.Release();
            }
        })));

        Assert.InRange(most, 1, max);
        Assert.True(granted > 0);
        Assert.Equal(0, limits.InFlight);
    }
}
