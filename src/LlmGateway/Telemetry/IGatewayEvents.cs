using LlmGateway.Resilience;

namespace LlmGateway.Telemetry;

/// <summary>
/// Things that happen inside a request or in the background that metrics, logs and admin views
/// count. Capabilities raise them; the telemetry folder turns them into metrics. Calls are on the
/// hot path: implementations must not block or allocate much.
/// </summary>
public interface IGatewayEvents
{
    /// <summary>A retry of one deployment (the provider and its upstream model).</summary>
    void Retry(string provider, string deployment);
    void Fallback(string fromModel, string toModel);
    void CircuitStateChanged(string provider, CircuitState state);
    /// <summary>hit, miss, bypass or off.</summary>
    void CacheLookup(string result);
    void StoreError(string operation);
}

/// <summary>Used until a telemetry implementation is registered.</summary>
public sealed class NullGatewayEvents : IGatewayEvents
{
    public void Retry(string provider, string deployment) { }
    public void Fallback(string fromModel, string toModel) { }
    public void CircuitStateChanged(string provider, CircuitState state) { }
    public void CacheLookup(string result) { }
    public void StoreError(string operation) { }
}
