using System.Runtime.CompilerServices;
using LlmGateway.Budgets;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
namespace LlmGateway.Resilience;

/// <summary>
/// The result of trying the candidates: either a committed answer (a complete body, or a stream
/// whose first real content has arrived) or the error the client gets.
/// </summary>
public sealed class Execution : IAsyncDisposable
{
    public Candidate? Candidate { get; init; }
    public ProviderResponse? Response { get; init; }

    /// <summary>
    /// Stream events read before the commit point (role chunk, the first content), copied, in order. Read, never added
    /// to, by whoever gets the execution: one empty list serves every complete body and every error, which made two
    /// of their own before (the initializer's and the executor's).
    /// </summary>
    public List<(StreamEventKind Kind, byte[] Data)> Pending { get; init; } = NothingPending;

    internal static readonly List<(StreamEventKind Kind, byte[] Data)> NothingPending = [];

    /// <summary>The stream ended (cleanly) before any content: nothing more to read.</summary>
    public bool EndedBeforeContent { get; set; }

    /// <summary>
    /// Cancels the committed attempt: the client leaving, the total timeout, or an idle timeout set by the reader. The
    /// execution disposes it; it may be the request's own cancellation, which its owner disposes as well. For an error,
    /// the successor the executor made when an attempt's limit ran out, if it did.
    /// </summary>
    public TimedCancellation? Cancellation { get; init; }

    /// <summary>The committed provider's longest allowed silence between two chunks.</summary>
    public TimeSpan StreamIdleTimeout { get; init; }

    public ApiError? Error { get; init; }

    /// <summary>The limits whose concurrency slot this answer holds until it is fully delivered; given back once.</summary>
    internal ProviderLimits? Slot
    {
        get => _slot;
        init => _slot = value;
    }
    private ProviderLimits? _slot;

    /// <summary>A committed stream's outcome for the provider's health, told by its reader; null for a complete body.</summary>
    internal StreamCommit? Commit { get; init; }

    public ValueTask DisposeAsync()
    {
        // The provider's health hears first, so a stream whose disposal throws still ends its commit.
        Commit?.Release();
        // A complete body's response lets go of its buffer at once: then no state machine runs.
        if (Response is not null && Response.DisposeAsync() is { IsCompletedSuccessfully: false } disposing) return DisposeRestAsync(disposing);
        DisposeRest();
        return default;
    }

    private async ValueTask DisposeRestAsync(ValueTask disposing)
    {
        await disposing.ConfigureAwait(false);
        DisposeRest();
    }

    private void DisposeRest()
    {
        Cancellation?.Dispose();
        Interlocked.Exchange(ref _slot, null)?.Release();
    }
}

/// <summary>What one attempt came to: a committed execution, or a failure and whether to retry it after a delay.</summary>
public readonly record struct AttemptResult(Execution? Execution, ProviderFailure? Failure, TimeSpan? RetryDelay);

/// <summary>
/// Tries the route's candidates in order until one answers. Each candidate runs through its
/// provider's retry pipeline; each attempt asks its deployment's cooldown, the provider's and the
/// deployment's circuits, the provider's limits and the budget first. Failures before the commit
/// point (the first content chunk of a stream, or a complete body) move on invisibly; the
/// classification of each failure decides between retrying the same deployment, the next
/// candidate, or failing the request, and, when every candidate failed, the client's status
/// (<see cref="FinalError"/>).
/// </summary>
public sealed class CandidateExecutor(ProviderResilienceRegistry providers, TimeProvider time, IGatewayEvents events, IAttemptAdmission? admission = null)
{
    /// <remarks>
    /// One async method for the candidates, their retries and each attempt: the attempt was an async method of its own,
    /// a second state machine suspended and resumed with the first on every upstream call, and the state of the request's
    /// way through the candidates was an object made per request to share between the two. Here it is locals.
    /// </remarks>
    /// <param name="total">
    /// The request's cancellation, capped at its total time (<see cref="TimedCancellation.ForRequest"/>); the caller
    /// disposes it. Each attempt runs on it with the attempt's limit set, and puts it back to the cap alone when the call
    /// is over. When a limit ran out, the rest of the request goes on with its <see cref="TimedCancellation.Successor"/>,
    /// which the returned execution owns.
    /// </param>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<Execution> ExecuteAsync(GatewayContext context, TimedCancellation total)
    {
        var candidates = context.Route!.Candidates;
        var stream = context.Request.Stream;
        // Made at the first failure: an answer from the first candidate, the common case, never needs it.
        List<ProviderFailure>? failures = null;
        var minContextWindow = 0;
        string? previousModel = null;
        // The request's cancellation as it is now: the caller's, or a successor once an attempt's limit ran out.
        var current = total;
        // The provider being tried: the total running out while a call waits (its admission, a retry's wait) is told as its timeout.
        var trying = "";

        // One try/catch for the whole way through the candidates: it keeps a successor no execution took from leaking,
        // and tells the total running out while a call waits from the client leaving. Each attempt's own cleanup is its
        // try/finally below; nothing here is an async method of its own (see the remarks).
        try
        {
            for (var i = 0; i < candidates.Count; i++)
            {
                var candidate = candidates[i];
                if (candidate.Model.ContextWindow <= minContextWindow) continue;
                context.RequestAborted.ThrowIfCancellationRequested();
                if (current.Token.IsCancellationRequested)
                {
                    (failures ??= new(candidates.Count)).Add(ProviderFailure.Timeout(candidate.Provider.Name, "the request's total time ran out before it could be tried"));
                    break;
                }

                var provider = providers.Get(candidate.Provider.Name);
                var deployment = provider.Deployment(candidate.UpstreamModel);
                trying = provider.Name;
                // When the first try of this candidate began: its stream's first-token budget runs from here (no clock read for a complete body).
                var candidateStarted = stream ? time.GetTimestamp() : 0;
                // The next try waits out this deployment's cooldown (the upstream's own Retry-After).
                var retryThroughCooldown = false;
                // The failure of the last call actually made to this candidate, and when it came.
                ProviderFailure? lastCallFailure = null;
                long failedAt = 0;

                // :: The retries of this candidate. Every decision (retry or not, and after how long) is the attempt's,
                // which knows the failure's classification and the upstream's Retry-After; this loop only waits, on the
                // injected TimeProvider, and stops when the request's total time or the client's patience runs out.
                // It was Polly's retry strategy, which added four async levels, two state-machine boxes and a pooled
                // context to every attempt, retried or not (an allocation profile of the miss path, 2026-12-02), for a
                // loop whose every choice was already made here. An attempt that ends without a retry leaves it with break.
                AttemptResult result;
                for (var retry = 0; ; retry++)
                {
                    if (retry > 0)
                    {
                        // The wait before a retry is the upstream's doing, not the gateway's overhead.
                        context.AddUpstreamTime(failedAt);
                        events.Retry(provider.Name, deployment.UpstreamModel);
                    }

                    // :: Steps 1 and 2: a cooldown, an open circuit or the provider's limits skip the call (see Enter).
                    var throughCooldown = retryThroughCooldown;
                    retryThroughCooldown = false;
                    if (Enter(provider, deployment, context, throughCooldown, stream, candidateStarted, lastCallFailure, out var entry, out var attemptLimit) is { } skipped)
                    {
                        result = Fail(skipped);
                        break;
                    }

                    // From here the attempt holds the provider's health entry and a concurrency slot, and maybe a budget
                    // ticket: a committed execution takes them over, anything else gives them back in the finally.
                    IAdmissionTicket? ticket = null;
                    var called = false;
                    var committed = false;
                    try
                    {
                        // :: Step 3: the budget may refuse this candidate, so traffic flows to one with room.
                        if (admission is not null)
                        {
                            var admitted = await admission.AdmitAsync(context, candidate, current.Token).ConfigureAwait(false);
                            if (admitted.Refusal is { } refused)
                            {
                                result = Fail(refused);
                                break;
                            }
                            ticket = admitted.Ticket;
                        }

                        // :: Step 4: one call, up to the commit point, on the request's own cancellation with the attempt's
                        // limit set (up to the total's cap at most).
                        RecordCall(context.Record, candidate, provider.Name, retry == 0 ? previousModel : null);
                        called = true;
                        var timer = current;
                        var started = time.GetTimestamp();
                        timer.CancelAfter(attemptLimit, started);

                        using var span = Telemetry.GatewayTracing.StartAttempt(candidate);

                        // Send to the candidate and, for a stream, read up to the first real content: a provider may answer 200 and
                        // then fail, and until the client has seen a byte, that failure can still go to the next candidate. When the
                        // call started and ended: the upstream time, the latency and the provider's health all read those two
                        // moments, not the clock again. (The call was an async method of its own: one state machine more to run,
                        // and to suspend and resume when the upstream answers, on every call.)
                        ProviderResponse? response = null;
                        List<(StreamEventKind, byte[])>? pending = null;
                        var endedEarly = false;
                        ProviderFailure? failure = null;
                        long ended;
                        try
                        {
                            response = await candidate.Provider.SendAsync(new ProviderRequest(context.Request, candidate.ModelName, candidate.Model), timer.Token).ConfigureAwait(false);
                            if (!response.IsSuccess)
                            {
                                failure = response.Failure;
                                response = null;
                            }
                            else if (response.Stream is { } chatStream)
                            {
                                // What comes before the content (a role chunk) is kept, copied, for the client; the stream
                                // ending or failing first ends the read too.
                                pending = new List<(StreamEventKind, byte[])>(2);
                                StreamEvent ev;
                                do
                                {
                                    ev = await chatStream.ReadAsync(timer.Token).ConfigureAwait(false);
                                    if (ev.Kind is StreamEventKind.End or StreamEventKind.Failed) break;
                                    pending.Add((ev.Kind, ev.Data.ToArray()));
                                }
                                while (ev.Kind != StreamEventKind.Content);

                                endedEarly = ev.Kind == StreamEventKind.End;
                                if (ev.Kind == StreamEventKind.Failed)
                                {
                                    failure = ev.Failure;
                                    await response.DisposeAsync().ConfigureAwait(false);
                                    (response, pending) = (null, null);
                                }
                            }
                        }
                        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
                        {
                            if (response is not null) await response.DisposeAsync().ConfigureAwait(false);
                            (response, pending, endedEarly) = (null, null, false);
                            failure = ProviderFailure.Timeout(candidate.Provider.Name, TimedOutWhy(timer, stream));
                        }
                        catch
                        {
                            if (response is not null) await response.DisposeAsync().ConfigureAwait(false);
                            throw;
                        }
                        finally
                        {
                            ended = time.GetTimestamp();
                            context.AddUpstreamTime(started, ended);
                        }

                        if (failure is null)
                        {
                            // :: Step 5: committed. The client gets this provider's answer, whatever happens next.
                            var execution = Commit(candidate, provider, entry, response!, pending, endedEarly, timer, time.GetElapsedTime(started, ended), ended);
                            context.Admission = ticket;
                            committed = true;
                            Telemetry.GatewayTracing.EndAttempt(span, execution, null);
                            result = new AttemptResult(execution, null, null);
                            break;
                        }

                        // The call failed: the provider hears it, and the failure says whether this candidate gets another try.
                        Telemetry.GatewayTracing.EndAttempt(span, null, failure);
                        lastCallFailure = failure;
                        failedAt = ended;
                        provider.Failed(entry, failure, providerTimedOut: timer.TimedOut);
                        current = AfterAttempt(timer, total, ended);
                        var delay = RetryDelay(provider, deployment, failure, retry, stream, candidateStarted, current.Token, out retryThroughCooldown);
                        result = new AttemptResult(null, failure, delay);
                    }
                    catch
                    {
                        // The client left mid-call: that tells nothing about the provider.
                        if (called) provider.Abandoned(entry);
                        throw;
                    }
                    finally
                    {
                        if (!committed) await GiveBack(provider, entry, called, ticket).ConfigureAwait(false);
                    }

                    if (result.RetryDelay is not { } wait || retry >= provider.Options.MaxRetries) break;
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, time, current.Token).ConfigureAwait(false);
                }

                if (result.Execution is { } committedExecution) return committedExecution;
                // A retry that found the circuit open, the deployment cooling down or the provider at its
                // limit says less than the call that failed before it: the client hears about that one.
                var candidateFailure = ResilienceFailures.IsSkip(result.Failure!) && lastCallFailure is { } lastCalled ? lastCalled : result.Failure!;
                (failures ??= new(candidates.Count)).Add(candidateFailure);
                previousModel = candidate.ModelName;
                switch (candidateFailure.Kind)
                {
                    case FailureKind.FailRequest:
                        return new Execution { Candidate = candidate, Error = Settled(candidateFailure.ToApiError(), context), Cancellation = Successor(current, total) };
                    case FailureKind.ContextLength:
                        minContextWindow = candidate.Model.ContextWindow;
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            // The total ran out while a call waited (its admission, or the wait before a retry): no candidate is tried after it.
            (failures ??= new(candidates.Count)).Add(ProviderFailure.Timeout(trying, "the request's total time ran out while waiting to retry"));
        }
        catch
        {
            // The client left (the handler answers 499), or a bug: a successor no execution took is let go here.
            Successor(current, total)?.Dispose();
            context.RequestAborted.ThrowIfCancellationRequested();
            throw;
        }

        return new Execution { Error = Settled(FinalError(failures ?? []), context), Cancellation = Successor(current, total) };
    }

    /// <summary>
    /// Step 4 begins: the request's record names this call (the model and provider the client is told of, one attempt
    /// more), and a later candidate's first call is a fallback from <paramref name="fallbackFrom"/>.
    /// </summary>
    private void RecordCall(RequestRecord record, Candidate candidate, string provider, string? fallbackFrom)
    {
        if (fallbackFrom is not null)
        {
            record.Fallbacks++;
            events.Fallback(fallbackFrom, candidate.ModelName);
        }
        record.Attempts++;
        record.Model = candidate.ModelName;
        record.Provider = provider;
    }

    /// <summary>Why a call's cancellation fired, when the client is still there: its limit, or the request's total.</summary>
    private static string TimedOutWhy(TimedCancellation timer, bool stream) =>
        !timer.TimedOut ? "the request's total time ran out" : stream ? "no first token in time" : "no answer in time";

    /// <summary>
    /// An attempt that did not commit gives back what it held: the health entry when no call was made to report on it
    /// (the budget refused, or its admission threw; a call that threw reported it as abandoned already), the concurrency
    /// slot, the budget's reservation. Not an async method: without a ticket, or with one released at once, nothing is
    /// suspended for it.
    /// </summary>
    private static ValueTask GiveBack(ProviderResilience provider, HealthEntry entry, bool called, IAdmissionTicket? ticket)
    {
        if (!called) provider.Abandoned(entry);
        provider.Limits.Release();
        return ticket?.ReleaseAsync() ?? default;
    }

    /// <summary>
    /// The request's cancellation once an attempt's call is over: when the attempt's limit ran out, a successor with
    /// what the total still allows (the one that ran out let go, unless it is the caller's); otherwise the same one, its
    /// timer back to the total's cap alone (a retry's wait, the next candidate's admission). Cancelled by the client or
    /// the cap, it stays as it is: nothing more is tried.
    /// </summary>
    private static TimedCancellation AfterAttempt(TimedCancellation attempt, TimedCancellation total, long ended)
    {
        if (!attempt.TimedOut)
        {
            attempt.CancelAfter(Timeout.InfiniteTimeSpan, ended);
            return attempt;
        }
        var next = attempt.Successor();
        if (!ReferenceEquals(attempt, total)) attempt.Dispose();
        return next;
    }

    /// <summary>The request's cancellation if it is a successor (the execution's to dispose), null if it is the caller's.</summary>
    private static TimedCancellation? Successor(TimedCancellation current, TimedCancellation total) =>
        ReferenceEquals(current, total) ? null : current;

    /// <summary>
    /// Once the gateway has called upstream (and retried, and failed over), a client's own retries would
    /// multiply those calls: x-should-retry: false says so to OpenAI's SDKs. When nothing was called
    /// (every candidate skipped for a cooldown or a circuit), the client may retry after Retry-After.
    /// </summary>
    private static ApiError Settled(ApiError error, GatewayContext context) =>
        context.Record.Attempts > 0 ? error with { ShouldRetry = false } : error;

    /// <summary>
    /// Steps 1 and 2 of an attempt, before anything is awaited: a deployment cooling down, an open circuit (the
    /// provider's or the deployment's), or a provider over its own limits is skipped without a call, and a stream's
    /// retries share one first-token budget, so the next candidate starts within FirstTokenTimeout of this one's first
    /// try (a non-stream call has a limit per attempt). Null when the call may go ahead, holding what it entered.
    /// </summary>
    private ProviderFailure? Enter(ProviderResilience provider, DeploymentHealth deployment, GatewayContext context, bool throughCooldown, bool stream,
        long candidateStarted, ProviderFailure? lastCallFailure, out HealthEntry entry, out TimeSpan attemptLimit)
    {
        attemptLimit = default;
        if (provider.TryEnter(deployment, out entry, ignoreCooldown: throughCooldown) is { } skipped) return skipped;

        var verdict = provider.Limits.TryAcquire(context.Request, out var limitRetryAfter);
        if (verdict != LimitVerdict.Acquired)
        {
            provider.Abandoned(entry);
            return ResilienceFailures.OverLimit(provider.Name, verdict, limitRetryAfter);
        }

        attemptLimit = provider.AttemptTimeout;
        if (stream)
        {
            attemptLimit = provider.FirstTokenTimeout - time.GetElapsedTime(candidateStarted);
            if (attemptLimit <= TimeSpan.Zero)
            {
                provider.Abandoned(entry);
                provider.Limits.Release();
                return lastCallFailure ?? ProviderFailure.Timeout(provider.Name, "no first token in time");
            }
        }
        return null;
    }

    /// <summary>
    /// Whether another try on this candidate makes sense, and after how long; null moves on to the next
    /// candidate. Only what another try can fix is retried, only while the wait fits the request's total,
    /// a stream's first-token budget, and (after a 429 or 529) the deployment's cooldown: the upstream
    /// named the wait, and a wait longer than MaxDelayMs is better spent on the next candidate.
    /// <paramref name="throughCooldown"/> says the retry is this request's turn after the cooldown.
    /// </summary>
    private TimeSpan? RetryDelay(ProviderResilience provider, DeploymentHealth deployment, ProviderFailure failure, int retry, bool stream,
        long candidateStarted, CancellationToken total, out bool throughCooldown)
    {
        throughCooldown = false;
        if (failure.Kind != FailureKind.Retryable || total.IsCancellationRequested) return null;
        TimeSpan? delay;
        if (failure.CoolsDown)
        {
            // Wait out a cooldown only when the upstream itself named a short one; without a
            // Retry-After the configured cooldown is a guess, and the next candidate can answer now.
            var cooldown = deployment.RemainingCooldown;
            delay = failure.RetryAfter is { } asked && asked > TimeSpan.Zero && cooldown <= TimeSpan.FromMilliseconds(provider.Options.MaxDelayMs)
                ? cooldown
                : null;
            // The retry is this request's turn after the cooldown: a timer firing a tick early must not skip it.
            throughCooldown = delay is not null;
        }
        else
        {
            delay = Backoff.RetryDelay(retry, provider.Options, failure.RetryAfter, Random.Shared.NextDouble());
        }
        if (delay is { } wait && stream && time.GetElapsedTime(candidateStarted) + wait >= provider.FirstTokenTimeout)
        {
            return null;
        }
        return delay;
    }

    private static AttemptResult Fail(ProviderFailure failure) => new(null, failure, null);

    /// <summary>
    /// Step 5 of an attempt: the answer the client gets from this provider, whatever happens next. A complete body (or a
    /// stream that ended before any content) is the provider's success now; a stream's health is told by its reader when
    /// it ends (<see cref="StreamCommit"/>). The execution holds the attempt's timer and the provider's concurrency slot.
    /// </summary>
    private static Execution Commit(Candidate candidate, ProviderResilience provider, HealthEntry entry, ProviderResponse response,
        List<(StreamEventKind, byte[])>? pending, bool endedEarly, TimedCancellation timer, TimeSpan latency, long ended)
    {
        StreamCommit? commit = null;
        if (response.Stream is null || endedEarly)
        {
            provider.Succeeded(entry, latency, ended);
        }
        else
        {
            provider.Committed(entry);
            commit = new StreamCommit(provider, entry.Deployment, latency);
        }
        return new Execution
        {
            Candidate = candidate,
            Response = response,
            Pending = pending ?? Execution.NothingPending,
            EndedBeforeContent = endedEarly,
            Cancellation = timer,
            StreamIdleTimeout = provider.StreamIdleTimeout,
            Slot = provider.Limits,
            Commit = commit,
        };
    }

    /// <summary>
    /// Every candidate failed; the status names the cause across all of them. All over budget: 429
    /// budget_exceeded. All timed out: 504. All rate-limited upstream (or cooling down after a 429):
    /// 429 rate_limit_exceeded with the soonest Retry-After. All unavailable (open circuits, cooldowns,
    /// 529 overloaded, the gateway's own limits, no key): 503 with the soonest Retry-After known.
    /// All over their context window: 400. Anything else (5xx, unreadable answers, a mix): 502.
    /// </summary>
    internal static ApiError FinalError(List<ProviderFailure> failures)
    {
        if (failures.Count == 0)
        {
            return ApiError.NoHealthyProvider("No candidate could take the request (every model's context window is too small).");
        }
        if (failures.TrueForAll(f => f.Cause == FailureCause.Budget))
        {
            // No candidate fits the budgets: 429 budget_exceeded (503 when budgets could not be checked at all).
            return (failures.Find(f => f.ErrorCode == ErrorCodes.BudgetExceeded) ?? failures[0]).ToApiError();
        }
        if (failures.TrueForAll(f => f.IsTimeout))
        {
            return ApiError.UpstreamTimeout(Summary("timed out", failures));
        }
        if (failures.TrueForAll(f => f.Cause == FailureCause.RateLimited))
        {
            return ApiError.RateLimitExceeded(Summary("is rate-limited", failures), Soonest(failures));
        }
        if (failures.TrueForAll(ResilienceFailures.IsUnavailable))
        {
            return ApiError.NoHealthyProvider(Summary("is unavailable", failures)) with { RetryAfterSeconds = ApiError.Seconds(Soonest(failures)) };
        }
        if (failures.TrueForAll(f => f.Kind == FailureKind.ContextLength))
        {
            var last = failures[^1];
            return new ApiError(StatusCodes.Status400BadRequest, ErrorTypes.InvalidRequest, "context_length_exceeded", last.Message, "messages");
        }
        return ApiError.UpstreamError(Summary("failed", failures));
    }

    /// <summary>The shortest wait any candidate named (a Retry-After, a cooldown, a circuit's break); null when none did.</summary>
    private static TimeSpan? Soonest(List<ProviderFailure> failures)
    {
        TimeSpan? soonest = null;
        foreach (var f in failures)
        {
            if (f.RetryAfter is { } wait && (soonest is null || wait < soonest)) soonest = wait;
        }
        return soonest;
    }

    private static string Summary(string verb, List<ProviderFailure> failures) => failures.Count == 1
        ? failures[0].Message
        : $"Every candidate {verb}: " + string.Join(" | ", failures.Select(f => f.Message));
}

/// <summary>Failures the resilience layer itself decides on, before any call.</summary>
public static class ResilienceFailures
{
    public static ProviderFailure CircuitOpen(string provider, TimeSpan remaining, string? upstreamModel = null) =>
        new(FailureKind.NextCandidate, FailureCause.CircuitOpen, provider, upstreamModel is null
            ? $"Provider '{provider}' is unavailable: its circuit is open after repeated failures."
            : $"Provider '{provider}' model '{upstreamModel}' is unavailable: its circuit is open after repeated failures.") { RetryAfter = remaining };

    /// <summary>The provider is at its own concurrency, RPM or TPM limit (no status: it was never called).</summary>
    public static ProviderFailure OverLimit(string provider, LimitVerdict verdict, TimeSpan retryAfter) =>
        new(FailureKind.NextCandidate, FailureCause.OverLimit, provider, verdict switch
        {
            LimitVerdict.Concurrency => $"Provider '{provider}' is at its MaxConcurrency limit.",
            LimitVerdict.Rpm => $"Provider '{provider}' is at its Rpm limit.",
            _ => $"Provider '{provider}' is at its Tpm limit.",
        }) { RetryAfter = retryAfter };

    /// <summary>Nothing was wrong with the request; no candidate could take it right now (a 503 with Retry-After).</summary>
    public static bool IsUnavailable(ProviderFailure f) =>
        f.Cause is FailureCause.CircuitOpen or FailureCause.NotConfigured or FailureCause.OverLimit or FailureCause.Overloaded or FailureCause.RateLimited;

    /// <summary>Skipped without a call (a circuit, a cooldown, a limit): says less than a call that failed.</summary>
    public static bool IsSkip(ProviderFailure f) => f.UpstreamStatus == 0 && IsUnavailable(f);
}
