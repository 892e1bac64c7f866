using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.Resilience;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Routing;

/// <summary>POST /admin/route/explain: why a request would go where it goes, from one call, with no provider called.</summary>
public sealed class RouteExplainTests : IAsyncLifetime
{
    private RoutingEnvironment _env = null!;

    public async Task InitializeAsync() => _env = await RoutingEnvironment.StartAsync();

    public async Task DisposeAsync() => await _env.DisposeAsync();

    private static async Task<(HttpStatusCode Status, JsonElement Json)> ExplainAsync(Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program> gateway, string body,
        string? adminKey = RoutingEnvironment.AdminKey, params (string Name, string Value)[] headers)
    {
        using var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/route/explain") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (adminKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        foreach (var (name, value) in headers) request.Headers.Add(name, value);
        using var response = await client.SendAsync(request);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static JsonElement Candidate(JsonElement explanation, string model) =>
        explanation.GetProperty("candidates").EnumerateArray().Single(c => c.GetProperty("model").GetString() == model);

    [Fact]
    public async Task Explains_task_type_candidates_removals_scores_and_order_without_calling_a_provider()
    {
        await using var gateway = _env.Gateway(services: s => s.AddSingleton<IProviderHealth>(new OpenCircuits("local")));
        const string body = """{"model":"auto","messages":[{"role":"user","content":"summarize the quarter"}]}""";
        var (status, json) = await ExplainAsync(gateway, body, headers: ("X-Max-Cost-Usd", "0.05"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("summarization", json.GetProperty("task_type").GetString());
        Assert.Equal("pattern", json.GetProperty("task_type_source").GetString());
        Assert.Contains("summari", json.GetProperty("task_type_detail").GetString());
        Assert.Equal("cost", json.GetProperty("strategy").GetString());
        Assert.Equal(0.05m, json.GetProperty("max_cost_usd").GetDecimal());
        Assert.Equal("X-Max-Cost-Usd", json.GetProperty("max_cost_source").GetString());

        // pricey's worst case (~$0.12) is over the limit; cheap is left and gets rank 1 with its cost as score.
        Assert.Equal(["cheap-model"], json.GetProperty("order").EnumerateArray().Select(e => e.GetString()));
        var cheap = Candidate(json, "cheap-model");
        Assert.Equal(1, cheap.GetProperty("rank").GetInt32());
        Assert.True(cheap.GetProperty("estimated_cost_usd").GetDecimal() > 0);
        Assert.Equal(cheap.GetProperty("estimated_cost_usd").GetDouble(), cheap.GetProperty("score").GetDouble(), 6);
        Assert.Equal("closed", cheap.GetProperty("circuit").GetString());
        Assert.Equal(JsonValueKind.Null, cheap.GetProperty("removed").ValueKind);

        var pricey = Candidate(json, "pricey-model");
        Assert.Equal(JsonValueKind.Null, pricey.GetProperty("rank").ValueKind);
        Assert.Equal("max-cost", pricey.GetProperty("removed").GetProperty("filter").GetString());
        Assert.Contains("0.05", pricey.GetProperty("removed").GetProperty("reason").GetString());
        Assert.True(pricey.GetProperty("max_cost_usd").GetDecimal() > 0.05m);

        var removed = json.GetProperty("removed").EnumerateArray().Single();
        Assert.Equal("pricey-model", removed.GetProperty("model").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
        Assert.Equal(0, _env.Cheap.Calls + _env.Pricey.Calls + _env.Local.Calls);
    }

    [Fact]
    public async Task Explains_the_error_a_request_would_get_and_every_reason_behind_it()
    {
        await using var gateway = _env.Gateway(services: s => s.AddSingleton<IProviderHealth>(new OpenCircuits("cheap", "pricey")));
        const string body = """{"model":"auto","metadata":{"task_type":"no-such-type"},"messages":[{"role":"user","content":"hi"}]}""";
        var (_, json) = await ExplainAsync(gateway, body, headers: ("X-Local-Only", "true"));

        Assert.Equal("general", json.GetProperty("task_type").GetString());
        Assert.Equal("default", json.GetProperty("task_type_source").GetString());
        Assert.Contains("no-such-type", json.GetProperty("task_type_detail").GetString());
        Assert.Equal("the X-Local-Only header", json.GetProperty("local_only").GetString());
        Assert.Equal(["local-model"], json.GetProperty("order").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("local-only", Candidate(json, "pricey-model").GetProperty("removed").GetProperty("filter").GetString());

        // With the local model's circuit open too, nothing is left: the explanation carries the 503.
        await using var allDown = _env.Gateway(services: s => s.AddSingleton<IProviderHealth>(new OpenCircuits("cheap", "pricey", "local")));
        var (_, none) = await ExplainAsync(allDown, body);
        Assert.Empty(none.GetProperty("order").EnumerateArray());
        Assert.Equal(503, none.GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal(3, none.GetProperty("removed").GetArrayLength());
        Assert.All(none.GetProperty("candidates").EnumerateArray(), c => Assert.Equal("open", c.GetProperty("circuit").GetString()));
    }

    [Fact]
    public async Task Explains_a_named_model_as_that_model_then_its_fallbacks()
    {
        await using var gateway = _env.Gateway();
        var (_, json) = await ExplainAsync(gateway, """{"model":"pricey-model","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}""");
        Assert.Equal("fallbacks", json.GetProperty("strategy").GetString());
        Assert.Equal(["pricey-model", "cheap-model"], json.GetProperty("order").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["tools"], json.GetProperty("required_capabilities").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Needs_the_admin_key_and_a_valid_body()
    {
        await using var gateway = _env.Gateway();
        var (unauthorized, error) = await ExplainAsync(gateway, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", adminKey: "wrong-key-123456");
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized);
        Assert.Equal("invalid_api_key", error.GetProperty("error").GetProperty("code").GetString());

        var (bad, badError) = await ExplainAsync(gateway, """{"model":"auto"}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Equal("messages", badError.GetProperty("error").GetProperty("param").GetString());

        var (badHeader, headerError) = await ExplainAsync(gateway, """{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", headers: ("X-Max-Cost-Usd", "lots"));
        Assert.Equal(HttpStatusCode.OK, badHeader);
        Assert.Equal(400, headerError.GetProperty("error").GetProperty("status").GetInt32());
        Assert.DoesNotContain(RoutingEnvironment.AdminKey, headerError.ToString());
    }
}
