using LlmGateway.Auth;

namespace LlmGateway.Tests.Auth;

public class RateLimitHeadersTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(0.0001, "1ms")]
    [InlineData(20, "20ms")]
    [InlineData(999.2, "1s")]
    [InlineData(1000, "1s")]
    [InlineData(1500, "1.5s")]
    [InlineData(59_999.5, "1m0s")]
    [InlineData(360_000, "6m0s")]
    [InlineData(61_250, "1m1.25s")]
    [InlineData(3_723_000, "1h2m3s")]
    public void Durations_are_written_the_way_openai_writes_them(double milliseconds, string expected) =>
        Assert.Equal(expected, RateLimitHeaders.FormatDuration(TimeSpan.FromMilliseconds(milliseconds)));
}
