using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;

namespace LlmGateway.IntegrationTests.Usage;

public sealed class UsageLedgerTests : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_USAGE";
    private static readonly DateTimeOffset T0 = new(2031, 5, 20, 10, 0, 0, TimeSpan.Zero);
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private readonly ManualClock _clock = new(T0);
    private FakeUpstream _upstream = null!;
    private FakeUpstream _other = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _upstream.Handler = StoreTestKit.NumberedAnswers(_upstream);
        _other = await FakeUpstream.StartAsync();
        _other.Handler = StoreTestKit.NumberedAnswers(_other);
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        await _other.DisposeAsync();
    }

    private GatewayFactory Gateway()
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv);
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(_other.BaseUrl, provider: "other", model: "other-model")) settings[k] = v;
        settings["Gateway:Models:other-model:CostPer1kInput"] = "0.01";
        settings["Gateway:Models:other-model:CostPer1kOutput"] = "0.02";
        // Task types the router knows, so X-Task-Type names them instead of falling back to the default.
        settings["Gateway:Routing:DefaultTaskType"] = "chat";
        settings["Gateway:Routing:TaskTypes:chat:Models:0"] = "test-model";
        settings["Gateway:Routing:TaskTypes:code:Models:0"] = "other-model";
        return new GatewayFactory(settings);
    }

    private Task<JsonElement> UsageAsync(HttpClient client, string query, int status = 200) =>
        client.AdminAsync(HttpMethod.Get, "/admin/usage" + query, _adminKey, status);

    private static string Window(DateTimeOffset from, DateTimeOffset to) =>
        $"from={Uri.EscapeDataString(from.ToString("O"))}&to={Uri.EscapeDataString(to.ToString("O"))}";

    [Fact]
    public async Task Every_finished_request_is_in_the_ledger_whether_it_succeeded_failed_streamed_or_was_cancelled()
    {
        var slow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _other.Handler = async (http, _) =>
        {
            // A stream the client walks away from in the middle.
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: "partial"));
            await slow.Task.WaitAsync(TimeSpan.FromSeconds(20), http.RequestAborted);
        };
        await using var gateway = Gateway();
        var app = gateway.WithClock(_clock);
        var client = app.CreateClient();

        (await client.PostChatAsync(StoreTestKit.Body("ok", "\"temperature\":0.5"))).Dispose();
        (await client.PostChatAsync(StoreTestKit.Body("streamed", "\"temperature\":0.5,\"stream\":true"))).Dispose();
        (await client.PostChatAsync(StoreTestKit.Body("unknown", "\"temperature\":0.5", model: "no-such-model"))).Dispose();
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("bad temperature", code: "bad"), 400);
        (await client.PostChatAsync(StoreTestKit.Body("rejected", "\"temperature\":0.5"))).Dispose();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(StoreTestKit.Body("walk away", "\"temperature\":0.5,\"stream\":true", model: "other-model"), System.Text.Encoding.UTF8, "application/json") })
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64];
            Assert.True(await stream.ReadAsync(buffer) > 0);
        }

        JsonElement report = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            report = await UsageAsync(client, "?" + Window(T0 - TimeSpan.FromHours(1), T0 + TimeSpan.FromHours(1)) + "&groupBy=model");
            return report.GetProperty("total").GetProperty("requests").GetInt32() == 5;
        }, "five ledger records");

        var total = report.GetProperty("total");
        Assert.Equal(3, total.GetProperty("errors").GetInt32());
        var byModel = report.GetProperty("data").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        Assert.Equal(3, byModel["test-model"].GetProperty("requests").GetInt32());
        Assert.Equal(1, byModel["other-model"].GetProperty("requests").GetInt32());
        Assert.Equal(1, byModel[""].GetProperty("requests").GetInt32()); // the unknown model never resolved
        // The two answered requests reported 11 + 7 tokens each.
        Assert.Equal(22, byModel["test-model"].GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(14, byModel["test-model"].GetProperty("completion_tokens").GetInt32());
        slow.TrySetResult();
    }

    [Fact]
    public async Task Usage_is_aggregated_per_model_provider_and_task_type_over_the_window_asked_for()
    {
        await using var gateway = Gateway();
        var app = gateway.WithClock(_clock);
        var client = app.CreateClient();

        async Task SendAsync(string model, string taskType)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(StoreTestKit.Body("q", "\"temperature\":0.5", model), System.Text.Encoding.UTF8, "application/json") };
            request.Headers.Add("X-Task-Type", taskType);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await SendAsync("test-model", "chat");
        await SendAsync("test-model", "chat");
        await SendAsync("other-model", "code");
        _clock.Advance(TimeSpan.FromDays(2));
        await SendAsync("other-model", "code");

        var window = Window(T0 - TimeSpan.FromMinutes(5), T0 + TimeSpan.FromHours(1));
        var byModel = (await UsageAsync(client, $"?{window}&groupBy=model")).GetProperty("data").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        var byProvider = (await UsageAsync(client, $"?{window}&groupBy=provider")).GetProperty("data").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        var byTask = (await UsageAsync(client, $"?{window}&groupBy=task_type")).GetProperty("data").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        var laterOnly = await UsageAsync(client, "?" + Window(T0 + TimeSpan.FromDays(1), T0 + TimeSpan.FromDays(3)));

        var test = byModel["test-model"];
        Assert.Equal(2, test.GetProperty("requests").GetInt32());
        Assert.Equal(22, test.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(14, test.GetProperty("completion_tokens").GetInt32());
        // 2 x (11 x 0.001 + 7 x 0.002) / 1000 and 1 x (11 x 0.01 + 7 x 0.02) / 1000
        Assert.Equal(0.00005m, test.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(0.00025m, byModel["other-model"].GetProperty("cost_usd").GetDecimal());
        Assert.True(test.GetProperty("avg_latency_ms").GetDouble() > 0);
        Assert.True(test.GetProperty("p50_latency_ms").GetDouble() > 0);
        Assert.Equal(["other", "up"], byProvider.Keys.Order());
        Assert.Equal(1, byProvider["other"].GetProperty("requests").GetInt32());
        Assert.Equal(2, byTask["chat"].GetProperty("requests").GetInt32());
        Assert.Equal(1, byTask["code"].GetProperty("requests").GetInt32());
        Assert.Equal(1, laterOnly.GetProperty("total").GetProperty("requests").GetInt32());
        Assert.Equal("other-model", laterOnly.GetProperty("data")[0].GetProperty("group").GetString());
    }

    [Fact]
    public async Task A_cache_hit_is_recorded_with_its_tokens_and_no_cost()
    {
        await using var gateway = Gateway();
        var app = gateway.WithClock(_clock);
        var client = app.CreateClient();

        (await client.PostChatAsync(StoreTestKit.Body("same"))).Dispose();
        (await client.PostChatAsync(StoreTestKit.Body("same"))).Dispose();

        var total = (await UsageAsync(client, "?" + Window(T0 - TimeSpan.FromHours(1), T0 + TimeSpan.FromHours(1)))).GetProperty("total");
        Assert.Equal(2, total.GetProperty("requests").GetInt32());
        Assert.Equal(1, total.GetProperty("cache_hits").GetInt32());
        Assert.Equal(22, total.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0.000025m, total.GetProperty("cost_usd").GetDecimal());
    }

    [Theory]
    [InlineData("?groupBy=colour", "groupBy")]
    [InlineData("?from=yesterday", "from")]
    [InlineData("?to=2031-13-45", "to")]
    [InlineData("?from=2031-05-21T00:00:00Z&to=2031-05-20T00:00:00Z", "from")]
    public async Task Bad_usage_queries_get_an_OpenAI_shaped_400_that_names_the_parameter(string query, string param)
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var error = (await UsageAsync(client, query, 400)).GetProperty("error");

        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Usage_needs_the_admin_key()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var error = (await client.AdminAsync(HttpMethod.Get, "/admin/usage", "not-the-key", 401)).GetProperty("error");

        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.DoesNotContain(_adminKey, error.ToString());
    }
}
