using BenchmarkDotNet.Attributes;
using LlmGateway.Resilience;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The deadlines of one non-streaming miss as step 5 sets them: the request's cancellation, capped at its total time
/// (the pipeline's), its one attempt's limit set on it (the executor's), and let go. The timer queue's lock and the
/// clock are in here; the call between them is not.
/// </summary>
[MemoryDiagnoser]
public class DeadlineBenchmarks
{
    private static readonly TimeSpan s_total = TimeSpan.FromSeconds(600);
    private static readonly TimeSpan s_attempt = TimeSpan.FromSeconds(120);

    [Benchmark]
    public bool Deadlines_TotalAndAttempt()
    {
        var total = TimedCancellation.ForRequest(TimeProvider.System, CancellationToken.None, s_total);
        total.CancelAfter(s_attempt, TimeProvider.System.GetTimestamp());
        var cancelled = total.IsCancellationRequested;
        total.Dispose();
        return cancelled;
    }
}
