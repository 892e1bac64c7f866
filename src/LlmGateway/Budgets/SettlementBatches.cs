using LlmGateway.Storage;

namespace LlmGateway.Budgets;

/// <summary>
/// Settlements bound for a remote store (Redis), sent as a group commit: the first goes at once, and those that end
/// while a batch is out go together as soon as it is back, one store call per counter set. No timer and no window:
/// one request at a time sends one call each, as before; sixteen at once send a few.
/// <para>
/// Why: a request's settlement comes after its answer, but awaiting it held the request, and so its connection, for
/// one more round trip to Redis before the next request on that connection was read, and its reply came back through
/// a thread-pool hop that woke a sleeping worker. Not awaiting it took about a fifth of the CPU of a miss on the Redis
/// store (diagnose.sh threads --redis, 2026-12-03, alternating: 131-151 → 108-112 µs per request at 16 connections, with
/// 20-30 % more requests; 405-417 → 332-352 at one, in 3 of 4 pairs).
/// </para>
/// <para>
/// What it changes: the counters show a settlement about a round trip after its answer; until then they still hold its
/// reservation, the most the request could cost, so nothing is admitted that the settled counters would refuse. A
/// settlement the store does not take goes back to <see cref="BudgetService"/> through <c>notSettled</c>, to be kept
/// and spooled as one awaited on the request's path was. A process killed between a request's answer and its batch's
/// send (a round trip at most, as before the call in flight) loses that settlement; its reservation lapses with its lease.
/// </para>
/// </summary>
internal sealed class SettlementBatches(
    Func<CounterRef[], IReadOnlyList<Settlement>, Task<CounterState[]>> settle,
    Func<AttemptCounters, CounterState[], ValueTask> settled,
    Func<AttemptCounters, Settlement, ValueTask> notSettled,
    ILogger logger)
{
    private readonly Lock _lock = new();
    private List<(AttemptCounters Counters, Settlement Settlement)> _pending = [];

    /// <summary>A send loop is running (set and cleared under <see cref="_lock"/>, with the look at what is pending).</summary>
    private bool _sending;

    /// <summary>What <see cref="DrainAsync"/> waits on while a loop runs; made only then, so a request allocates nothing for it.</summary>
    private TaskCompletionSource? _stopped;

    /// <summary>Queues a settlement; sends it now, on this thread up to the store call, unless a batch is out.</summary>
    public void Add(AttemptCounters counters, Settlement settlement)
    {
        lock (_lock)
        {
            _pending.Add((counters, settlement));
            if (_sending) return;
            _sending = true;
        }
        _ = SendLoopAsync();
    }

    /// <summary>Settlements queued and not yet handed to the store (tests).</summary>
    internal int Pending
    {
        get
        {
            lock (_lock) return _pending.Count;
        }
    }

    /// <summary>Returns once nothing is queued or out: at shutdown, when requests are done.</summary>
    public async Task DrainAsync()
    {
        while (true)
        {
            Task? running = null;
            lock (_lock)
            {
                if (_sending) running = (_stopped ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                else if (_pending.Count == 0) return;
                else _sending = true;
            }
            await (running ?? SendLoopAsync()).ConfigureAwait(false);
        }
    }

    /// <summary>Batch after batch until nothing is queued; the look and the end of the loop are one step under the lock, so no settlement is left behind.</summary>
    private async Task SendLoopAsync()
    {
        while (true)
        {
            List<(AttemptCounters Counters, Settlement Settlement)>? batch = null;
            TaskCompletionSource? stopped = null;
            lock (_lock)
            {
                if (_pending.Count == 0)
                {
                    _sending = false;
                    (stopped, _stopped) = (_stopped, null);
                }
                else
                {
                    (batch, _pending) = (_pending, []);
                }
            }
            if (batch is null)
            {
                stopped?.SetResult();
                return;
            }
            await SendAsync(batch).ConfigureAwait(false);
        }
    }

    /// <summary>One store call per counter set (the same object for every request of a provider and key in a window), all sent before any is awaited.</summary>
    private async Task SendAsync(List<(AttemptCounters Counters, Settlement Settlement)> batch)
    {
        var groups = new List<(AttemptCounters Counters, List<Settlement> Settlements)>(1);
        foreach (var (counters, settlement) in batch)
        {
            var i = 0;
            while (i < groups.Count && !ReferenceEquals(groups[i].Counters, counters)) i++;
            if (i == groups.Count) groups.Add((counters, [settlement]));
            else groups[i].Settlements.Add(settlement);
        }
        var calls = new Task<CounterState[]>[groups.Count];
        for (var i = 0; i < groups.Count; i++)
        {
            try
            {
                calls[i] = settle(groups[i].Counters.Refs, groups[i].Settlements);
            }
            catch (Exception e)
            {
                calls[i] = Task.FromException<CounterState[]>(e);
            }
        }
        for (var i = 0; i < groups.Count; i++)
        {
            var (counters, settlements) = groups[i];
            CounterState[]? states = null;
            try
            {
                states = await calls[i].ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Unreachable (StoreUnavailableException) or anything else: kept to send again, never dropped. The store applies each once.
                if (e is not StoreUnavailableException) logger.LogError(e, "Settling {Count} budget settlements failed; they are kept to send again", settlements.Count);
            }
            // Each group's outcome is handed back whatever another group's did: a settlement is kept or known settled, never neither.
            try
            {
                if (states is not null) await settled(counters, states).ConfigureAwait(false);
                else foreach (var s in settlements) await notSettled(counters, s).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                logger.LogError(e, "Handling the outcome of {Count} budget settlements failed", settlements.Count);
            }
        }
    }
}
