using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Batches;

/// <summary>
/// POST /v1/batch/chat/completions against the real gateway and a fake OpenAI upstream on loopback that
/// answers each request with its own prompt (so order is checkable), counts how many it is serving at
/// once, fails a prompt marked "fail-me" with a 400, and reports <see cref="_completionTokens"/> tokens.
/// </summary>
public sealed class BatchTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private int _concurrent;
    private int _maxConcurrent;
    private int _completionTokens = 7;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, received) =>
        {
            var now = Interlocked.Increment(ref _concurrent);
            InterlockedMax(ref _maxConcurrent, now);
            try
            {
                // Long enough that items overlap when parallelism allows it.
                await Task.Delay(15);
                var prompt = received.Json.GetProperty("messages")[0].GetProperty("content").GetString()!;
                if (prompt.Contains("fail-me", StringComparison.Ordinal))
                {
                    await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("temperature is out of range", param: "temperature"), 400);
                    return;
                }
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer to " + prompt, prompt: 11, completion: Volatile.Read(ref _completionTokens)));
            }
            finally
            {
                Interlocked.Decrement(ref _concurrent);
            }
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private Dictionary<string, string?> Settings()
    {
        var s = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        s["Gateway:Resilience:MaxRetries"] = "0";
        return s;
    }

    private static string Item(string prompt, string model = "test-model", int? maxTokens = null, double temperature = 0.7, bool stream = false) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model"] = model,
            ["temperature"] = temperature,
            ["max_tokens"] = maxTokens,
            ["stream"] = stream,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = prompt } },
        });

    private static async Task<(HttpResponseMessage Response, JsonElement Json)> PostAsync(HttpClient client, string body, string query = "",
        string contentType = "application/json", string? bearer = null, Action<HttpRequestHeaders>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/batch/chat/completions" + query)
        {
            Content = new StringContent(body, Encoding.UTF8, contentType),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        headers?.Invoke(request.Headers);
        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string Array(IEnumerable<string> items) => "[" + string.Join(",", items) + "]";

    private static string Content(JsonElement result) =>
        result.GetProperty("response").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task A_batch_of_fifty_runs_every_item_in_order_with_the_failing_one_reported_and_parallelism_held()
    {
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        var items = Enumerable.Range(0, 50).Select(i => Item(i == 17 ? $"prompt {i} fail-me" : $"prompt {i}"));

        var (response, json) = await PostAsync(client, Array(items), "?parallelism=4");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("batch_", response.Headers.GetValues("x-gateway-batch-id").Single(), StringComparison.Ordinal);
        Assert.Equal("batch.chat.completions", json.GetProperty("object").GetString());
        var data = json.GetProperty("data");
        Assert.Equal(50, data.GetArrayLength());
        for (var i = 0; i < 50; i++)
        {
            var r = data[i];
            Assert.Equal(i, r.GetProperty("index").GetInt32());
            if (i == 17) continue;
            Assert.Equal(200, r.GetProperty("status").GetInt32());
            Assert.Equal($"answer to prompt {i}", Content(r));
            Assert.Equal("test-model", r.GetProperty("headers").GetProperty("x-gateway-model").GetString());
            Assert.Equal("0.000025", r.GetProperty("headers").GetProperty("x-gateway-cost-usd").GetString()); // 11 in at $0.001/1k + 7 out at $0.002/1k
            Assert.False(r.TryGetProperty("error", out _));
        }
        var failed = data[17];
        Assert.Equal(400, failed.GetProperty("status").GetInt32());
        Assert.Equal("temperature is out of range", failed.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("temperature", failed.GetProperty("error").GetProperty("param").GetString());
        Assert.False(failed.TryGetProperty("response", out _));

        var counts = json.GetProperty("counts");
        Assert.Equal(49, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Equal(0, counts.GetProperty("skipped").GetInt32());
        Assert.Equal(49 * 11, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(49 * 7, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(49 * 0.000025m, json.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(50, _upstream.Calls);
        Assert.InRange(_maxConcurrent, 1, 4);

        // Each item is an ordinary request for the metrics, and the batch counts its items.
        var metrics = await MetricsText.ScrapeAsync(client);
        Assert.Equal(50, metrics.Find("llm_gateway_requests_total").Sum(s => s.Value));
        Assert.Equal(49, metrics.Value("llm_gateway_batch_items_total", ("status", "succeeded")));
        Assert.Equal(1, metrics.Value("llm_gateway_batch_items_total", ("status", "failed")));
        Assert.Equal(0, metrics.Value("llm_gateway_batches_inflight"));
    }

    [Fact]
    public async Task Parallelism_one_runs_the_items_one_at_a_time()
    {
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();

        var (response, json) = await PostAsync(client, Array(Enumerable.Range(0, 6).Select(i => Item($"p{i}"))), "?parallelism=1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(6, json.GetProperty("counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(1, _maxConcurrent);
    }

    [Fact]
    public async Task A_cost_cap_stops_admission_part_way_and_the_batch_spends_no_more_than_the_cap()
    {
        // Output at $1 per 1k tokens, input free: max_tokens 10 makes each item's worst case $0.01, and
        // the upstream reports 10 output tokens, so each really costs $0.01.
        var settings = Settings();
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        _completionTokens = 10;
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (response, json) = await PostAsync(client, Array(Enumerable.Range(0, 10).Select(i => Item($"p{i}", maxTokens: 10))), "?parallelism=3&max_cost_usd=0.055");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var data = json.GetProperty("data");
        for (var i = 0; i < 10; i++)
        {
            var r = data[i];
            if (i < 5)
            {
                Assert.Equal(200, r.GetProperty("status").GetInt32());
                continue;
            }
            Assert.Equal(429, r.GetProperty("status").GetInt32());
            Assert.Equal("batch_cost_limit_reached", r.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal("insufficient_quota", r.GetProperty("error").GetProperty("type").GetString());
        }
        Assert.Equal(0.05m, json.GetProperty("cost_usd").GetDecimal());
        Assert.True(json.GetProperty("cost_usd").GetDecimal() <= 0.055m);
        Assert.Equal(5, json.GetProperty("counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(5, json.GetProperty("counts").GetProperty("skipped").GetInt32());
        Assert.Equal(5, _upstream.Calls);
        // The router was told how much room each item had.
        Assert.All(_upstream.Requests, r => Assert.Equal(10, r.Json.GetProperty("max_tokens").GetInt32()));
        var metrics = await MetricsText.ScrapeAsync(client);
        Assert.Equal(5, metrics.Value("llm_gateway_batch_items_total", ("status", "skipped")));
    }

    [Fact]
    public async Task Items_that_cost_less_than_their_worst_case_give_the_difference_back_to_the_batch()
    {
        // Worst case $0.01 per item (max_tokens 10), real cost $0.002 (2 tokens): a $0.03 cap admits items
        // while spent + 0.01 fits, i.e. eleven of them (spent 0.022), not three.
        var settings = Settings();
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        _completionTokens = 2;
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (_, json) = await PostAsync(client, Array(Enumerable.Range(0, 20).Select(i => Item($"p{i}", maxTokens: 10))), "?parallelism=1&max_cost_usd=0.03");

        Assert.Equal(11, json.GetProperty("counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(9, json.GetProperty("counts").GetProperty("skipped").GetInt32());
        Assert.Equal(0.022m, json.GetProperty("cost_usd").GetDecimal());
        Assert.Equal(11, _upstream.Calls);
    }

    [Fact]
    public async Task An_item_whose_cheapest_model_cannot_fit_the_cap_is_skipped_without_calling_anyone()
    {
        var settings = Settings();
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (_, json) = await PostAsync(client, Array([Item("p", maxTokens: 100)]), "?max_cost_usd=0.05");

        Assert.Equal(429, json.GetProperty("data")[0].GetProperty("status").GetInt32());
        Assert.Equal(1, json.GetProperty("counts").GetProperty("skipped").GetInt32());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task Json_lines_are_accepted_and_answered_in_order()
    {
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        var body = Item("first") + "\r\n\r\n" + Item("second") + "\n" + Item("third") + "\n";

        var (response, json) = await PostAsync(client, body, contentType: "application/x-ndjson");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var data = json.GetProperty("data");
        Assert.Equal(["answer to first", "answer to second", "answer to third"], data.EnumerateArray().Select(Content).ToArray());
    }

    [Theory]
    [InlineData("not json", "application/json", "", "invalid_json")]
    [InlineData("{\"model\":\"test-model\"}", "application/json", "", "invalid_batch")]
    [InlineData("[]", "application/json", "", "invalid_batch")]
    [InlineData("[{\"model\":\"test-model\"}, \"hi\"]", "application/json", "", "invalid_batch")]
    [InlineData("{\"model\":\"test-model\"}\n[1,2]", "application/jsonl", "", "invalid_batch")]
    [InlineData("[{},{},{},{}]", "application/json", "", "batch_too_large")]
    [InlineData("[{}]", "application/json", "?parallelism=0", null)]
    [InlineData("[{}]", "application/json", "?parallelism=9", null)]
    [InlineData("[{}]", "application/json", "?parallelism=two", null)]
    [InlineData("[{}]", "application/json", "?max_cost_usd=-1", null)]
    public async Task Bad_batch_input_is_a_400_for_the_whole_batch(string body, string contentType, string query, string? code)
    {
        var settings = Settings();
        settings["Gateway:Batches:MaxItems"] = "3";
        settings["Gateway:Batches:MaxParallelism"] = "8";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (response, json) = await PostAsync(client, body, query, contentType);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = json.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task A_body_over_the_batch_limit_is_a_413_and_items_keep_the_per_request_limit()
    {
        var settings = Settings();
        settings["Gateway:Batches:MaxRequestBytes"] = "4000";
        settings["Gateway:Limits:MaxRequestBytes"] = "1000";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (tooBig, error) = await PostAsync(client, Array([Item(new string('x', 5000))]));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.StatusCode);
        Assert.Equal("request_too_large", error.GetProperty("error").GetProperty("code").GetString());

        // Under the batch's limit, but one item is over a request's.
        var (response, json) = await PostAsync(client, Array([Item("small"), Item(new string('x', 1500))]));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(200, json.GetProperty("data")[0].GetProperty("status").GetInt32());
        Assert.Equal(413, json.GetProperty("data")[1].GetProperty("status").GetInt32());
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task Streamed_and_malformed_items_fail_on_their_own_while_the_rest_run()
    {
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        var items = new[] { Item("ok"), Item("streamed", stream: true), """{"model":"test-model"}""", """{"model":"nope","messages":[{"role":"user","content":"x"}]}""" };

        var (response, json) = await PostAsync(client, Array(items));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var data = json.GetProperty("data");
        Assert.Equal(200, data[0].GetProperty("status").GetInt32());
        Assert.Equal(400, data[1].GetProperty("status").GetInt32());
        Assert.Equal("stream_not_supported_in_batch", data[1].GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("stream", data[1].GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(400, data[2].GetProperty("status").GetInt32());
        Assert.Equal("invalid_request_error", data[2].GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(404, data[3].GetProperty("status").GetInt32());
        Assert.Equal("model_not_found", data[3].GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(3, json.GetProperty("counts").GetProperty("failed").GetInt32());
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task Identical_deterministic_items_are_answered_from_the_cache()
    {
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        var same = Item("same question", temperature: 0);

        var (_, json) = await PostAsync(client, Array([same, same, same]), "?parallelism=1");

        var data = json.GetProperty("data");
        Assert.Equal("miss", data[0].GetProperty("headers").GetProperty("x-gateway-cache").GetString());
        Assert.Equal("hit", data[1].GetProperty("headers").GetProperty("x-gateway-cache").GetString());
        Assert.Equal("hit", data[2].GetProperty("headers").GetProperty("x-gateway-cache").GetString());
        Assert.Equal("answer to same question", Content(data[2]));
        Assert.Equal(1, _upstream.Calls);
        Assert.Equal(0.000025m, json.GetProperty("cost_usd").GetDecimal()); // hits cost nothing
    }

    [Fact]
    public async Task With_gateway_keys_each_item_is_held_to_the_key_s_models_and_rate_limit()
    {
        var settings = Settings();
        settings["Gateway:Models:other-model:Provider"] = "up";
        settings["Gateway:Models:other-model:UpstreamModel"] = "other";
        settings.WithKeys(new AuthKit.Key("team-a", "sk-gw-team-a-secret-0123456789", Models: ["test-model"], Rpm: 3));
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        var (anonymous, _) = await PostAsync(client, Array([Item("x")]));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        var items = new[] { Item("a"), Item("b", model: "other-model"), Item("c"), Item("d"), Item("e") };
        var (response, json) = await PostAsync(client, Array(items), "?parallelism=1", bearer: "sk-gw-team-a-secret-0123456789");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var data = json.GetProperty("data");
        Assert.Equal(200, data[0].GetProperty("status").GetInt32());
        Assert.Equal(403, data[1].GetProperty("status").GetInt32());
        Assert.Equal("model_not_allowed", data[1].GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(200, data[2].GetProperty("status").GetInt32());
        Assert.Equal(200, data[3].GetProperty("status").GetInt32());
        // Three requests a minute: the fifth item (fourth to reach the limiter) is refused.
        Assert.Equal(429, data[4].GetProperty("status").GetInt32());
        Assert.Equal("rate_limit_exceeded", data[4].GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(3, _upstream.Calls);
        Assert.DoesNotContain("sk-gw-team-a", json.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_log_shows_the_batch_start_and_end_and_each_item_s_request_line_names_its_batch()
    {
        var settings = Settings();
        settings["Serilog:MinimumLevel:Default"] = "Information";
        var logs = new ScopedLogCapture();
        await using var gateway = new GatewayFactory(settings) { TestServices = s => s.AddSingleton<ILoggerProvider>(logs) };
        var client = gateway.CreateClient();

        var (response, _) = await PostAsync(client, Array(Enumerable.Range(0, 20).Select(i => Item($"p{i}"))));
        var batchId = response.Headers.GetValues("x-gateway-batch-id").Single();

        var lines = logs.Lines.ToArray();
        Assert.Contains(lines, l => l.StartsWith($"Batch {batchId} started: 20 items, parallelism 4", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"Batch {batchId}: 10/20 done", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"Batch {batchId} ended: 20 items, 20 succeeded, 0 failed, 0 skipped", StringComparison.Ordinal));
        var requestLines = lines.Where(l => l.Contains("RequestCompleted", StringComparison.Ordinal)).ToList();
        Assert.Equal(20, requestLines.Count);
        Assert.All(requestLines, l => Assert.Contains($"BatchId={batchId}", l, StringComparison.Ordinal));
        Assert.Equal(20, requestLines.Select(l => l[(l.IndexOf("BatchIndex=", StringComparison.Ordinal) + 11)..].Split(' ')[0]).Distinct().Count());
    }

    /// <summary>Log lines with the scopes they were written in, as Serilog adds them to a JSON line.</summary>
    private sealed class ScopedLogCapture : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(ScopedLogCapture owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var line = new StringBuilder(formatter(state, exception)).Append(" |").Append(eventId.Name);
                owner._scopes.ForEachScope((scope, sb) =>
                {
                    if (scope is IEnumerable<KeyValuePair<string, object>> pairs)
                    {
                        foreach (var (k, v) in pairs) sb.Append(' ').Append(k).Append('=').Append(Convert.ToString(v, CultureInfo.InvariantCulture));
                    }
                }, line);
                owner.Lines.Enqueue(line.ToString());
            }
        }
    }
}
