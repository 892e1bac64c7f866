using LlmGateway.Providers;

namespace LlmGateway.Resilience;

/// <summary>
/// A stream the executor committed to, as far as the provider's circuit and history are concerned: how it
/// ends is reported once, since a cut or a stall after the first chunk is as much a provider failure as a 500
/// before it. The reader of the stream (<see cref="Pipeline.AnswerStream"/>) tells it each event and each idle
/// timeout; the execution's disposal tells it the rest.
/// <para>
/// Not a wrapper around the stream: a wrapping stream is one more async level, whose state machine is resumed
/// for every chunk on its way to the client, to look at the event that comes out of it. The reader calls
/// <see cref="Observe"/> instead, synchronously.
/// </para>
/// </summary>
internal sealed class StreamCommit(ProviderResilience provider, DeploymentHealth deployment, TimeSpan timeToFirstToken)
{
    // The probes (if any) were settled at the commit: what comes later is a plain sample.
    private readonly HealthEntry _entry = new(deployment, ProviderProbe: false, DeploymentProbe: false);
    private bool _reported;

    /// <summary>An event read from the committed stream: its end or its failure is the provider's outcome.</summary>
    public void Observe(in StreamEvent ev)
    {
        if (ev.Kind == StreamEventKind.End) Report(null);
        else if (ev.Kind == StreamEventKind.Failed) Report(ev.Failure);
    }

    /// <summary>The attempt's idle timer fired while the stream was waited on: the provider went quiet mid-answer.</summary>
    public void IdleTimedOut() => Report(ProviderFailure.Timeout(provider.Name, "it stopped sending in the middle of the answer"));

    /// <summary>
    /// The execution is let go. Ended neither cleanly nor by a provider failure: the client left, or the
    /// request's total ran out. The provider was answering all along.
    /// </summary>
    public void Release() => Report(null);

    private void Report(ProviderFailure? failure)
    {
        if (_reported) return;
        _reported = true;
        if (failure is null) provider.Succeeded(_entry, timeToFirstToken);
        else provider.Failed(_entry, failure);
    }
}
