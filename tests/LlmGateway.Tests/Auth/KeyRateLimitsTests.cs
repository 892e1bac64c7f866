using LlmGateway.Auth;
using LlmGateway.Providers;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmGateway.Tests.Auth;

public class KeyRateLimitsTests
{
    /// <summary>A limiter that takes everything and holds each correction until the test lets it through.</summary>
    private sealed class HeldLimiter : IRateLimiter
    {
        public List<(string Key, int Delta)> Adjusted { get; } = [];
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Exception? Fail { get; init; }

        public ValueTask<RateLimitResult> AcquireAsync(string key, int limit, TimeSpan window, int cost, DateTimeOffset now, CancellationToken cancellationToken = default) =>
            new(new RateLimitResult(true, limit, limit - cost, window, TimeSpan.Zero));

        public async ValueTask AdjustAsync(string key, int limit, TimeSpan window, int delta, DateTimeOffset now, CancellationToken cancellationToken = default)
        {
            Adjusted.Add((key, delta));
            await Release.Task;
            if (Fail is not null) throw Fail;
        }
    }

    private static readonly CallerIdentity s_caller = new("team-a", ModelPatterns.All, localOnly: false, rpm: 0, tpm: 10_000, dailyUsd: 0, monthlyUsd: 0);

    [Fact]
    public async Task The_TPM_correction_is_sent_before_the_settle_returns_and_not_waited_for()
    {
        var limiter = new HeldLimiter();
        var limits = new KeyRateLimits(limiter, TimeProvider.System, new NullGatewayEvents(), NullLogger<KeyRateLimits>.Instance);
        var admission = await limits.AdmitAsync(s_caller, estimatedTokens: 500, CancellationToken.None);

        admission.Ticket!.Settle(new TokenUsage(100, 50));

        // Returned while the limiter still holds the correction: the request does not wait for the store.
        Assert.False(limiter.Release.Task.IsCompleted);
        Assert.Equal([("tpm:team-a", 150 - 500)], limiter.Adjusted);
        limiter.Release.SetResult();
    }

    [Fact]
    public async Task A_correction_that_fails_later_fails_nobody()
    {
        var limiter = new HeldLimiter { Fail = new InvalidOperationException("the store went away") };
        var limits = new KeyRateLimits(limiter, TimeProvider.System, new NullGatewayEvents(), NullLogger<KeyRateLimits>.Instance);
        var admission = await limits.AdmitAsync(s_caller, estimatedTokens: 500, CancellationToken.None);
        var unobserved = 0;
        EventHandler<UnobservedTaskExceptionEventArgs> count = (_, _) => Interlocked.Increment(ref unobserved);
        TaskScheduler.UnobservedTaskException += count;
        try
        {
            admission.Ticket!.Settle(new TokenUsage(900, 0));
            limiter.Release.SetResult();
            await Task.Delay(50);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.Equal(0, unobserved);
            Assert.Equal([("tpm:team-a", 400)], limiter.Adjusted);
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= count;
        }
    }
}
