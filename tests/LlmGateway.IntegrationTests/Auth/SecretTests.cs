using System.Net;
using System.Net.Http.Headers;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>
/// No path from a request to a provider key, and none from a client's credentials to a provider:
/// what reaches the fake provider, and everything the gateway writes back or logs.
/// </summary>
public sealed class SecretTests : IAsyncLifetime
{
    private const string GatewayKey = "gw-client-gateway-key-0123456789abcdef";
    private const string OpenAiKeyEnv = "AUTH_SECRET_TESTS_OPENAI_KEY";
    private const string AzureKeyEnv = "AUTH_SECRET_TESTS_AZURE_KEY";

    // Random per run, so nothing can have them hard-coded; long enough that a 10-character piece
    // turning up by chance is out of the question.
    private static readonly string s_openAiKey = "sk-proj-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N")[..12];
    private static readonly string s_azureKey = Guid.NewGuid().ToString("N");

    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(OpenAiKeyEnv, s_openAiKey);
        Environment.SetEnvironmentVariable(AzureKeyEnv, s_azureKey);
        _upstream = await FakeUpstream.StartAsync(EchoingUpstreamAsync);
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>An upstream that answers per upstream model, several of them repeating the key it was sent.</summary>
    private static async Task EchoingUpstreamAsync(HttpContext http, ReceivedRequest received)
    {
        var key = received.Header("api-key") ?? received.Header("authorization")?["Bearer ".Length..] ?? "";
        switch (received.Json.GetProperty("model").GetString())
        {
            case "auth-echo":
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error($"Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.", code: "invalid_api_key"), 401);
                break;
            case "param-echo":
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error($"Invalid header 'Authorization: Bearer {key}' for this endpoint; api_key={key}", code: "invalid_value", param: "headers"), 400);
                break;
            case "fragment-echo":
                // Cut and masked the way some proxies echo a key: no exact match, long pieces of it.
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error($"Key ...{key[3..]} (or {key[..^4]}****) is not allowed", code: "invalid_value", param: "key"), 400);
                break;
            case "text-echo":
                http.Response.StatusCode = 500;
                http.Response.ContentType = "text/plain";
                await http.Response.WriteAsync($"proxy error for request with Authorization: Bearer {key}\napi-key: {key}");
                break;
            case "stream-echo":
                OpenAiWire.StartSse(http);
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "Hel"));
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Error($"quota exceeded for key {key}", "server_error"));
                break;
            default:
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("fine"));
                break;
        }
    }

    private Dictionary<string, string?> ProviderSettings(string type, Dictionary<string, string?>? into = null, string provider = "up")
    {
        var s = into ?? new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" };
        s[$"Gateway:Providers:{provider}:Type"] = type;
        if (type == "openai")
        {
            s[$"Gateway:Providers:{provider}:BaseUrl"] = _upstream.BaseUrl + "/v1";
            s[$"Gateway:Providers:{provider}:ApiKeyEnv"] = OpenAiKeyEnv;
        }
        else if (type == "azure-openai")
        {
            s[$"Gateway:Providers:{provider}:BaseUrl"] = _upstream.BaseUrl;
            s[$"Gateway:Providers:{provider}:ApiKeyEnv"] = AzureKeyEnv;
            s[$"Gateway:Providers:{provider}:ApiVersion"] = "2024-10-21";
        }
        return s;
    }

    private static void AddModel(Dictionary<string, string?> s, string model, string provider, string upstreamModel)
    {
        s[$"Gateway:Models:{model}:Provider"] = provider;
        s[$"Gateway:Models:{model}:UpstreamModel"] = upstreamModel;
    }

    /// <summary>What a client may send that is its own business: every value here must stay out of the provider call.</summary>
    private static readonly (string Name, string Value)[] s_clientHeaders =
    [
        ("api-key", GatewayKey),
        ("x-api-key", GatewayKey),
        ("Cookie", "session=client-cookie-value"),
        ("Proxy-Authorization", "Basic client-proxy-credential"),
        ("OpenAI-Organization", "org-client-organization"),
        ("OpenAI-Project", "proj-client-project"),
        ("X-Forwarded-For", "10.9.8.7"),
        ("X-Forwarded-Host", "client-forwarded-host.example"),
        ("Forwarded", "for=10.9.8.6;host=client-forwarded.example"),
        ("X-Custom-Hop", "client-hop-value"),
        ("Keep-Alive", "timeout=999"),
        ("TE", "trailers"),
        ("X-Client-Secret", "client-only-secret-value"),
    ];

    /// <summary>Headers a provider call is made of; anything else reaching the upstream came from somewhere it shouldn't.</summary>
    private static readonly HashSet<string> s_upstreamHeaders = ["host", "content-type", "content-length", "authorization", "api-key", "accept", "traceparent", "tracestate"];

    [Theory]
    [InlineData("openai")]
    [InlineData("azure-openai")]
    [InlineData("mock")]
    public async Task A_clients_credentials_and_headers_never_reach_the_provider(string type)
    {
        var settings = ProviderSettings(type);
        AddModel(settings, "test-model", "up", "deployment-1");
        await using var gateway = new GatewayFactory(settings.WithKeys(new AuthKit.Key("client", GatewayKey)));
        using var client = gateway.CreateClient();

        foreach (var stream in new[] { false, true })
        {
            using var request = AuthKit.Chat(AuthKit.ChatBody("test-model", stream: stream), GatewayKey);
            foreach (var (name, value) in s_clientHeaders) request.Headers.TryAddWithoutValidation(name, value);
            request.Headers.Connection.Add("X-Custom-Hop");
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, body);
            Assert.DoesNotContain(GatewayKey, body);
        }

        if (type == "mock")
        {
            // No HTTP call at all: nothing can carry the client's headers anywhere.
            Assert.Equal(0, _upstream.Calls);
            return;
        }
        Assert.Equal(2, _upstream.Calls);
        foreach (var sent in _upstream.Requests)
        {
            if (type == "openai")
            {
                Assert.Equal("Bearer " + s_openAiKey, sent.Header("authorization"));
                Assert.Null(sent.Header("api-key"));
            }
            else
            {
                Assert.Equal(s_azureKey, sent.Header("api-key"));
                Assert.Null(sent.Header("authorization"));
                Assert.Equal("/openai/deployments/deployment-1/chat/completions", sent.Path);
            }
            Assert.Null(sent.Header("x-api-key"));
            Assert.All(sent.Headers.Keys, h => Assert.Contains(h, s_upstreamHeaders));
            foreach (var (name, value) in s_clientHeaders)
            {
                Assert.DoesNotContain(sent.Headers, h => h.Value.Contains(value, StringComparison.Ordinal));
            }
            Assert.DoesNotContain(GatewayKey, Encoding.UTF8.GetString(sent.Body));
        }
    }

    [Fact]
    public async Task Nothing_the_gateway_writes_contains_a_provider_key()
    {
        var settings = ProviderSettings("openai");
        ProviderSettings("azure-openai", settings, provider: "az");
        foreach (var m in new[] { "auth-echo", "param-echo", "fragment-echo", "text-echo", "stream-echo", "ok" })
        {
            AddModel(settings, "oa-" + m, "up", m);
            AddModel(settings, "az-" + m, "az", m);
        }
        settings["Gateway:Resilience:MaxRetries"] = "0";
        var logs = new LogCapture();
        await using var gateway = new GatewayFactory(settings.WithKeys(new AuthKit.Key("client", GatewayKey))) { TestServices = logs.AddTo };
        using var client = gateway.CreateClient();
        using var admin = gateway.AdminClient();
        var written = new List<string>();

        foreach (var prefix in new[] { "oa-", "az-" })
        {
            foreach (var m in new[] { "auth-echo", "param-echo", "fragment-echo", "text-echo", "stream-echo", "ok" })
            {
                foreach (var stream in new[] { false, true })
                {
                    using var response = await client.SendChatAsync(AuthKit.ChatBody(prefix + m, stream: stream), GatewayKey);
                    written.Add($"{prefix}{m} stream={stream} -> {(int)response.StatusCode}\n{response.Headers}\n{response.Content.Headers}\n{await ReadWhatArrivedAsync(response)}");
                }
            }
        }

        // Every GET endpoint without route parameters, admin ones with the admin key: whatever the
        // gateway reports about its providers, usage, budgets, health or metrics is scanned too.
        var sources = gateway.Services.GetRequiredService<IEnumerable<EndpointDataSource>>();
        var paths = sources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods.Contains("GET") == true)
            .Where(e => e.RoutePattern.Parameters.Count == 0)
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/'))
            .Distinct()
            .ToList();
        Assert.Contains("/admin/keys", paths);
        foreach (var path in paths)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", path.StartsWith("/admin", StringComparison.Ordinal) ? AuthKit.AdminKey : GatewayKey);
            using var response = await client.SendAsync(request);
            written.Add($"GET {path} -> {(int)response.StatusCode}\n{response.Headers}\n{await response.Content.ReadAsStringAsync()}");
        }

        // The scan sees what it should: the upstream's echoes reached the client, scrubbed.
        Assert.Contains(written, w => w.StartsWith("oa-param-echo stream=False -> 400", StringComparison.Ordinal) && w.Contains("[redacted]", StringComparison.Ordinal));
        Assert.Contains(written, w => w.StartsWith("az-fragment-echo stream=False -> 400", StringComparison.Ordinal) && w.Contains("[redacted]", StringComparison.Ordinal));
        Assert.Contains(written, w => w.StartsWith("oa-stream-echo stream=True -> 200", StringComparison.Ordinal) && w.Contains("Hel", StringComparison.Ordinal) && w.Contains("\"error\"", StringComparison.Ordinal));
        Assert.True(logs.Lines.Count > 10, "the log capture saw the requests");
        Assert.True(_upstream.Calls >= 24, "every scenario reached the upstream");

        var everything = written.Concat(logs.Lines).ToList();
        foreach (var key in new[] { s_openAiKey, s_azureKey })
        {
            for (var i = 0; i + 10 <= key.Length; i++)
            {
                var piece = key.Substring(i, 10);
                var leak = everything.FirstOrDefault(t => t.Contains(piece, StringComparison.Ordinal));
                Assert.True(leak is null, $"A piece of a provider key ({piece}) was written:\n{leak}");
            }
        }
        Assert.DoesNotContain(everything, t => t.Contains(GatewayKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task No_request_can_choose_the_upstream_url()
    {
        await using var attacker = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("pwned")));
        var attackerUrl = attacker.BaseUrl;
        var attackerHost = new Uri(attackerUrl).Authority;
        var settings = ProviderSettings("openai");
        AddModel(settings, "test-model", "up", "upstream-model");
        ProviderSettings("azure-openai", settings, provider: "az");
        AddModel(settings, "az-model", "az", "deployment-1");
        await using var gateway = new GatewayFactory(settings);
        using var client = gateway.CreateClient();

        var models = new[]
        {
            attackerUrl + "/v1", attackerUrl + "/v1/chat/completions#test-model", "../../" + attackerHost, "test-model/../../evil",
            "test-model?x=" + attackerUrl, "//" + attackerHost + "/v1", "test-model\r\nHost: " + attackerHost, "%2e%2e%2f" + attackerHost, "test-model@" + attackerHost,
        };
        foreach (var model in models)
        {
            using var response = await client.SendChatAsync(AuthKit.ChatBody(model));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("model_not_found", (await AuthKit.ErrorAsync(response)).GetProperty("code").GetString());
        }

        // Headers and body fields that some proxies honour for routing; the gateway must not.
        var tricks = new (string Name, string Value)[]
        {
            ("X-Forwarded-Host", attackerHost), ("X-Forwarded-Proto", "http"), ("X-Original-URL", attackerUrl + "/v1/chat/completions"),
            ("X-Rewrite-URL", attackerUrl + "/v1/chat/completions"), ("Forwarded", "host=" + attackerHost), ("X-Upstream", attackerUrl),
            ("X-Task-Type", attackerUrl), ("X-Forwarded-Prefix", "/../" + attackerHost),
        };
        foreach (var model in new[] { "test-model", "az-model" })
        {
            var body = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["model"] = model,
                ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = "hi" } },
                ["base_url"] = attackerUrl,
                ["api_base"] = attackerUrl,
                ["url"] = attackerUrl,
                ["metadata"] = new Dictionary<string, string> { ["task_type"] = "general" },
            });
            using var request = AuthKit.Chat(body);
            request.Headers.Host = attackerHost;
            foreach (var (name, value) in tricks) request.Headers.TryAddWithoutValidation(name, value);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            using var sneaky = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions?api-version=1999-01-01&deployment=" + Uri.EscapeDataString(attackerUrl) + "&base_url=" + Uri.EscapeDataString(attackerUrl))
            {
                Content = new StringContent(AuthKit.ChatBody(model), Encoding.UTF8, "application/json"),
            };
            using var sneakyResponse = await client.SendAsync(sneaky);
            Assert.Equal(HttpStatusCode.OK, sneakyResponse.StatusCode);
        }

        Assert.Equal(0, attacker.Calls);
        var upstreamHost = new Uri(_upstream.BaseUrl).Authority;
        Assert.Equal(4, _upstream.Calls);
        foreach (var sent in _upstream.Requests)
        {
            Assert.Equal(upstreamHost, sent.Header("host"));
            Assert.True(
                (sent.Path == "/v1/chat/completions" && sent.Query == "") ||
                (sent.Path == "/openai/deployments/deployment-1/chat/completions" && sent.Query == "?api-version=2024-10-21"),
                $"unexpected upstream URL {sent.Path}{sent.Query}");
        }
    }

    /// <summary>Everything the client received, also from a stream that broke and ended in an aborted connection.</summary>
    private static async Task<string> ReadWhatArrivedAsync(HttpResponseMessage response)
    {
        using var buffer = new MemoryStream();
        try
        {
            await (await response.Content.ReadAsStreamAsync()).CopyToAsync(buffer);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The gateway aborts a stream that failed after it started; what arrived before counts.
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
