namespace LlmGateway.Tests.Resilience;

/// <summary>A clock that stands still until a test moves it; no timers (the unit tests here need none).</summary>
public sealed class SettableTimeProvider : TimeProvider
{
    private DateTimeOffset _now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private long _timestamp = 1_000_000_000;

    public override DateTimeOffset GetUtcNow() => _now;
    public override long GetTimestamp() => _timestamp;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public void Advance(TimeSpan by)
    {
        _now += by;
        _timestamp += by.Ticks;
    }
}
