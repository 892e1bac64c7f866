using LlmGateway.Budgets;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using Microsoft.Extensions.Options;

namespace LlmGateway.Resilience;

/// <summary>
/// The result of trying the candidates: either a committed answer (a complete body, or a stream
/// whose first real content has arrived) or the error the client gets.
/// </summary>
public sealed class Execution : IAsyncDisposable
{
    public Candidate? Candidate { get; init; }
    public ProviderResponse? Response { get; init; }

    /// <summary>Stream events read before the commit point (role chunk, the first content), copied, in order.</summary>
    public List<(StreamEventKind Kind, byte[] Data)> Pending { get; } = [];

    /// <summary>The stream ended (cleanly) before any content: nothing more to read.</summary>
    public bool EndedBeforeContent { get; set; }

    /// <summary>Cancels the committed attempt: the client leaving, the total timeout, or an idle timeout set by the reader.</summary>
    public TimedCancellation? Cancellation { get; init; }
    public ApiError? Error { get; init; }

    public async ValueTask DisposeAsync()
    {
        if (Response is not null) await Response.DisposeAsync().ConfigureAwait(false);
        Cancellation?.Dispose();
    }
}

/// <summary>
/// Tries the route's candidates in order until one answers. Failures before the commit point (the
/// first content chunk of a stream, or a complete body) move on to the next candidate invisibly;
/// the classification of each failure decides whether another candidate is worth trying.
/// </summary>
public sealed class CandidateExecutor(IOptions<GatewayOptions> options, TimeProvider time, IAttemptAdmission? admission = null)
{
    private readonly GatewayOptions _options = options.Value;

    public async Task<Execution> ExecuteAsync(GatewayContext context, TimedCancellation total)
    {
        var route = context.Route!;
        var failures = new List<ProviderFailure>();
        var record = context.Record;
        var minContextWindow = 0;

        foreach (var candidate in route.Candidates)
        {
            if (candidate.Model.ContextWindow <= minContextWindow) continue;

            if (admission is not null)
            {
                var admitted = await admission.AdmitAsync(context, candidate, total.Token).ConfigureAwait(false);
                if (admitted.Refusal is not null)
                {
                    failures.Add(admitted.Refusal);
                    continue;
                }
                context.Admission = admitted.Ticket;
            }

            record.Attempts++;
            if (record.Attempts > 1) record.Fallbacks++;
            record.Model = candidate.ModelName;
            record.Provider = candidate.Provider.Name;

            var resilience = candidate.Provider.Options.Resilience?.ApplyTo(_options.Resilience) ?? _options.Resilience;
            var attempt = new TimedCancellation(time, total.Token);
            attempt.CancelAfter(TimeSpan.FromSeconds(context.Chat.Stream ? resilience.FirstTokenTimeoutSeconds : resilience.TotalTimeoutSeconds));

            using var span = Telemetry.GatewayTracing.StartAttempt(candidate);
            var (execution, failure) = await TryCandidateAsync(context, candidate, attempt).ConfigureAwait(false);
            Telemetry.GatewayTracing.EndAttempt(span, execution, failure);
            if (execution is not null) return execution;

            attempt.Dispose();
            if (context.Admission is { } ticket)
            {
                context.Admission = null;
                await ticket.ReleaseAsync().ConfigureAwait(false);
            }
            failures.Add(failure!);
            switch (failure!.Kind)
            {
                case FailureKind.FailRequest:
                    return new Execution { Candidate = candidate, Error = failure.ToApiError() };
                case FailureKind.ContextLength:
                    minContextWindow = candidate.Model.ContextWindow;
                    break;
            }
        }

        return new Execution { Error = FinalError(failures) };
    }

    private async Task<(Execution?, ProviderFailure?)> TryCandidateAsync(GatewayContext context, Candidate candidate, TimedCancellation attempt)
    {
        var request = new ProviderRequest(context.Chat, candidate.ModelName, candidate.Model);
        var provider = candidate.Provider;
        var started = time.GetTimestamp();
        ProviderResponse? response = null;
        try
        {
            response = await provider.SendAsync(request, attempt.Token).ConfigureAwait(false);
            if (!response.IsSuccess) return (null, response.Failure);
            if (response.Stream is null) return (new Execution { Candidate = candidate, Response = response, Cancellation = attempt }, null);

            // Read up to the first real content: a provider may answer 200 and then fail, and until
            // the client has seen a byte, that failure can still go to the next candidate.
            var execution = new Execution { Candidate = candidate, Response = response, Cancellation = attempt };
            while (true)
            {
                var ev = await response.Stream.ReadAsync(attempt.Token).ConfigureAwait(false);
                switch (ev.Kind)
                {
                    case StreamEventKind.Failed:
                        await response.DisposeAsync().ConfigureAwait(false);
                        return (null, ev.Failure);
                    case StreamEventKind.End:
                        execution.EndedBeforeContent = true;
                        return (execution, null);
                    case StreamEventKind.Content:
                        execution.Pending.Add((ev.Kind, ev.Data.ToArray()));
                        return (execution, null);
                    default:
                        execution.Pending.Add((ev.Kind, ev.Data.ToArray()));
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (!context.Http.RequestAborted.IsCancellationRequested)
        {
            if (response is not null) await response.DisposeAsync().ConfigureAwait(false);
            var what = context.Chat.Stream ? "no first token in time" : "no answer in time";
            return (null, ProviderFailure.Timeout(provider.Name, what));
        }
        catch
        {
            if (response is not null) await response.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            context.AddUpstreamTime(started);
        }
    }

    /// <summary>Every candidate failed: all timed out is 504, all unusable is 503, anything else 502.</summary>
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
        if (failures.All(f => f.IsTimeout))
        {
            return ApiError.UpstreamTimeout(Summary("timed out", failures));
        }
        if (failures.All(f => f.Cause is FailureCause.CircuitOpen or FailureCause.NotConfigured))
        {
            return ApiError.NoHealthyProvider(Summary("is unavailable", failures));
        }
        if (failures.All(f => f.Kind == FailureKind.ContextLength))
        {
            var last = failures[^1];
            return new ApiError(StatusCodes.Status400BadRequest, ErrorTypes.InvalidRequest, "context_length_exceeded", last.Message, "messages");
        }
        return ApiError.UpstreamError(Summary("failed", failures));
    }

    private static string Summary(string verb, List<ProviderFailure> failures) => failures.Count == 1
        ? failures[0].Message
        : $"Every candidate {verb}: " + string.Join(" | ", failures.Select(f => f.Message));
}
