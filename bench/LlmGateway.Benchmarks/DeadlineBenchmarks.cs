using BenchmarkDotNet.Attributes;
using LlmGateway.Resilience;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The deadlines of one non-streaming miss as step 5 sets them: the request's total (armed by the pipeline) and its one
/// attempt's (linked to the total, armed by the executor), both let go at the end. The timer queue's lock and the clock
/// are in here; the call between them is not.
/// </summary>
[MemoryDiagnoser]
public class DeadlineBenchmarks
{
    private static readonly TimeSpan s_total = TimeSpan.FromSeconds(600);
    private static readonly TimeSpan s_attempt = TimeSpan.FromSeconds(120);

    [Benchmark]
    public bool Deadlines_TotalAndAttempt()
    {
        var total = new TimedCancellation(TimeProvider.System, CancellationToken.None);
        total.CancelAfter(s_total);
        var attempt = new TimedCancellation(TimeProvider.System, total.Token);
        attempt.CancelAfter(s_attempt);
        var cancelled = attempt.IsCancellationRequested;
        attempt.Dispose();
        total.Dispose();
        return cancelled;
    }
}
