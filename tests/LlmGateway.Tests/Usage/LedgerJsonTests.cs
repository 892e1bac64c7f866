using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Usage;

namespace LlmGateway.Tests.Usage;

/// <summary>
/// The ledger's records are read back by queries, other instances and earlier versions' spools: <see cref="LedgerJson"/>
/// must write exactly what the serializer (<see cref="UsageJsonContext"/>) writes, for every entry, and take its own
/// path for the entries requests make.
/// </summary>
public class LedgerJsonTests
{
    private static void AssertSameAsSerializer(LedgerEntry e)
    {
        var expected = JsonSerializer.SerializeToUtf8Bytes(e, UsageJsonContext.Default.LedgerEntry);
        var ours = LedgerJson.Serialize(e);
        Assert.True(expected.AsSpan().SequenceEqual(ours),
            $"differs from the serializer:\nserializer: {Encoding.UTF8.GetString(expected)}\nours:       {Encoding.UTF8.GetString(ours)}");
    }

    [Fact]
    public void A_requests_entry_takes_its_own_path_and_is_the_serializers()
    {
        var entry = new LedgerEntry();
        entry.Set(new RequestRecord
        {
            RequestId = "req_0123456789abcdef0123456789abcdef", StartedAt = new DateTimeOffset(2026, 12, 3, 2, 48, 39, TimeSpan.Zero).AddTicks(1_234_500),
            TaskType = "general", RequestedModel = "bench-model", Model = "bench-model", Provider = "openai", Status = 200,
            Usage = new TokenUsage(236, 58), CostUsd = 0.0000702m, Attempts = 1, CacheResult = "bypass",
            Duration = TimeSpan.FromTicks(12_345), TimeToFirstToken = TimeSpan.FromTicks(4_560),
        });
        Assert.True(LedgerJson.TryWrite(entry, new byte[1024], out _));
        AssertSameAsSerializer(entry);
    }

    [Fact]
    public void Random_entries_are_the_serializers()
    {
        var random = new Random(1919);
        string?[] texts =
        [
            "general", "bench-model", "openai", "", "team-a", "req_abc", "a<b>&'+`", "say \"hi\"", "back\\slash", "ütf8 日本 🙂",
            "ctl\u0001\n\t", "spaces and : / . - _ ~ ! # $ % ( ) * , ; = ? @ [ ] ^ { | }", new string('x', 2000), null,
        ];
        // Mostly text as requests have it (the first six), so that both paths are taken often.
        string Text() => texts[random.Next(20) == 0 ? random.Next(texts.Length - 1) : random.Next(6)]!;
        string? Nullable() => random.Next(2) == 0 ? null : Text();
        double Duration() => random.Next(6) switch
        {
            0 => Math.Round(random.NextDouble() * 100_000, 3),
            1 => random.NextInt64(0, 2_000_000_000_000) / 1000.0,
            2 => Math.BitIncrement(random.Next(0, 1_000_000) / 1000.0),
            3 => random.NextDouble() * 1000,
            4 => -random.Next(0, 1000) / 1000.0,
            _ => Math.Round(TimeSpan.FromTicks(random.NextInt64(0, 100_000_000)).TotalMilliseconds, 3),
        };
        var ledgerPath = 0;
        for (var i = 0; i < 20_000; i++)
        {
            var time = new DateTimeOffset(random.NextInt64(DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay), TimeSpan.Zero);
            time = random.Next(4) switch
            {
                0 => new DateTimeOffset(time.Ticks - time.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero),
                1 => new DateTimeOffset(time.Ticks - time.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero),
                2 => time.ToOffset(TimeSpan.FromMinutes(random.Next(-14 * 60, 14 * 60 + 1))),
                _ => time,
            };
            var entry = new LedgerEntry
            {
                Time = time,
                RequestId = Text(),
                KeyId = Nullable(),
                TaskType = Text(),
                Model = Text(),
                Provider = Text(),
                Stream = random.Next(2) == 0,
                Status = random.Next(3) == 0 ? random.Next(int.MinValue, int.MaxValue) : 200,
                Outcome = Text(),
                ErrorCode = Nullable(),
                PromptTokens = random.Next(),
                CompletionTokens = random.Next(-10, 5000),
                CachedTokens = random.Next(0, 100),
                CostUsd = new decimal(random.Next(), random.Next(3) == 0 ? random.Next() : 0, random.Next(5) == 0 ? random.Next() : 0, random.Next(8) == 0, (byte)random.Next(29)),
                LatencyMs = Duration(),
                TtftMs = random.Next(2) == 0 ? null : Duration(),
                Cache = Text(),
                Attempts = random.Next(0, 5),
            };
            if (LedgerJson.TryWrite(entry, new byte[1024], out _)) ledgerPath++;
            AssertSameAsSerializer(entry);
        }
        // Both paths were compared, many times each.
        Assert.InRange(ledgerPath, 500, 19_500);
    }
}
