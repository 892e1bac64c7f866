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
    CircuitState GetCircuitState(string provider);
}
