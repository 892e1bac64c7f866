using System.Globalization;
using System.Text.Json;

namespace LlmGateway.Bench;

/// <summary>
/// Streams N answers, C at a time, and reports how long the client waited for headers, the first
/// token and the last token, and the gaps between content chunks. Run against the mock directly and
/// through a proxy, the differences are what the proxy adds.
/// </summary>
internal static class StreamProbe
{
    public static async Task<int> RunAsync(Args args)
    {
        var n = Math.Max(1, args.Int("n", 100));
        var concurrency = Math.Clamp(args.Int("concurrency", 8), 1, n);
        var warmup = args.Int("warmup", 0);
        var expectChunks = args.Int("expect-chunks", 0);
        var timeout = TimeSpan.FromSeconds(Math.Max(1, args.Int("timeout-seconds", 120)));

        using var client = new StreamClient(args, concurrency);
        using var cts = new CancellationTokenSource(timeout);
        for (var i = 0; i < warmup; i++)
        {
            await client.RunAsync(new StreamTiming(), null, cts.Token).ConfigureAwait(false);
        }

        var timings = new StreamTiming[n];
        var failures = 0;
        var next = -1;
        var workers = new Task[concurrency];
        for (var w = 0; w < concurrency; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < n)
                {
                    var t = timings[i] = new StreamTiming();
                    try
                    {
                        if (!await client.RunAsync(t, null, cts.Token).ConfigureAwait(false)) Interlocked.Increment(ref failures);
                    }
                    catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
                    {
                        Interlocked.Increment(ref failures);
                    }
                }
            });
        }
        await Task.WhenAll(workers).ConfigureAwait(false);

        var complete = timings.Where(t => t.Done && !t.ErrorEvent && t.ContentEvents > 0).ToList();
        var incomplete = complete.Count(t => expectChunks > 0 && t.ContentEvents != expectChunks);
        var gaps = complete.SelectMany(t => t.GapsMs).Order().ToList();
        var coalesced = complete.Sum(t => t.Coalesced);

        using var stdout = Console.OpenStandardOutput();
        using var w2 = new Utf8JsonWriter(stdout);
        w2.WriteStartObject();
        w2.WriteNumber("n", n);
        w2.WriteNumber("concurrency", concurrency);
        w2.WriteNumber("ok", complete.Count);
        w2.WriteNumber("failed", n - complete.Count);
        w2.WriteNumber("incomplete", incomplete);
        w2.WriteNumber("content_events_avg", complete.Count == 0 ? 0 : Math.Round(complete.Average(t => t.ContentEvents), 2));
        WriteDistribution(w2, "headers_ms", complete.Select(t => Stats.Ms(t.Start, t.Headers)));
        WriteDistribution(w2, "ttft_ms", complete.Select(t => Stats.Ms(t.Start, t.FirstToken)));
        WriteDistribution(w2, "ttlt_ms", complete.Select(t => Stats.Ms(t.Start, t.Last)));
        WriteDistribution(w2, "gap_ms", gaps);
        w2.WriteNumber("gaps", gaps.Count);
        w2.WriteNumber("coalesced_pct", gaps.Count == 0 ? 0 : Math.Round(100.0 * coalesced / gaps.Count, 3));
        // Warm-up streams are checked too: a row's every answer must say what it claims.
        client.Check.Write(w2);
        w2.WriteEndObject();
        w2.Flush();
        stdout.WriteByte((byte)'\n');
        return complete.Count == 0 ? 1 : 0;
    }

    internal static void WriteDistribution(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        w.WriteStartObject(name);
        w.WriteNumber("p50", Round(Stats.Percentile(sorted, 50)));
        w.WriteNumber("p90", Round(Stats.Percentile(sorted, 90)));
        w.WriteNumber("p99", Round(Stats.Percentile(sorted, 99)));
        w.WriteNumber("max", Round(sorted.Count == 0 ? double.NaN : sorted[^1]));
        w.WriteEndObject();
    }

    private static double Round(double ms) => double.IsNaN(ms) ? -1 : Math.Round(ms, 4);
}
