namespace LlmGateway.Telemetry;

/// <summary>
/// One provider (<see cref="Deployment"/> null) or one of its deployments (the upstream model) as the
/// <c>llm_gateway_provider_up</c>, <c>llm_gateway_deployment_up</c> and <c>llm_gateway_deployment_state</c>
/// gauges report it. <see cref="Up"/> is what <c>GET /admin/providers</c> shows as healthy or degraded:
/// unknown (no call or probe in the recent window) is not up. <see cref="State"/>: 0 closed, 1 half-open,
/// 2 open, 3 cooling down (deployments only).
/// </summary>
public readonly record struct ProviderHealthSample(string Provider, string? Deployment, bool Up, int State);

/// <summary>Where the provider-health gauges read from, at every scrape; computed from the same state the admin view shows.</summary>
public interface IProviderHealthSource
{
    IReadOnlyList<ProviderHealthSample> SampleHealth();
}
