using System.Net;
using System.Text.Json;
using LlmGateway.Budgets;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Budgets;

/// <summary>
/// Budgets against the real gateway. Prices are chosen so that a request's maximum cost is exactly
/// $0.10 (input free, $1 per 1k output tokens, max_tokens 100) and the fake provider reports 100
/// output tokens, so the real cost is $0.10 too and a $1.00 budget fits exactly ten requests.
/// </summary>
public abstract class BudgetTests : IAsyncLifetime
{
    protected const decimal RequestCost = 0.10m;
    private readonly string _adminEnv;
    private readonly string _adminKey;
    protected FakeUpstream Upstream { get; private set; } = null!;

    protected BudgetTests(string adminEnv)
    {
        _adminEnv = adminEnv;
        _adminKey = StoreTestKit.AdminKey(adminEnv);
    }

    /// <summary>Null for the embedded store.</summary>
    protected abstract string? Redis { get; }

    public async Task InitializeAsync()
    {
        Upstream = await FakeUpstream.StartAsync(async (http, _) =>
        {
            await Task.Delay(10);
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("paid answer", prompt: 11, completion: 100));
        });
    }

    public async Task DisposeAsync() => await Upstream.DisposeAsync();

    protected GatewayFactory Gateway(Action<Dictionary<string, string?>> configure, string? prefix = null)
    {
        var settings = StoreTestKit.Settings(Upstream, _adminEnv, Redis, prefix);
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        configure(settings);
        return new GatewayFactory(settings);
    }

    protected static string Body(int n = 0, int maxTokens = 100) => StoreTestKit.Body($"question {n}", $"\"temperature\":0.5,\"max_tokens\":{maxTokens}");

    protected async Task<Dictionary<string, JsonElement>> BudgetsAsync(HttpClient client)
    {
        var list = await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey);
        return list.GetProperty("data").EnumerateArray().ToDictionary(b => b.GetProperty("scope").GetString() + "/" + b.GetProperty("window").GetString());
    }

    [Fact]
    public async Task Fifty_concurrent_requests_against_a_budget_that_fits_ten_spend_no_more_than_the_budget()
    {
        await using var gateway = Gateway(s => s["Gateway:Budgets:Providers:up:DailyUsd"] = "1.0");
        var client = await gateway.ConnectedClientAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => client.PostChatAsync(Body(i)))));

        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(10, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(40, refused.Count);
        Assert.Equal(10, Upstream.Calls);
        var error = JsonDocument.Parse(await refused[0].Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("insufficient_quota", error.GetProperty("type").GetString());
        Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("provider 'up'", error.GetProperty("message").GetString());

        var daily = (await BudgetsAsync(client))["provider:up/daily"];
        Assert.Equal(1.0m, daily.GetProperty("limit_usd").GetDecimal());
        Assert.InRange(daily.GetProperty("spent_usd").GetDecimal(), 0m, 1.0m + RequestCost);
        Assert.Equal(1.0m, daily.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, daily.GetProperty("reserved_usd").GetDecimal());
        Assert.Equal(0m, daily.GetProperty("remaining_usd").GetDecimal());
        foreach (var r in responses) r.Dispose();
    }

    [Fact]
    public async Task A_failed_attempt_gives_its_reservation_back()
    {
        await using var gateway = Gateway(s => s["Gateway:Budgets:Global:DailyUsd"] = "0.1");
        var client = await gateway.ConnectedClientAsync();
        var answer = Upstream.Handler;
        Upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), 503);

        using var failed = await client.PostChatAsync(Body());
        var afterFailure = (await BudgetsAsync(client))["global/daily"];
        Upstream.Handler = answer;
        using var next = await client.PostChatAsync(Body());
        using var overBudget = await client.PostChatAsync(Body(1));
        var afterSuccess = (await BudgetsAsync(client))["global/daily"];

        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.Equal(0m, afterFailure.GetProperty("reserved_usd").GetDecimal());
        Assert.Equal(0m, afterFailure.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, overBudget.StatusCode);
        Assert.Equal(0.1m, afterSuccess.GetProperty("spent_usd").GetDecimal());
        Assert.Equal(0m, afterSuccess.GetProperty("reserved_usd").GetDecimal());
    }

    [Fact]
    public async Task A_provider_whose_budget_is_spent_is_skipped_for_the_next_candidate()
    {
        await using var backup = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from backup", completion: 100)));
        await using var gateway = Gateway(s =>
        {
            foreach (var (k, v) in GatewayFactory.OpenAiSettings(backup.BaseUrl, provider: "backup", model: "backup-model")) s[k] = v;
            s["Gateway:Models:test-model:Fallbacks:0"] = "backup-model";
            s["Gateway:Budgets:Providers:up:DailyUsd"] = "0.1";
        });
        var client = await gateway.ConnectedClientAsync();
        var gate = gateway.Services.GetRequiredService<IBudgetGate>();

        using var first = await client.PostChatAsync(Body(1));
        // Sent at once: on Redis the first request's settlement may still be on its way (SettlementBatches), and then its
        // reservation, the most it could cost, is what refuses this one; either way it goes to the backup.
        using var second = await client.PostChatAsync(Body(2));
        // The router's view of the spend follows the settlement's answer from the store.
        await StoreTestKit.EventuallyAsync(() => Task.FromResult(gate.IsProviderExhausted("up")), "provider 'up' seen as exhausted");

        Assert.Equal("test-model", first.Header("x-gateway-model"));
        Assert.False(gate.IsProviderExhausted("backup"));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("backup-model", second.Header("x-gateway-model"));
        Assert.Equal(1, Upstream.Calls);
    }

    [Fact]
    public async Task A_candidate_that_could_cost_more_than_MaxCostPerRequestUsd_is_refused()
    {
        await using var gateway = Gateway(s => s["Gateway:Budgets:MaxCostPerRequestUsd"] = "0.05");
        var client = await gateway.ConnectedClientAsync();

        using var tooExpensive = await client.PostChatAsync(Body(maxTokens: 100));
        using var cheapEnough = await client.PostChatAsync(Body(maxTokens: 40));

        Assert.Equal(HttpStatusCode.TooManyRequests, tooExpensive.StatusCode);
        var error = JsonDocument.Parse(await tooExpensive.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("per request", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, cheapEnough.StatusCode);
        Assert.Equal(1, Upstream.Calls);
    }

    [Fact]
    public async Task The_daily_budget_starts_again_at_UTC_midnight_and_the_monthly_one_does_not()
    {
        var clock = new ManualClock(new DateTimeOffset(2031, 1, 31, 23, 30, 0, TimeSpan.Zero));
        await using var gateway = Gateway(s =>
        {
            s["Gateway:Budgets:Global:DailyUsd"] = "0.1";
            s["Gateway:Budgets:Providers:up:MonthlyUsd"] = "0.2";
        });
        var app = gateway.WithClock(clock);
        var client = await app.ConnectedClientAsync();

        using var first = await client.PostChatAsync(Body(1));
        using var sameDay = await client.PostChatAsync(Body(2));
        var budgets = await BudgetsAsync(client);
        clock.Advance(TimeSpan.FromHours(1)); // 00:30 on the 1st of February: a new day and a new month
        using var nextDay = await client.PostChatAsync(Body(3));
        using var nextDayAgain = await client.PostChatAsync(Body(4));
        clock.Advance(TimeSpan.FromDays(1));
        using var dayAfter = await client.PostChatAsync(Body(5));
        clock.Advance(TimeSpan.FromDays(1));
        using var monthSpent = await client.PostChatAsync(Body(6));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, sameDay.StatusCode);
        Assert.Equal(new DateTimeOffset(2031, 2, 1, 0, 0, 0, TimeSpan.Zero), budgets["global/daily"].GetProperty("window_end").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2031, 2, 1, 0, 0, 0, TimeSpan.Zero), budgets["provider:up/monthly"].GetProperty("window_end").GetDateTimeOffset());
        Assert.Equal(HttpStatusCode.OK, nextDay.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, nextDayAgain.StatusCode);
        Assert.Equal(HttpStatusCode.OK, dayAfter.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, monthSpent.StatusCode);
        Assert.Contains("monthly budget of provider 'up'", await monthSpent.Content.ReadAsStringAsync());
        Assert.Equal(3, Upstream.Calls);
    }

    [Fact]
    public async Task Each_alert_threshold_is_logged_once_per_window()
    {
        var logs = new WarningCollector();
        await using var gateway = Gateway(s =>
        {
            s["Gateway:Budgets:Global:DailyUsd"] = "1.0";
            s["Gateway:Budgets:AlertThresholds:0"] = "0.5";
            s["Gateway:Budgets:AlertThresholds:1"] = "0.8";
        });
        var app = gateway.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<ILoggerProvider>(logs)));
        var client = await app.ConnectedClientAsync();

        for (var i = 0; i < 10; i++) (await client.PostChatAsync(Body(i))).Dispose();

        var alerts = logs.Messages.Where(m => m.Contains("Budget alert", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, alerts.Count);
        Assert.Contains("50%", alerts[0]);
        Assert.Contains("80%", alerts[1]);
    }

    private sealed class WarningCollector : ILoggerProvider
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();
        public IReadOnlyList<string> Messages => [.. _messages];
        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void Dispose() { }

        private sealed class Logger(WarningCollector owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) owner._messages.Enqueue(formatter(state, exception));
            }
        }
    }
}

public sealed class MemoryBudgetTests() : BudgetTests("LLMGW_TEST_ADMIN_KEY_BUDGETS_MEMORY")
{
    protected override string? Redis => null;
}

[Collection(RedisCollection.Name)]
public sealed class RedisBudgetTests(RedisServer redis) : BudgetTests("LLMGW_TEST_ADMIN_KEY_BUDGETS_REDIS")
{
    protected override string? Redis => redis.ConnectionString;
}
