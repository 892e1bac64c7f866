using System.Globalization;
using LlmGateway.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace LlmGateway.Tests.Http;

/// <summary>The OpenAI-style request headers read once into hint values, as every ingress of that style does.</summary>
public sealed class GatewayHeadersTests
{
    private static RequestHints Read(out ApiError? error, params (string Name, StringValues Value)[] headers)
    {
        var dictionary = new HeaderDictionary();
        foreach (var (name, value) in headers) dictionary[name] = value;
        return GatewayHeaders.ReadHints(dictionary, out error);
    }

    [Fact]
    public void No_headers_are_no_hints()
    {
        var hints = Read(out var error, ("Content-Type", "application/json"), ("Cache-Control", "max-age=0"));
        Assert.Null(error);
        Assert.Same(RequestHints.None, hints);
    }

    [Fact]
    public void Every_hint_is_read_into_its_value()
    {
        var hints = Read(out var error,
            ("X-Local-Only", "TRUE"), ("X-No-Fallback", " true "), ("X-Max-Cost-Usd", "0.02"), ("X-Task-Type", "sql"),
            ("Cache-Control", "no-cache, No-Store"), ("X-Conversation-Id", "c-1"));

        Assert.Null(error);
        Assert.Equal(new RequestHints
        {
            LocalOnly = true, NoFallback = true, MaxCostUsd = 0.02m, TaskType = "sql", NoCache = true, NoStore = true, ConversationId = "c-1",
        }, hints);
    }

    [Theory]
    [InlineData("X-Local-Only", "yes", "X-Local-Only")]
    [InlineData("X-No-Fallback", "1", "X-No-Fallback")]
    [InlineData("X-Max-Cost-Usd", "-1", "X-Max-Cost-Usd")]
    [InlineData("X-Max-Cost-Usd", "two cents", "X-Max-Cost-Usd")]
    public void An_unreadable_routing_header_travels_as_the_routing_steps_400(string name, string value, string named)
    {
        var hints = Read(out var error, (name, value));
        Assert.Null(error); // not refused here: the router refuses it at its own step
        Assert.Equal(400, hints.RoutingError!.Status);
        Assert.Contains(named, hints.RoutingError.Message);
    }

    [Fact]
    public void A_task_type_that_could_not_be_echoed_is_refused_at_once()
    {
        Read(out var error, ("X-Task-Type", new StringValues(["a", "b"])));
        Assert.Equal(400, error!.Status);
        Assert.Equal("X-Task-Type", error.Param);
    }

    [Fact]
    public void A_conversation_id_sent_twice_arrives_as_one_value_no_id_can_be()
    {
        var hints = Read(out _, ("X-Conversation-Id", new StringValues(["a", "b"])));
        Assert.False(LlmGateway.Conversations.ConversationService.IsValidId(hints.ConversationId!));
    }

    [Fact]
    public void False_and_empty_flags_are_off()
    {
        var hints = Read(out _, ("X-Local-Only", "false"), ("X-No-Fallback", ""), ("X-Max-Cost-Usd", ""));
        Assert.Null(hints.RoutingError);
        Assert.False(hints.LocalOnly);
        Assert.False(hints.NoFallback);
        Assert.Null(hints.MaxCostUsd);
    }

    [Fact]
    public void Cost_and_overhead_read_as_the_custom_formats_wrote_them()
    {
        var random = new Random(19);
        decimal[] costs = [0m, 1m, 0.0000702m, 0.000029m, 0.00000000005m, 0.00000000004999m, 12.5000m, 1234567.123456789012m, 0.1234567890123m, 0.00000000010m];
        foreach (var cost in costs.Concat(Enumerable.Range(0, 2000).Select(_ => (decimal)random.Next() * random.Next(1, 1000) / 1_000_000_000_000m)))
        {
            Assert.Equal(cost.ToString("0.##########", CultureInfo.InvariantCulture), GatewayHeaders.FormatUsd(cost));
        }
        // Every scale, inside and outside the ten decimals written from the integer, trailing zeros and negatives included.
        for (var i = 0; i < 20_000; i++)
        {
            var low = random.Next(0, 100_000) * (int)Math.Pow(10, random.Next(0, 5)); // trailing zeros too
            var mid = random.Next(3) == 0 ? random.Next() : 0;
            var high = random.Next(8) == 0 ? random.Next() : 0; // beyond 64 bits
            var cost = new decimal(low, mid, high, isNegative: random.Next(8) == 0, scale: (byte)random.Next(0, 29));
            Assert.Equal(cost.ToString("0.##########", CultureInfo.InvariantCulture), GatewayHeaders.FormatUsd(cost));
        }
        double[] milliseconds = [0, 0.0001, 0.0004, 0.001, 0.3123, 1.2, 1.25, 17, 999.9999, 123456.789];
        foreach (var ms in milliseconds.Concat(Enumerable.Range(0, 2000).Select(_ => random.NextDouble() * Math.Pow(10, random.Next(-4, 6)))))
        {
            var t = TimeSpan.FromMilliseconds(ms);
            Assert.Equal(t.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture), GatewayHeaders.FormatMs(t));
        }
    }

    [Fact]
    public void Overhead_written_from_whole_thousandths_reads_as_the_rounded_double_printed()
    {
        // What FormatMs printed before it wrote the thousandths itself: the rounded double's shortest form.
        static string Printed(TimeSpan t)
        {
            var ms = Math.Round(t.TotalMilliseconds, 3, MidpointRounding.AwayFromZero);
            return ms == 0 ? "0" : ms.ToString(CultureInfo.InvariantCulture);
        }

        var random = new Random(19);
        // Every tick of the first two milliseconds (the midpoints of rounding among them), then around the point where
        // the double is printed again (a billion milliseconds), then anywhere.
        var ticks = Enumerable.Range(0, 20_001).Select(i => (long)i)
            .Concat(Enumerable.Range(-50, 100).Select(i => 10_000_000_000_000L + i * 5))
            .Concat(Enumerable.Range(0, 20_000).Select(_ => random.NextInt64(0, 100_000_000_000_000L) / (long)Math.Pow(10, random.Next(0, 12))))
            .Concat([-1, -5, -12_345, TimeSpan.MaxValue.Ticks]);
        foreach (var tick in ticks)
        {
            var t = TimeSpan.FromTicks(tick);
            Assert.Equal(Printed(t), GatewayHeaders.FormatMs(t));
        }
    }
}
