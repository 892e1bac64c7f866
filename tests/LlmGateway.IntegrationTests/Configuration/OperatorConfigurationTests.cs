using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LlmGateway.IntegrationTests.Configuration;

/// <summary>
/// The operator owns the configuration: the shipped appsettings.json under a GATEWAY_CONFIG file and
/// environment variables, started through the real host. Lists replace, maps merge, null removes, a
/// file's task types are the task types. GATEWAY_CONFIG and the variables are process-wide, hence the
/// collection that runs alone.
/// </summary>
[Collection(nameof(ProcessEnvironment))]
public sealed class OperatorConfigurationTests : IAsyncLifetime
{
    private const string AdminKeyVariable = "LLMGATEWAY_CONFIG_TESTS_ADMIN_KEY";
    private const string AdminKey = "config-tests-admin-key-77c1";

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("llmgw-config-");
    private readonly List<string> _variables = [];
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        // Answers with the upstream model it was asked for, so a test sees where a request went.
        _upstream = await FakeUpstream.StartAsync((http, received) =>
            OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answered by " + received.Json.GetProperty("model").GetString())));
        Set(AdminKeyVariable, AdminKey);
    }

    public async Task DisposeAsync()
    {
        foreach (var name in _variables) Environment.SetEnvironmentVariable(name, null);
        await _upstream.DisposeAsync();
        _dir.Delete(recursive: true);
    }

    private void Set(string name, string? value)
    {
        _variables.Add(name);
        Environment.SetEnvironmentVariable(name, value);
    }

    private void UseFile(string name, string text)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, text);
        Set(ConfigurationExtensions.ExtraFileVariable, path);
    }

    /// <summary>The shipped appsettings.json, then the file and variables the test set; the admin key on.</summary>
    private static GatewayFactory Shipped(string environment = "Testing") => new(new()
    {
        ["Gateway:Auth:AdminKeyEnv"] = AdminKeyVariable,
        ["Serilog:MinimumLevel:Default"] = "Warning",
    }, useShippedSettings: true) { EnvironmentName = environment };

    private static GatewayOptions Options(GatewayFactory gateway) => gateway.Services.GetRequiredService<IOptions<GatewayOptions>>().Value;

    private static async Task<List<string>> ModelIdsAsync(HttpClient client)
    {
        var models = await client.GetFromJsonAsync<JsonElement>("/v1/models");
        return [.. models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)];
    }

    private static async Task<(HttpResponseMessage Response, string Body)> ChatAsync(HttpClient client, string model, string prompt, bool stream = false)
    {
        var body = JsonSerializer.Serialize(new { model, stream, messages = new[] { new { role = "user", content = prompt } } });
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response, await response.Content.ReadAsStringAsync());
    }

    private static async Task<JsonElement> AdminGetAsync(HttpClient client, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task A_file_removes_a_shipped_provider_and_its_models_with_null()
    {
        UseFile("remove.yaml", """
            Gateway:
              Providers:
                ollama: null
              Models:
                llama3.2: ~
                nomic-embed-text:
            """);
        await using var gateway = Shipped();
        using var client = gateway.CreateClient();

        var ids = await ModelIdsAsync(client);
        Assert.DoesNotContain("llama3.2", ids);
        Assert.DoesNotContain("nomic-embed-text", ids);
        Assert.Contains("gpt-4o-mini", ids);
        Assert.Contains("mock-echo", ids);
        Assert.False(Options(gateway).Providers.ContainsKey("ollama"));
        Assert.True(Options(gateway).Providers.ContainsKey("openai"));

        var (response, body) = await ChatAsync(client, "llama3.2", "hi");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("model_not_found", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_defines_task_types_owns_them_its_lists_replace_the_shipped_ones_and_no_shipped_pattern_routes()
    {
        UseFile("mine.json", $$"""
            {
              "Gateway": {
                "Providers": { "mine": { "Type": "openai", "BaseUrl": "{{_upstream.BaseUrl}}/v1" } },
                "Models": {
                  "my-model": { "Provider": "mine", "UpstreamModel": "up-general", "Priority": 1 },
                  "my-coder": { "Provider": "mine", "UpstreamModel": "up-code", "Priority": 2 }
                },
                "Routing": {
                  "TaskTypes": {
                    "general": { "Models": [ "my-model" ] },
                    "code": { "Models": [ "my-coder" ], "Patterns": [ "\\bcode\\b" ] }
                  }
                }
              }
            }
            """);
        await using var gateway = Shipped();
        using var client = gateway.CreateClient();

        // The task types are the file's; general's list is exactly the file's (not my-model, gpt-4o, ...).
        var routing = Options(gateway).Routing;
        Assert.Equal(["code", "general"], routing.TaskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["my-model"], routing.TaskTypes["general"].Models);
        Assert.Equal("balanced", routing.TaskTypes["general"].Strategy); // the shipped general's other settings merge by key

        // Routing check 1: a plain prompt goes to the file's general model.
        var (plain, plainBody) = await ChatAsync(client, "auto", "hello there");
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal("general", plain.Headers.GetValues("x-gateway-task-type").Single());
        Assert.Equal("my-model", plain.Headers.GetValues("x-gateway-model").Single());
        Assert.Contains("answered by up-general", plainBody, StringComparison.Ordinal);

        // Routing check 2: the file's code pattern is what classifies.
        var (code, codeBody) = await ChatAsync(client, "auto", "please review this code");
        Assert.Equal(HttpStatusCode.OK, code.StatusCode);
        Assert.Equal("code", code.Headers.GetValues("x-gateway-task-type").Single());
        Assert.Contains("answered by up-code", codeBody, StringComparison.Ordinal);

        // Routing check 3: the shipped sql and code_generation patterns take no part.
        foreach (var prompt in new[] { "write a sql query with a left join on orders", "implement a python function that parses dates" })
        {
            var (response, body) = await ChatAsync(client, "auto", prompt);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("general", response.Headers.GetValues("x-gateway-task-type").Single());
            Assert.Contains("answered by up-general", body, StringComparison.Ordinal);
        }
        Assert.All(_upstream.Requests, r => Assert.StartsWith("up-", r.Json.GetProperty("model").GetString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_shipped_task_type_named_with_an_empty_map_is_kept_as_shipped()
    {
        UseFile("keep.yaml", """
            Gateway:
              Routing:
                TaskTypes:
                  general:
                    Models: [ gpt-4o ]
                  sql: {}
            """);
        await using var gateway = Shipped();
        var taskTypes = Options(gateway).Routing.TaskTypes;
        Assert.Equal(["general", "sql"], taskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["gpt-4o"], taskTypes["general"].Models);
        Assert.Equal(["gpt-4o-mini", "gpt-4o"], taskTypes["sql"].Models);
        Assert.Equal(6, taskTypes["sql"].Patterns.Count);
    }

    [Fact]
    public async Task Environment_variables_replace_lists_as_a_whole()
    {
        Set("Gateway__Models__gpt-4o-mini__Capabilities__0", "tools");
        Set("Gateway__Budgets__AlertThresholds__0", "0.9");
        Set("Gateway__Routing__TaskTypes__summarization__Models__0", "gpt-4o");
        Set("Gateway__Routing__TaskTypes__general__Models__0", "gpt-4o-mini");
        await using var gateway = Shipped();
        var options = Options(gateway);

        Assert.Equal(["tools"], options.Models["gpt-4o-mini"].Capabilities);
        Assert.Equal([0.9], options.Budgets.AlertThresholds);
        Assert.Equal(["gpt-4o"], options.Routing.TaskTypes["summarization"].Models);
        Assert.Equal(["gpt-4o-mini"], options.Routing.TaskTypes["general"].Models);
        // Variables name two task types: the task types are then the ones named after appsettings.json,
        // each merged over the shipped one (summarization keeps its shipped patterns and strategy).
        Assert.Equal(["general", "summarization"], options.Routing.TaskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("cost", options.Routing.TaskTypes["summarization"].Strategy);
        Assert.NotEmpty(options.Routing.TaskTypes["summarization"].Patterns);
        // (An empty variable removes an entry: .NET cannot set one in-process, so ListenAndLayersProcessTests does.)
    }

    [Fact]
    public async Task Gateway_Defaults_none_leaves_out_everything_the_shipped_file_says_under_Gateway()
    {
        UseFile("alone.yaml", $$"""
            Gateway:
              Defaults: none
              Providers:
                mine: { Type: openai, BaseUrl: "{{_upstream.BaseUrl}}/v1" }
              Models:
                only-model: { Provider: mine, UpstreamModel: up-only }
            """);
        await using var gateway = Shipped();
        using var client = gateway.CreateClient();

        Assert.Equal(["only-model"], (await ModelIdsAsync(client)).Where(id => id != "auto"));
        Assert.Equal(["mine"], Options(gateway).Providers.Keys);
        Assert.Empty(Options(gateway).Routing.TaskTypes);
        var (response, body) = await ChatAsync(client, "auto", "write a sql query");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("answered by up-only", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_production_with_a_key_and_unreachable_providers_no_request_gets_a_200_only_the_mock_by_name()
    {
        // Keys set, every real provider pointed at a loopback port nothing listens on.
        var dead = $"http://127.0.0.1:{LlmGateway.IntegrationTests.Telemetry.RepoFiles.FreePort()}";
        Set("OPENAI_API_KEY", "sk-test-unreachable-0001");
        Set("ANTHROPIC_API_KEY", "sk-ant-test-unreachable-0002");
        Set("GEMINI_API_KEY", "gemini-test-unreachable-0003");
        Set("Gateway__Providers__openai__BaseUrl", dead + "/v1");
        Set("Gateway__Providers__anthropic__BaseUrl", dead);
        Set("Gateway__Providers__gemini__BaseUrl", dead);
        Set("Gateway__Providers__ollama__BaseUrl", dead);
        Set("Gateway__Resilience__BaseDelayMs", "1");
        Set("Gateway__Resilience__MaxDelayMs", "5");
        await using var gateway = Shipped("Production");
        using var client = gateway.CreateClient();

        var requests = new List<(string Model, string Prompt, bool Stream)>
        {
            ("auto", "hello", false), ("auto", "hello", true), ("auto", "write a sql query with a left join", false),
            ("auto", "implement a python function that sorts", false), ("auto", "summarize this: the sky is blue", false),
            ("auto", "analyze the pros and cons", false), ("auto", "translate into french: cheese", false),
        };
        foreach (var model in Options(gateway).Models.Where(m => m.Value.Provider != "mock" && !m.Value.Capabilities.Contains("embeddings")).Select(m => m.Key))
        {
            requests.Add((model, "hello", false));
            requests.Add((model, "hello", true));
        }
        foreach (var (model, prompt, stream) in requests)
        {
            var (response, body) = await ChatAsync(client, model, prompt, stream);
            Assert.True((int)response.StatusCode is 502 or 503 or 504, $"{model} (stream {stream}, '{prompt}'): {(int)response.StatusCode} {body}");
            Assert.NotEqual("mock", response.Headers.TryGetValues("x-gateway-provider", out var p) ? p.Single() : null);
            Assert.Contains("\"error\"", body, StringComparison.Ordinal);
        }
        foreach (var model in new[] { "auto", "text-embedding-3-small" })
        {
            var response = await client.PostAsync("/v1/embeddings", new StringContent($$"""{"model":"{{model}}","input":"x"}""", Encoding.UTF8, "application/json"));
            Assert.True((int)response.StatusCode is 502 or 503 or 504, $"embeddings {model}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        // The mock still answers when named.
        var (mock, mockBody) = await ChatAsync(client, "mock-echo", "echo me");
        Assert.Equal(HttpStatusCode.OK, mock.StatusCode);
        Assert.Contains("echo me", mockBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Zero_config_auto_with_no_key_is_a_503_naming_the_key_to_set_and_mock_echo_answers_by_name()
    {
        Set("OPENAI_API_KEY", null);
        await using var gateway = Shipped();
        using var client = gateway.CreateClient();

        var (auto, body) = await ChatAsync(client, "auto", "hello");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, auto.StatusCode);
        Assert.Contains("OPENAI_API_KEY", body, StringComparison.Ordinal);
        Assert.Contains("no_healthy_provider", body, StringComparison.Ordinal);
        Assert.Contains("Set the key variable", body, StringComparison.Ordinal);

        var (named, namedBody) = await ChatAsync(client, "gpt-4o-mini", "hello");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, named.StatusCode);
        Assert.Contains("OPENAI_API_KEY", namedBody, StringComparison.Ordinal);

        var (mock, mockBody) = await ChatAsync(client, "mock-echo", "hello mock");
        Assert.Equal(HttpStatusCode.OK, mock.StatusCode);
        Assert.Contains("hello mock", mockBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_config_shows_the_effective_configuration_with_secrets_redacted()
    {
        const string hash = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
        UseFile("admin.yaml", $$"""
            Gateway:
              Auth:
                Keys:
                  - { Id: team-a, Sha256: "{{hash}}", Models: [ gpt-4o-mini ] }
              Routing:
                TaskTypes:
                  general: { Models: [ gpt-4o-mini ] }
            """);
        Set("OPENAI_API_KEY", "sk-admin-config-test-secret-0123456789");
        Set("ConnectionStrings__Other", "redis.example:6380,password=hunter2-very-secret,ssl=true");
        await using var gateway = Shipped();
        using var client = gateway.CreateClient();

        var config = await AdminGetAsync(client, "/admin/config");
        var text = config.GetRawText();
        Assert.DoesNotContain(hash, text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("hunter2", text, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-admin-config-test-secret", text, StringComparison.Ordinal);

        Assert.Contains("appsettings.json (shipped)", config.GetProperty("Layers").EnumerateArray().Select(l => l.GetString()));
        Assert.Contains("admin.yaml", config.GetProperty("Layers").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal("redis.example:6380,password=[redacted],ssl=true", config.GetProperty("ConnectionStrings").GetProperty("Other").GetString());

        var g = config.GetProperty("Gateway");
        var key = g.GetProperty("Auth").GetProperty("Keys").EnumerateArray().Single();
        Assert.Equal("team-a", key.GetProperty("Id").GetString());
        Assert.Equal("[redacted]", key.GetProperty("Sha256").GetString());
        Assert.Equal(["gpt-4o-mini"], g.GetProperty("Routing").GetProperty("TaskTypes").GetProperty("general").GetProperty("Models").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["general"], g.GetProperty("Routing").GetProperty("TaskTypes").EnumerateObject().Select(p => p.Name));
        Assert.Equal("OPENAI_API_KEY", g.GetProperty("Providers").GetProperty("openai").GetProperty("ApiKeyEnv").GetString());
        Assert.True(g.GetProperty("Providers").GetProperty("openai").GetProperty("Usable").GetBoolean());
        Assert.False(g.GetProperty("Providers").GetProperty("anthropic").GetProperty("Usable").GetBoolean());

        var general = config.GetProperty("AutoRoutes").GetProperty("general");
        Assert.Equal(["gpt-4o-mini"], general.GetProperty("Reachable").EnumerateArray().Select(e => e.GetString()));

        // Behind the admin key like every /admin path.
        using var anonymous = await client.GetAsync("/admin/config");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }
}
