namespace LlmGateway.Telemetry;

/// <summary>
/// The Serilog logger behind the gateway's logging provider, for the one line that writes to it directly
/// (<see cref="Usage.RequestLog"/>, which says why). Registered by <see cref="LoggingExtensions.AddGatewayLogging"/>.
/// </summary>
public sealed record GatewaySerilog(Serilog.ILogger Root);
