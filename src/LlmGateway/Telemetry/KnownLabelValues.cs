namespace LlmGateway.Telemetry;

/// <summary>
/// Label values a capability knows at start-up for one of the gateway's counters (e.g. every store
/// operation), registered as a singleton by that capability. The counter starts at 0 for each, so the
/// series is on /metrics from the first scrape and a dashboard shows 0 rather than "No data".
/// </summary>
public sealed record KnownLabelValues(string Instrument, string Label, IReadOnlyList<string> Values);
