using System.Runtime.CompilerServices;
using LlmGateway.Providers;

namespace LlmGateway.Resilience;

/// <summary>
/// The rest of a stream after the executor committed to it, as the handler reads it. It passes every
/// event through unchanged and tells the provider's circuit and history how the stream ended, since
/// a cut or a stall after the first chunk is as much a provider failure as a 500 before it.
/// </summary>
internal sealed class CommittedStream : ChatStream
{
    private readonly ChatStream _inner;
    private readonly ProviderResilience _provider;
    private readonly HealthEntry _entry;
    private readonly TimedCancellation _attempt;
    private readonly TimeSpan _timeToFirstToken;
    private bool _reported;

    public CommittedStream(ChatStream inner, ProviderResilience provider, DeploymentHealth deployment, TimedCancellation attempt, TimeSpan timeToFirstToken)
    {
        _inner = inner;
        _provider = provider;
        // The probes (if any) were settled at the commit: what comes later is a plain sample.
        _entry = new HealthEntry(deployment, ProviderProbe: false, DeploymentProbe: false);
        _attempt = attempt;
        _timeToFirstToken = timeToFirstToken;
        Usage = inner.Usage;
        FinishReason = inner.FinishReason;
    }

    public override string? Dialect => _inner.Dialect;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
    {
        StreamEvent ev;
        try
        {
            ev = await _inner.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_attempt.TimedOut)
        {
            // The idle timer of this attempt fired: the provider went quiet mid-answer.
            Report(ProviderFailure.Timeout(_provider.Name, "it stopped sending in the middle of the answer"));
            throw;
        }
        finally
        {
            Usage = _inner.Usage;
            FinishReason = _inner.FinishReason;
        }
        if (ev.Kind == StreamEventKind.End) Report(null);
        else if (ev.Kind == StreamEventKind.Failed) Report(ev.Failure);
        return ev;
    }

    private void Report(ProviderFailure? failure)
    {
        if (_reported) return;
        _reported = true;
        if (failure is null) _provider.Succeeded(_entry, _timeToFirstToken);
        else _provider.Failed(_entry, failure);
    }

    public override ValueTask DisposeAsync()
    {
        // Ended neither cleanly nor by a provider failure: the client left, or the request's total ran
        // out. The provider was answering all along.
        Report(null);
        return _inner.DisposeAsync();
    }
}
