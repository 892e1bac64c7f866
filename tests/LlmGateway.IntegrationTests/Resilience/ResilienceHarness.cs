using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>The gateway events, as the telemetry capability would receive them, in order.</summary>
public sealed class RecordingEvents : IGatewayEvents
{
    public ConcurrentQueue<string> Log { get; } = new();
    public void Retry(string provider, string deployment) => Log.Enqueue($"retry {provider}");
    public void Fallback(string fromModel, string toModel) => Log.Enqueue($"fallback {fromModel}>{toModel}");
    public void CircuitStateChanged(string provider, CircuitState state) => Log.Enqueue($"circuit {provider} {state}");
    public void CacheLookup(string result) { }
    public void StoreError(string operation) { }
    public int Count(string entry) => Log.Count(e => e == entry);
}

/// <summary>Every finished request's record, as the log, metrics and budgets would get it.</summary>
public sealed class RecordingObserver : IRequestObserver
{
    private readonly ConcurrentQueue<RequestRecord> _records = new();
    private readonly SemaphoreSlim _arrived = new(0);

    public IReadOnlyCollection<RequestRecord> Records => _records;

    public void OnRequestCompleted(RequestRecord record)
    {
        _records.Enqueue(record);
        _arrived.Release();
    }

    /// <summary>The next record; a request's record is written just after its last byte, so the client may finish first.</summary>
    public async Task<RequestRecord> NextAsync()
    {
        Assert.True(await _arrived.WaitAsync(TimeSpan.FromSeconds(15)), "no request record arrived");
        return _records.Last();
    }
}

/// <summary>
/// The real gateway with the test's settings, a manual clock (or the real one), and recorders for
/// events and request records swapped in at the boundaries through ConfigureTestServices.
/// </summary>
public sealed class ResilienceGateway : IAsyncDisposable
{
    public const string AdminKeyVariable = "RESILIENCE_TESTS_ADMIN_KEY";
    public const string AdminKey = "resilience-admin-key-0123456789";
    private readonly WebApplicationFactory<Program> _factory;

    /// <param name="grace">Holds the abort grace of a broken stream (<see cref="BrokenStream"/>); real time without it.</param>
    public ResilienceGateway(Dictionary<string, string?> settings, ManualTimeProvider? time = null, bool kestrel = false, ManualTimeProvider? grace = null)
    {
        Environment.SetEnvironmentVariable(AdminKeyVariable, AdminKey);
        settings.TryAdd("Gateway:Auth:AdminKeyEnv", AdminKeyVariable);
        Time = time;
        _factory = new GatewayFactory(settings).WithWebHostBuilder(b => b.ConfigureTestServices(services =>
        {
            if (time is not null) services.AddSingleton<TimeProvider>(time);
            if (grace is not null) services.Hold(grace);
            services.AddSingleton<IGatewayEvents>(Events);
            services.AddSingleton<IRequestObserver>(Observer);
        }));
        if (kestrel) _factory.UseKestrel(0);
    }

    public ManualTimeProvider? Time { get; }
    public RecordingEvents Events { get; } = new();
    public RecordingObserver Observer { get; } = new();

    public HttpClient CreateClient() => _factory.CreateClient();

    public IServiceProvider Services => _factory.Services;

    public HttpClient CreateAdminClient()
    {
        var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", AdminKey);
        return client;
    }

    /// <summary>The official OpenAI .NET SDK pointed at the gateway, its own retries off.</summary>
    public ChatClient ChatClient(string model)
    {
        var http = _factory.CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(30),
        };
        return new ChatClient(model, new ApiKeyCredential("test-client-key"), options);
    }

    public static string Body(string model, bool stream = false, string content = "hi") =>
        $$"""{"model":"{{model}}","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"{{content}}"}]}""";

    public async Task<HttpResponseMessage> PostAsync(string body, Action<HttpRequestMessage>? configure = null)
    {
        using var client = CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        configure?.Invoke(request);
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    public async Task<JsonElement> ProvidersAsync()
    {
        using var admin = CreateAdminClient();
        var text = await admin.GetStringAsync("/admin/providers");
        return JsonDocument.Parse(text).RootElement;
    }

    public async Task<JsonElement> ProviderAsync(string name)
    {
        foreach (var p in (await ProvidersAsync()).GetProperty("data").EnumerateArray())
        {
            if (p.GetProperty("name").GetString() == name) return p;
        }
        throw new InvalidOperationException($"provider {name} not listed");
    }

    /// <summary>One deployment (the provider serving <paramref name="upstreamModel"/>) as the admin view shows it.</summary>
    public async Task<JsonElement> DeploymentAsync(string provider, string upstreamModel)
    {
        var view = await ProviderAsync(provider);
        foreach (var d in view.GetProperty("deployments").EnumerateArray())
        {
            if (d.GetProperty("model").GetString() == upstreamModel) return d;
        }
        throw new InvalidOperationException($"deployment {provider}/{upstreamModel} not listed: {view}");
    }

    /// <summary>Polls the admin view (real time, as a guard only) until the provider shows <paramref name="status"/>.</summary>
    public async Task<JsonElement> WaitForStatusAsync(string provider, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var view = await ProviderAsync(provider);
            if (view.GetProperty("status").GetString() == status) return view;
            Assert.True(DateTime.UtcNow < deadline, $"{provider} is {view.GetProperty("status").GetString()}, not {status}: {view}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // A test that failed half-way may leave a request waiting on a timeout of the manual clock,
        // and the host would wait for it on shutdown: let every such timeout run out first.
        Time?.Advance(TimeSpan.FromDays(1));
        await _factory.DisposeAsync();
    }
}

/// <summary>Settings for tests with several OpenAI-compatible fake upstreams.</summary>
public static class ResilienceSettings
{
    /// <summary>One provider per upstream (p1, p2, ...) and one model per provider (m1, m2, ...), m1 falling back to the rest in order.</summary>
    public static Dictionary<string, string?> Chain(params FakeUpstream[] upstreams)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Serilog:MinimumLevel:Default"] = "Warning",
            // Immediate retries unless a test is about delays; those use the manual clock.
            ["Gateway:Resilience:BaseDelayMs"] = "0",
        };
        for (var i = 0; i < upstreams.Length; i++)
        {
            var p = $"p{i + 1}";
            var m = $"m{i + 1}";
            settings[$"Gateway:Providers:{p}:Type"] = "openai";
            settings[$"Gateway:Providers:{p}:BaseUrl"] = upstreams[i].BaseUrl + "/v1";
            settings[$"Gateway:Models:{m}:Provider"] = p;
            settings[$"Gateway:Models:{m}:UpstreamModel"] = $"upstream-{m}";
            settings[$"Gateway:Models:{m}:CostPer1kInput"] = "0.001";
            settings[$"Gateway:Models:{m}:CostPer1kOutput"] = "0.002";
            if (i > 0) settings[$"Gateway:Models:m1:Fallbacks:{i - 1}"] = m;
        }
        return settings;
    }

    public static Dictionary<string, string?> With(this Dictionary<string, string?> settings, string key, string? value)
    {
        settings[key] = value;
        return settings;
    }

    public static Dictionary<string, string?> Without(this Dictionary<string, string?> settings, string key)
    {
        settings.Remove(key);
        return settings;
    }
}

public static class PipelineHeaderExtensions
{
    public static string? HeaderValue(this System.ClientModel.Primitives.PipelineResponseHeaders headers, string name) =>
        headers.TryGetValue(name, out var value) ? value : null;
}
