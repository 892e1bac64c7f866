namespace LlmGateway.Resilience;

/// <summary>Circuit states, numbered as the llm_gateway_circuit_state metric reports them.</summary>
public enum CircuitState
{
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

/// <summary>What the router asks of provider health before it tries a candidate.</summary>
public interface IProviderHealth
{
    /// <summary>
    /// The worse of the provider's circuit and the deployment's (the provider serving
    /// <paramref name="upstreamModel"/>). Open only while the break lasts: once a probe call may go, it reads half-open.
    /// </summary>
    CircuitState GetCircuitState(string provider, string upstreamModel);

    /// <summary>How long until an open circuit lets a probe through: the Retry-After of a 503 when every circuit is open.</summary>
    TimeSpan RemainingBreak(string provider, string upstreamModel) => TimeSpan.Zero;

    /// <summary>
    /// <see cref="GetCircuitState"/> and <see cref="RemainingBreak"/> at once: the router reads both of every candidate
    /// on every request, and one call finds the provider and the deployment once instead of twice.
    /// </summary>
    (CircuitState State, TimeSpan RemainingBreak) GetCircuit(string provider, string upstreamModel) =>
        (GetCircuitState(provider, upstreamModel), RemainingBreak(provider, upstreamModel));
}
