using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Storage;

/// <summary>
/// The gateway on a real Redis: several instances sharing one, and Redis going away and coming back.
/// Every request costs exactly $0.10 (input free, $1 per 1k output tokens, 100 output tokens).
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisGatewayTests(RedisServer sharedRedis) : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_REDIS_GATEWAY";
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, request) =>
            OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer to " + request.Json.GetProperty("messages")[0].GetProperty("content").GetString(), completion: 100)));
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Gateway(string redis, string prefix, Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv, redis, prefix);
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        settings["Gateway:Store:BreakSeconds"] = "1";
        configure?.Invoke(settings);
        return new GatewayFactory(settings);
    }

    private static string Body(string prompt) => StoreTestKit.Body(prompt, "\"temperature\":0,\"max_tokens\":100");

    /// <summary>Requests in the ledger over the last hour; null while the ledger can't be read (503, the store is not reachable yet).</summary>
    private async Task<int?> LedgerCountAsync(HttpClient client)
    {
        var window = $"from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(1).ToString("O"))}";
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/usage?" + window);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _adminKey);
        using var response = await client.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable) return null;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var report = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return report.GetProperty("total").GetProperty("requests").GetInt32();
    }

    private async Task<JsonElement> GlobalDailyAsync(HttpClient client)
    {
        var budgets = await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey);
        return budgets.GetProperty("data").EnumerateArray().Single(b => b.GetProperty("scope").GetString() == "global" && b.GetProperty("window").GetString() == "daily");
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> ReadyAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/health/ready");
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task Two_gateway_instances_on_one_Redis_share_the_cache_the_budgets_and_the_ledger()
    {
        var prefix = $"shared-{Guid.NewGuid():N}:";
        void Budget(Dictionary<string, string?> s) => s["Gateway:Budgets:Global:DailyUsd"] = "0.3";
        await using var first = Gateway(sharedRedis.ConnectionString, prefix, Budget);
        await using var second = Gateway(sharedRedis.ConnectionString, prefix, Budget);
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();

        using var miss = await a.PostChatAsync(Body("shared question"));
        using var hit = await b.PostChatAsync(Body("shared question"));
        using var a2 = await a.PostChatAsync(Body("two"));
        using var a3 = await a.PostChatAsync(Body("three"));
        using var refused = await b.PostChatAsync(Body("four"));

        Assert.Equal("miss", miss.Header("x-gateway-cache"));
        Assert.Equal("hit", hit.Header("x-gateway-cache"));
        Assert.Equal("answer to shared question", await hit.ContentAsync());
        Assert.Equal(HttpStatusCode.OK, a3.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(3, _upstream.Calls);
        // a3's settlement goes to Redis after its answer (SettlementBatches): spent once it lands; until then its reservation counts.
        await StoreTestKit.EventuallyAsync(async () => (await GlobalDailyAsync(b)).GetProperty("spent_usd").GetDecimal() is var spent && spent == 0.3m ? (true, spent) : (false, spent),
            "three requests' spend in the shared budget");
        // Each instance writes its own records; either one reads them all.
        await StoreTestKit.EventuallyAsync(async () => await LedgerCountAsync(b) == 5, "five records in the shared ledger");
        Assert.Equal(5, await LedgerCountAsync(a));
    }

    [Fact]
    public async Task Every_settlement_of_an_instance_stopped_at_once_after_its_answers_reaches_Redis()
    {
        // Settlements go to Redis after the answers, in batches (SettlementBatches): a graceful stop right after the last
        // answer sends what is still queued or out before the store closes, so no spend is lost and nothing stays held.
        var prefix = $"stop-{Guid.NewGuid():N}:";
        void Budget(Dictionary<string, string?> s) => s["Gateway:Budgets:Global:DailyUsd"] = "10";
        await using (var first = Gateway(sharedRedis.ConnectionString, prefix, Budget))
        {
            var client = await first.ConnectedClientAsync();
            await Parallel.ForEachAsync(Enumerable.Range(0, 40), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
            {
                using var response = await client.PostChatAsync(Body($"stop {i}"), cacheControl: "no-store");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            });
        }

        await using var second = Gateway(sharedRedis.ConnectionString, prefix, Budget);
        var global = await GlobalDailyAsync(await second.ConnectedClientAsync());
        Assert.Equal(4.0m, global.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, global.GetProperty("reserved_usd").GetDecimal());
    }

    [Fact]
    public async Task Free_requests_under_a_global_budget_settle_on_Redis_without_a_single_store_error()
    {
        // Issue 16 item 3: a $0 reservation settled as "HINCRBY … -0", which Redis refuses; 300 mock requests tripped the breaker 18 times.
        await using var gateway = Gateway(sharedRedis.ConnectionString, $"free-{Guid.NewGuid():N}:", s =>
        {
            s["Gateway:Budgets:Global:DailyUsd"] = "1";
            s["Gateway:Providers:mock:Type"] = "mock";
            s["Gateway:Models:mock-echo:Provider"] = "mock";
            s["Gateway:Store:BreakSeconds"] = "30";
        });
        var client = await gateway.ConnectedClientAsync();
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();

        await Parallel.ForEachAsync(Enumerable.Range(0, 300), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
        {
            using var response = await client.PostChatAsync(StoreTestKit.Body($"free {i}", model: "mock-echo"), cacheControl: "no-store");
            statuses.Add(response.StatusCode);
        });

        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        var metrics = await Telemetry.MetricsText.ScrapeAsync(client);
        var errors = metrics.Find("llm_gateway_store_errors_total").Where(e => e.Value > 0).Select(e => $"{e.Labels["operation"]}={e.Value}").ToList();
        Assert.True(errors.Count == 0, "store errors: " + string.Join(", ", errors));
        var (_, ready) = await ReadyAsync(client);
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
        // The last settlements land a round trip after their answers (SettlementBatches); then nothing is held and nothing spent.
        await StoreTestKit.EventuallyAsync(async () => await GlobalDailyAsync(client) is var g && g.GetProperty("reserved_usd").GetDecimal() == 0m ? (true, g.ToString()) : (false, g.ToString()),
            "every reservation settled");
        Assert.Equal(0m, (await GlobalDailyAsync(client)).GetProperty("spent_usd").GetDecimal());
    }

    [Fact]
    public async Task When_Redis_stops_and_comes_back_requests_keep_working_and_no_usage_or_spend_is_lost()
    {
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        await using var gateway = Gateway(redis.ConnectionString, $"restart-{Guid.NewGuid():N}:", s => s["Gateway:Budgets:Global:DailyUsd"] = "10");
        var client = await gateway.ConnectedClientAsync();
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await client.PostChatAsync(Body($"before {i}"))).StatusCode);
        using var cachedBefore = await client.PostChatAsync(Body("before 0"));
        Assert.Equal("hit", cachedBefore.Header("x-gateway-cache"));
        await StoreTestKit.EventuallyAsync(async () => await LedgerCountAsync(client) == 4, "the first records written");

        await redis.StopAsync(keepData: true);

        var during = new List<HttpResponseMessage>();
        for (var i = 0; i < 5; i++) during.Add(await client.PostChatAsync(Body($"during {i}")));
        using var notCached = await client.PostChatAsync(Body("before 0"));
        var (readyStatus, ready) = await ReadyAsync(client);
        var budgetsDuring = await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey);
        var usageDuring = await client.AdminAsync(HttpMethod.Get, "/admin/usage", _adminKey, 503);

        Assert.All(during, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal("miss", notCached.Header("x-gateway-cache")); // the cache fails open
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        Assert.Equal("Degraded", ready.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
        Assert.True(budgetsDuring.GetProperty("stale").GetBoolean());
        Assert.Equal("store_unavailable", usageDuring.GetProperty("error").GetProperty("code").GetString());

        await redis.StartAsync();

        // 4 before, 6 during (one of them a second look at the cache), none lost; 3 + 6 paid requests of $0.10.
        await StoreTestKit.EventuallyAsync(async () => await LedgerCountAsync(client) is var n && n == 10 ? (true, n) : (false, n), "the buffered records flushed", seconds: 20);
        await StoreTestKit.EventuallyAsync(async () => (await GlobalDailyAsync(client)).GetProperty("spent_usd").GetDecimal() is var spent && spent == 0.9m ? (true, spent) : (false, spent),
            "the spend made while Redis was down added", seconds: 20);
        var (_, readyAfter) = await ReadyAsync(client);
        Assert.Equal("Healthy", readyAfter.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
        Assert.Equal(10, await LedgerCountAsync(client));
        foreach (var r in during) r.Dispose();
    }

    [Fact]
    public async Task Without_Redis_FailMode_closed_refuses_budgeted_requests_and_open_holds_to_what_it_knows()
    {
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        var prefix = $"failmode-{Guid.NewGuid():N}:";
        await using var closed = Gateway(redis.ConnectionString, prefix, s =>
        {
            s["Gateway:Budgets:Global:DailyUsd"] = "0.35";
            s["Gateway:Budgets:FailMode"] = "closed";
        });
        await using var open = Gateway(redis.ConnectionString, prefix, s => s["Gateway:Budgets:Global:DailyUsd"] = "0.35");
        var closedClient = await closed.ConnectedClientAsync();
        var openClient = await open.ConnectedClientAsync();
        Assert.Equal(HttpStatusCode.OK, (await openClient.PostChatAsync(Body("paid before"))).StatusCode);
        Assert.Equal(0.1m, (await GlobalDailyAsync(openClient)).GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0.1m, (await GlobalDailyAsync(closedClient)).GetProperty("spent_usd").GetDecimal());

        await redis.StopAsync(keepData: false);

        using var refused = await closedClient.PostChatAsync(Body("closed"));
        var (closedReady, _) = await ReadyAsync(closedClient);
        var openStatuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++) openStatuses.Add((await openClient.PostChatAsync(Body($"open {i}"))).StatusCode);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("budget_unavailable", error.GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, closedReady);
        // $0.10 spent before the outage and a $0.35 limit: two more fit, the third would pass it.
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], openStatuses);
    }

    [Fact]
    public async Task A_gateway_started_while_Redis_is_down_serves_and_writes_its_ledger_once_Redis_is_up()
    {
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        await redis.StopAsync(keepData: false);
        await using var gateway = Gateway(redis.ConnectionString, $"late-{Guid.NewGuid():N}:");
        var client = gateway.CreateClient();

        using var served = await client.PostChatAsync(Body("early"));
        await redis.StartAsync();

        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        await StoreTestKit.EventuallyAsync(async () => await LedgerCountAsync(client) == 1, "the early record written", seconds: 20);
    }

    [Fact]
    public async Task The_Redis_password_appears_in_no_log_line_error_or_admin_output_even_when_Redis_is_down()
    {
        var password = "redis-pw-" + Guid.NewGuid().ToString("N");
        await using var redis = new RedisServer { Password = password };
        await redis.InitializeAsync();
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var gateway = Gateway(redis.ConnectionString, $"secret-{Guid.NewGuid():N}:", s => s["Gateway:Budgets:Global:DailyUsd"] = "5");
        var app = gateway.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(new CollectingLoggerProvider(logs))));
        var client = await app.ConnectedClientAsync();
        using var before = await client.PostChatAsync(Body("with a password"));
        Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        await redis.StopAsync(keepData: false);
        var outputs = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            using var during = await client.PostChatAsync(Body($"during {i}"));
            outputs.Add(await during.Content.ReadAsStringAsync());
        }
        using (var ready = await client.GetAsync("/health/ready")) outputs.Add(await ready.Content.ReadAsStringAsync());
        outputs.Add((await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey)).ToString());
        outputs.Add((await client.AdminAsync(HttpMethod.Get, "/admin/usage", _adminKey, 503)).ToString());
        outputs.Add((await client.AdminAsync(HttpMethod.Delete, "/admin/cache", _adminKey, 503)).ToString());

        Assert.Contains(logs, l => l.Contains("store", StringComparison.OrdinalIgnoreCase)); // the outage was logged...
        Assert.DoesNotContain(logs, l => l.Contains(password, StringComparison.Ordinal)); // ...without the password
        Assert.All(outputs, o => Assert.DoesNotContain(password, o, StringComparison.Ordinal));
    }

    private sealed class CollectingLoggerProvider(System.Collections.Concurrent.ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(lines);
        public void Dispose() { }

        private sealed class Logger(System.Collections.Concurrent.ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception) + " " + exception);
        }
    }
}
