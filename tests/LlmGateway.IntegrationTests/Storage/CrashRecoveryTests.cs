using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;

namespace LlmGateway.IntegrationTests.Storage;

/// <summary>
/// The built gateway as a child process on a real redis-server, killed with SIGKILL where a crash is the
/// point: usage recorded while Redis was down survives in the local spool and reaches the ledger after a
/// restart, and the budget holds of requests in flight at the kill are released once their lease runs out.
/// Every request costs exactly $0.10 (input free, $1 per 1k output tokens, 100 output tokens).
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class CrashRecoveryTests(RedisServer redis) : IAsyncLifetime
{
    private const string AdminKey = "crash-tests-admin-key-0123456789";
    private readonly string _spool = Directory.CreateTempSubdirectory("llmgw-spool-test-").FullName;
    private readonly string _prefix = $"crash-{Guid.NewGuid():N}:";
    private readonly TaskCompletionSource _neverAnswer = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, request) =>
        {
            var prompt = request.Json.GetProperty("messages")[0].GetProperty("content").GetString()!;
            // "hold" requests stay in flight (and keep their budget reservation) until the test ends.
            if (prompt.StartsWith("hold", StringComparison.Ordinal)) await _neverAnswer.Task.WaitAsync(http.RequestAborted);
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer to " + prompt, prompt: 10, completion: 100));
        });
    }

    public async Task DisposeAsync()
    {
        _neverAnswer.TrySetResult();
        await _upstream.DisposeAsync();
        if (!redis.IsRunning) await redis.StartAsync();
        try
        {
            Directory.Delete(_spool, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Usage_buffered_while_Redis_was_down_survives_kill_9_and_holds_of_requests_in_flight_are_released()
    {
        const int OutageRequests = 12;
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using (var first = GatewayProcess.Start(Environment(), "--urls", url))
        {
            using var http = Client(url);
            await first.WaitLiveAsync(url);
            await WaitAsync(async () => (await ReadyStoreAsync(http)) == "Healthy", "the first instance to reach Redis", first);

            // Two requests in flight: each holds its worst case, $0.10 (input is free), in every budget counter.
            var holds = Enumerable.Range(0, 2).Select(i => http.PostAsync("/v1/chat/completions", Chat($"hold {i}"))).ToList();
            await WaitAsync(async () => (await GlobalDailyAsync(http)).Reserved == 0.2m, "the two holds to be reserved", first);

            // Redis goes down (saving, as a Redis with persistence would): these requests are served and
            // their usage and spend are kept locally.
            await redis.StopAsync(keepData: true);
            for (var i = 0; i < OutageRequests; i++)
            {
                using var response = await http.PostAsync("/v1/chat/completions", Chat($"during the outage {i}"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
            await WaitAsync(() => Task.FromResult(SpooledRecords("ledger") >= OutageRequests), "the outage's usage records to be in the spool", first);
            await WaitAsync(() => Task.FromResult(SpooledRecords("budget") >= OutageRequests), "the outage's spend to be in the spool", first);

            await first.KillAsync();
            foreach (var hold in holds) await Assert.ThrowsAnyAsync<Exception>(() => hold);
        }

        await redis.StartAsync();
        await using var second = GatewayProcess.Start(Environment(), "--urls", url);
        using var admin = Client(url);
        await second.WaitLiveAsync(url);
        await WaitAsync(async () => (await ReadyStoreAsync(admin)) == "Healthy", "the second instance to reach Redis", second);

        // The outage's records are in the ledger, once each.
        await WaitAsync(async () =>
        {
            var usage = await AdminAsync(admin, "/admin/usage?groupBy=model");
            return usage.GetProperty("total").GetProperty("requests").GetInt64() >= OutageRequests;
        }, "the spooled usage records in the ledger", second);
        var report = await AdminAsync(admin, "/admin/usage?groupBy=model");
        Assert.Equal(OutageRequests, report.GetProperty("total").GetProperty("requests").GetInt64());
        Assert.Equal(OutageRequests * 0.10m, report.GetProperty("total").GetProperty("cost_usd").GetDecimal());

        // The spend is counted, and the crashed instance's holds are gone once their lease ran out.
        await WaitAsync(async () =>
        {
            var daily = await GlobalDailyAsync(admin);
            return daily.Reserved == 0 && daily.Spent == OutageRequests * 0.10m;
        }, "the holds released and the outage's spend counted", second);
        await WaitAsync(() => Task.FromResult(SpooledRecords("ledger") == 0 && SpooledRecords("budget") == 0), "the spools to be emptied", second);
    }

    private static HttpClient Client(string url) => new() { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };

    private Dictionary<string, string?> Environment() => new()
    {
        ["ConnectionStrings__Redis"] = redis.ConnectionString,
        ["Gateway__Store__KeyPrefix"] = _prefix,
        ["Gateway__Store__TimeoutMs"] = "2000",
        ["Gateway__Store__SpoolPath"] = _spool,
        ["Gateway__Budgets__Global__DailyUsd"] = "100",
        ["Gateway__Budgets__FailMode"] = "open",
        ["Gateway__Budgets__ReservationLeaseSeconds"] = "2",
        ["Gateway__Auth__AdminKeyEnv"] = "CRASH_TESTS_ADMIN_KEY",
        ["CRASH_TESTS_ADMIN_KEY"] = AdminKey,
        ["Gateway__Resilience__MaxRetries"] = "0",
        ["Gateway__Providers__up__Type"] = "openai",
        ["Gateway__Providers__up__BaseUrl"] = _upstream.BaseUrl + "/v1",
        ["Gateway__Models__test-model__Provider"] = "up",
        ["Gateway__Models__test-model__UpstreamModel"] = "upstream-model",
        ["Gateway__Models__test-model__CostPer1kOutput"] = "1",
        ["Gateway__Models__test-model__MaxOutputTokens"] = "100",
        ["Serilog__MinimumLevel__Default"] = "Warning",
    };

    /// <summary>
    /// Records in the spool files of <paramref name="name"/>. A live gateway holds its file locked (flock), so it is
    /// read with cat, which takes no lock, rather than through a FileStream, which would.
    /// </summary>
    private int SpooledRecords(string name)
    {
        var records = 0;
        foreach (var path in Directory.GetFiles(_spool, name + ".*.spool"))
        {
            using var cat = Process.Start(new ProcessStartInfo("cat", [path]) { RedirectStandardOutput = true, UseShellExecute = false })!;
            using var bytes = new MemoryStream();
            cat.StandardOutput.BaseStream.CopyTo(bytes);
            cat.WaitForExit();
            var data = bytes.ToArray();
            for (var at = 0; at + 4 <= data.Length;)
            {
                var length = BitConverter.ToInt32(data, at);
                if (length < 0 || at + 4 + length > data.Length) break;
                at += 4 + length;
                records++;
            }
        }
        return records;
    }

    private static StringContent Chat(string prompt) =>
        new($$"""{"model":"test-model","max_tokens":100,"messages":[{"role":"user","content":{{JsonSerializer.Serialize(prompt)}}}]}""", Encoding.UTF8, "application/json");

    private static async Task<string?> ReadyStoreAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/health/ready");
        var ready = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return ready.GetProperty("checks").GetProperty("store").GetProperty("status").GetString();
    }

    private static async Task<(decimal Spent, decimal Reserved)> GlobalDailyAsync(HttpClient http)
    {
        var budgets = await AdminAsync(http, "/admin/budgets");
        var daily = budgets.GetProperty("data").EnumerateArray().Single(b => b.GetProperty("scope").GetString() == "global" && b.GetProperty("window").GetString() == "daily");
        return (daily.GetProperty("spent_usd").GetDecimal(), daily.GetProperty("reserved_usd").GetDecimal());
    }

    private static async Task<JsonElement> AdminAsync(HttpClient http, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Polls until the condition holds; fails at the deadline (a bound on a busy machine, not a speed check).</summary>
    private static async Task WaitAsync(Func<Task<bool>> condition, string what, GatewayProcess process, int seconds = 30)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await condition()) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(seconds), $"Gave up after {seconds} s waiting for {what}. The gateway said:\n{process.Log}");
            await Task.Delay(100);
        }
    }
}
