using System.Diagnostics;
using System.Text.Json;

namespace LlmGateway.Bench;

/// <summary>
/// Opens COUNT slow streams and keeps every one of them open at once, then samples the resident memory
/// of the process under test (usually the gateway) while they are open: the cost of a connection
/// that is mostly waiting, which is what an LLM gateway holds most of the time.
/// </summary>
internal static class SlowStreams
{
    public static async Task<int> RunAsync(Args args)
    {
        var count = Math.Max(1, args.Int("count", 1000));
        var hold = TimeSpan.FromSeconds(Math.Max(1, args.Int("hold-seconds", 10)));
        var openTimeout = TimeSpan.FromSeconds(Math.Max(1, args.Int("open-timeout-seconds", 60)));
        var pid = args.Int("pid", 0);
        // Opening thousands of connections in one burst overflows the listen backlog and turns into
        // SYN retries; a bounded number of opens in flight gets there faster.
        var opening = new SemaphoreSlim(Math.Max(1, args.Int("open-concurrency", 100)));

        using var client = new StreamClient(args, count);
        using var stop = new CancellationTokenSource();
        var rssBefore = ProcMemory.Read(pid, "VmRSS:");
        var opened = 0;
        var allOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = Stopwatch.GetTimestamp();

        var streams = new Task<bool>[count];
        for (var i = 0; i < count; i++)
        {
            streams[i] = OneAsync();
        }

        async Task<bool> OneAsync()
        {
            await opening.WaitAsync(stop.Token).ConfigureAwait(false);
            var released = false;
            void Opened()
            {
                released = true;
                opening.Release();
                if (Interlocked.Increment(ref opened) == count) allOpen.TrySetResult();
            }
            try
            {
                var t = new StreamTiming();
                await client.RunAsync(t, Opened, stop.Token).ConfigureAwait(false);
                return t.ContentEvents > 0;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                return released;
            }
            finally
            {
                if (!released) opening.Release();
            }
        }

        var openedInTime = await Task.WhenAny(allOpen.Task, Task.Delay(openTimeout)).ConfigureAwait(false) == allOpen.Task;
        var openMs = Stats.Ms(started, Stopwatch.GetTimestamp());
        var openCount = Volatile.Read(ref opened);

        // Hold: sample the target's memory while every stream is open and trickling.
        long rssMax = 0, rssLast = 0;
        var holdUntil = Stopwatch.GetTimestamp() + (long)(hold.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < holdUntil)
        {
            rssLast = ProcMemory.Read(pid, "VmRSS:");
            rssMax = Math.Max(rssMax, rssLast);
            await Task.Delay(250).ConfigureAwait(false);
        }
        var stillOpen = streams.Count(s => !s.IsCompleted);
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(streams).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            // Streams cut by the cancellation above end this way; what matters was measured already.
        }

        using var stdout = Console.OpenStandardOutput();
        using var w = new Utf8JsonWriter(stdout);
        w.WriteStartObject();
        w.WriteNumber("requested", count);
        w.WriteNumber("opened", openCount);
        w.WriteBoolean("all_opened", openedInTime);
        w.WriteNumber("open_ms", Math.Round(openMs, 1));
        w.WriteNumber("still_open_at_end_of_hold", stillOpen);
        w.WriteNumber("hold_s", hold.TotalSeconds);
        w.WriteNumber("rss_before_kb", rssBefore);
        w.WriteNumber("rss_open_max_kb", rssMax);
        w.WriteNumber("rss_open_last_kb", rssLast);
        w.WriteNumber("hwm_kb", ProcMemory.Read(pid, "VmHWM:"));
        client.Check.Write(w);
        w.WriteEndObject();
        w.Flush();
        stdout.WriteByte((byte)'\n');
        return openedInTime ? 0 : 1;
    }
}

internal static class ProcMemory
{
    /// <summary>A kB figure from /proc/PID/status (VmRSS:, VmHWM:), 0 when there is no such process.</summary>
    public static long Read(int pid, string field)
    {
        if (pid <= 0) return 0;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
                var digits = line.AsSpan(field.Length).Trim();
                var space = digits.IndexOf(' ');
                return long.Parse(space < 0 ? digits : digits[..space], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }
}
