using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.Budgets;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI.Chat;
using static LlmGateway.IntegrationTests.Routing.RoutingEnvironment;

namespace LlmGateway.IntegrationTests.Routing;

/// <summary>
/// auto requests through the real gateway to real upstreams on loopback: which upstream received
/// each one is the assertion. Each test starts its own upstreams and gateway.
/// </summary>
public sealed class RoutingTests : IAsyncLifetime
{
    private RoutingEnvironment _env = null!;

    public async Task InitializeAsync() => _env = await StartAsync();

    public async Task DisposeAsync() => await _env.DisposeAsync();

    private static async Task<(ChatCompletion Completion, ClientResult<ChatCompletion> Result)> AskAsync(ChatClient client, string text, ChatCompletionOptions? options = null)
    {
        var result = await client.CompleteChatAsync([new UserChatMessage(text)], options);
        return (result.Value, result);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Error)> PostErrorAsync(WebApplicationFactory<Program> gateway, string body, params (string Name, string Value)[] headers)
    {
        using var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers) request.Headers.Add(name, value);
        using var response = await client.SendAsync(request);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        foreach (var field in new[] { "message", "type", "param", "code" }) Assert.True(error.TryGetProperty(field, out _), field);
        return (response.StatusCode, error.Clone());
    }

    private static string Body(string model, string text, string extra = "") =>
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":{{JsonSerializer.Serialize(text)}}}]{{extra}}}""";

    private int TotalCalls => _env.Cheap.Calls + _env.Pricey.Calls + _env.Local.Calls;

    [Fact]
    public async Task The_task_type_header_sends_auto_to_that_task_types_first_model()
    {
        await using var gateway = _env.Gateway();
        var (completion, result) = await AskAsync(Client(gateway, "auto", ("X-Task-Type", "sql")), "hello");
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal("sql", Header(result, "x-gateway-task-type"));
        Assert.Equal("cheap-model", Header(result, "x-gateway-model"));
        Assert.Equal("cheap-model-upstream", _env.Cheap.Requests.Single().Json.GetProperty("model").GetString());
        Assert.Equal(0, _env.Pricey.Calls);
    }

    [Fact]
    public async Task Metadata_task_type_sends_auto_to_that_task_types_first_model()
    {
        await using var gateway = _env.Gateway();
        var options = new ChatCompletionOptions { Metadata = { ["task_type"] = "sql", ["team"] = "blue" } };
        var (completion, result) = await AskAsync(Client(gateway, "auto"), "hello", options);
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal("sql", Header(result, "x-gateway-task-type"));
        // task_type is the gateway's; the rest of metadata is the upstream's.
        var metadata = _env.Cheap.Requests.Single().Json.GetProperty("metadata");
        Assert.Equal("blue", metadata.GetProperty("team").GetString());
        Assert.False(metadata.TryGetProperty("task_type", out _));
    }

    [Fact]
    public async Task A_pattern_matching_the_last_user_message_picks_the_task_type()
    {
        await using var gateway = _env.Gateway();
        var (completion, result) = await AskAsync(Client(gateway, "auto"), "Please SELECT the ten newest rows");
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal("sql", Header(result, "x-gateway-task-type"));
    }

    [Fact]
    public async Task With_nothing_to_go_on_the_default_task_type_is_used_streamed_or_not()
    {
        await using var gateway = _env.Gateway();
        var client = Client(gateway, "auto");
        var (completion, result) = await AskAsync(client, "hello");
        Assert.Equal("answered by pricey", completion.Content[0].Text);
        Assert.Equal("general", Header(result, "x-gateway-task-type"));
        Assert.Equal("pricey-model", Header(result, "x-gateway-model"));

        var streamed = new StringBuilder();
        var updates = client.CompleteChatStreamingAsync([new UserChatMessage("hello")]);
        await foreach (var update in updates)
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        }
        Assert.Equal("answered by pricey", streamed.ToString());

        using var http = gateway.CreateClient();
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(Body("auto", "hi", ""","stream":true"""), Encoding.UTF8, "application/json"));
        Assert.Equal("general", response.Headers.GetValues("x-gateway-task-type").Single());
        Assert.Equal("pricey-model", response.Headers.GetValues("x-gateway-model").Single());
    }

    [Fact]
    public async Task The_cost_strategy_sends_to_the_cheapest_model_over_a_lower_priority()
    {
        await using var gateway = _env.Gateway();
        var (completion, result) = await AskAsync(Client(gateway, "auto"), "Summarize the minutes of yesterday's meeting");
        Assert.Equal("summarization", Header(result, "x-gateway-task-type"));
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal(0, _env.Pricey.Calls);
    }

    [Fact]
    public async Task Local_only_keeps_the_request_on_a_local_provider()
    {
        await using var gateway = _env.Gateway();
        var (completion, _) = await AskAsync(Client(gateway, "auto", ("X-Local-Only", "true")), "hello");
        Assert.Equal("answered by local", completion.Content[0].Text);

        var (status, error) = await PostErrorAsync(gateway, Body("pricey-model", "hello"), ("X-Local-Only", "true"));
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("model_not_allowed", error.GetProperty("code").GetString());
        Assert.Equal(1, TotalCalls);
    }

    [Fact]
    public async Task The_global_local_only_setting_applies_to_every_request()
    {
        await using var gateway = _env.Gateway(s => s["Gateway:Routing:LocalOnly"] = "true");
        var (completion, _) = await AskAsync(Client(gateway, "auto"), "hello");
        Assert.Equal("answered by local", completion.Content[0].Text);
        Assert.Equal(0, _env.Pricey.Calls + _env.Cheap.Calls);
    }

    [Fact]
    public async Task No_fallback_tries_exactly_the_model_asked_for()
    {
        _env.Pricey.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), 500);
        await using var gateway = _env.Gateway();

        // Without the header the failure falls back to cheap-model...
        var (completion, result) = await AskAsync(Client(gateway, "pricey-model"), "hello");
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal("cheap-model", Header(result, "x-gateway-model"));

        // ...with it, the client gets the failure and cheap is not asked.
        var (status, error) = await PostErrorAsync(gateway, Body("pricey-model", "hello"), ("X-No-Fallback", "true"));
        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Equal(1, _env.Cheap.Calls);
        Assert.Equal(2, _env.Pricey.Calls);
    }

    [Fact]
    public async Task Max_cost_header_skips_the_candidates_whose_worst_case_is_over_it()
    {
        await using var gateway = _env.Gateway();
        var (completion, _) = await AskAsync(Client(gateway, "auto", ("X-Max-Cost-Usd", "0.01")), "hello");
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal(0, _env.Pricey.Calls);

        // Nothing fits: a 400 that names the limit and how to get under it, and no provider call.
        var (status, error) = await PostErrorAsync(gateway, Body("cheap-model", "hello"), ("X-Max-Cost-Usd", "0.0001"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("max_cost_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("X-Max-Cost-Usd", error.GetProperty("message").GetString());
        Assert.Equal(1, TotalCalls);
    }

    [Fact]
    public async Task The_configured_per_request_limit_holds_without_any_header()
    {
        await using var gateway = _env.Gateway(s => s["Gateway:Budgets:MaxCostPerRequestUsd"] = "0.02");
        var (completion, _) = await AskAsync(Client(gateway, "auto"), "hello");
        Assert.Equal("answered by cheap", completion.Content[0].Text);

        // Asking for a short answer brings the pricey model under the limit: 4096 -> 100 output tokens.
        var (shortAnswer, _) = await AskAsync(Client(gateway, "auto"), "hello", new ChatCompletionOptions { MaxOutputTokenCount = 100 });
        Assert.Equal("answered by pricey", shortAnswer.Content[0].Text);
    }

    [Fact]
    public async Task A_prompt_over_a_models_context_window_goes_to_a_fallback_with_room()
    {
        await using var gateway = _env.Gateway();
        var longPrompt = string.Join(' ', Enumerable.Repeat("context", 1500));   // ~3000 tokens by the estimate; local-model has 2048
        var (completion, result) = await AskAsync(Client(gateway, "local-model"), longPrompt);
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal(0, _env.Local.Calls);
        Assert.Equal("1", Header(result, "x-gateway-attempts"));

        var (status, error) = await PostErrorAsync(gateway, Body("local-model", longPrompt), ("X-No-Fallback", "true"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("messages", error.GetProperty("param").GetString());
        Assert.Equal(0, _env.Local.Calls);
    }

    [Fact]
    public async Task A_provider_with_an_open_circuit_is_skipped_and_all_open_is_a_503()
    {
        await using (var gateway = _env.Gateway(services: s => s.AddSingleton<IProviderHealth>(new OpenCircuits("pricey"))))
        {
            var (completion, _) = await AskAsync(Client(gateway, "auto"), "hello");
            Assert.Equal("answered by cheap", completion.Content[0].Text);
            Assert.Equal(0, _env.Pricey.Calls);
        }

        await using var down = _env.Gateway(services: s => s.AddSingleton<IProviderHealth>(new OpenCircuits("pricey", "cheap", "local")));
        var (status, error) = await PostErrorAsync(down, Body("auto", "hello"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("no_healthy_provider", error.GetProperty("code").GetString());
        Assert.Contains("circuit", error.GetProperty("message").GetString());
        Assert.Equal(1, TotalCalls);
    }

    [Fact]
    public async Task A_provider_whose_budget_is_spent_is_skipped_and_all_spent_is_a_429()
    {
        await using (var gateway = _env.Gateway(services: s => s.AddSingleton<IBudgetGate>(new SpentBudgets("pricey"))))
        {
            var (completion, _) = await AskAsync(Client(gateway, "auto"), "hello");
            Assert.Equal("answered by cheap", completion.Content[0].Text);
        }

        await using var spent = _env.Gateway(services: s => s.AddSingleton<IBudgetGate>(new SpentBudgets("pricey", "cheap", "local")));
        var (status, error) = await PostErrorAsync(spent, Body("auto", "hello"));
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("insufficient_quota", error.GetProperty("type").GetString());
        Assert.Equal("budget_exceeded", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Tools_go_to_a_model_that_declares_them()
    {
        await using var gateway = _env.Gateway();
        var options = new ChatCompletionOptions { Tools = { ChatTool.CreateFunctionTool("get_weather", "Weather for a city") } };
        var (completion, _) = await AskAsync(Client(gateway, "local-model"), "hello", options);
        Assert.Equal("answered by cheap", completion.Content[0].Text);
        Assert.Equal(0, _env.Local.Calls);
    }

    [Fact]
    public async Task The_latency_strategy_follows_what_real_traffic_measured()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var pricey = TimeSpan.FromMilliseconds(900);
        var cheap = TimeSpan.FromMilliseconds(200);
        // Each upstream moves the gateway's clock by how long it "takes": no sleeping, no timing assertion.
        _env.Pricey.Handler = Answer("pricey", () => clock.Advance(pricey));
        _env.Cheap.Handler = Answer("cheap", () => clock.Advance(cheap));
        await using var gateway = _env.Gateway(services: s => s.AddSingleton<TimeProvider>(clock));
        var fastest = Client(gateway, "auto", ("X-Task-Type", "fastest"));

        // Nothing measured yet: priority order, pricey first. Then cheap is measured through a direct request.
        Assert.Equal("answered by pricey", (await AskAsync(fastest, "one")).Completion.Content[0].Text);
        await AskAsync(Client(gateway, "cheap-model"), "measure cheap");

        // Measured faster, cheap now wins...
        Assert.Equal("answered by cheap", (await AskAsync(fastest, "two")).Completion.Content[0].Text);

        // ...until it slows down: one 3 s answer moves its average (200 -> 1040 ms) past pricey's 900 ms.
        cheap = TimeSpan.FromSeconds(3);
        Assert.Equal("answered by cheap", (await AskAsync(fastest, "three")).Completion.Content[0].Text);
        Assert.Equal("answered by pricey", (await AskAsync(fastest, "four")).Completion.Content[0].Text);
    }

    [Fact]
    public async Task A_teams_policy_is_configuration_alone_cheap_local_for_config_best_model_for_analysis_never_over_two_cents()
    {
        // The policy from the issue, as the README writes it: nothing but settings.
        await using var gateway = _env.Gateway(s =>
        {
            s["Gateway:Budgets:MaxCostPerRequestUsd"] = "0.02";
            s["Gateway:Routing:TaskTypes:config:Models:0"] = "local-model";
            s["Gateway:Routing:TaskTypes:config:Models:1"] = "cheap-model";
            s["Gateway:Routing:TaskTypes:config:Strategy"] = "cost";
            s["Gateway:Routing:TaskTypes:config:Patterns:0"] = @"\b(?:ya?ml|nginx|dockerfile)\b";
            s["Gateway:Routing:TaskTypes:analysis:Models:0"] = "pricey-model";
            s["Gateway:Routing:TaskTypes:analysis:Models:1"] = "cheap-model";
            s["Gateway:Routing:TaskTypes:analysis:Strategy"] = "ordered";
            s["Gateway:Routing:TaskTypes:analysis:Patterns:0"] = @"\banaly[sz]e\b";
        });
        var client = Client(gateway, "auto");

        Assert.Equal("answered by local", (await AskAsync(client, "Fix the indentation of this YAML")).Completion.Content[0].Text);

        // The best model when the answer's worst case fits 2 cents (500 tokens at $0.03/1k)...
        var bounded = new ChatCompletionOptions { MaxOutputTokenCount = 500 };
        Assert.Equal("answered by pricey", (await AskAsync(client, "Analyze these requirements", bounded)).Completion.Content[0].Text);

        // ...and the next one on the list when it can't (4096 tokens would be up to $0.12).
        Assert.Equal("answered by cheap", (await AskAsync(client, "Analyze these requirements")).Completion.Content[0].Text);
        Assert.Equal(1, _env.Pricey.Calls);
    }

    [Fact]
    public async Task The_request_log_line_says_how_the_request_was_routed_also_when_it_was_refused()
    {
        var capture = new RequestLogCapture();
        await using var gateway = _env.Gateway(services: s => s.AddSingleton<ILoggerProvider>(capture));
        await AskAsync(Client(gateway, "auto", ("X-Max-Cost-Usd", "0.01")), "Please select rows");
        await PostErrorAsync(gateway, Body("cheap-model", "hello"), ("X-Max-Cost-Usd", "0.0000001"));

        var lines = capture.Lines.ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal("sql", lines[0]["TaskType"]);
        Assert.Equal("priority: cheap-model>local-model | task type by pattern", lines[0]["Route"]);
        Assert.Equal("fallbacks: none left | removed cheap-model (max-cost) | task type by default", lines[1]["Route"]);
        Assert.Equal(400, lines[1]["Status"]);
    }
}
