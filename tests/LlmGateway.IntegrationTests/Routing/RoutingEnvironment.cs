using System.ClientModel;
using System.ClientModel.Primitives;
using System.Collections.Concurrent;
using LlmGateway.Budgets;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Resilience;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Routing;

/// <summary>
/// Three real OpenAI-compatible upstreams on loopback, each answering with its own name so a test can
/// see which one a request reached: "cheap" and "pricey" in the cloud, "local" marked Local (an
/// Ollama-style server on the machine). The models, task types and the gateway around them are
/// configured from a dictionary, exactly as an operator would write them.
/// </summary>
internal sealed class RoutingEnvironment : IAsyncDisposable
{
    public const string AdminKeyVariable = "LLMGATEWAY_ROUTING_TESTS_ADMIN_KEY";
    public const string AdminKey = "routing-tests-admin-key-5e1f";

    private readonly List<IAsyncDisposable> _owned = [];

    public FakeUpstream Cheap { get; private set; } = null!;
    public FakeUpstream Pricey { get; private set; } = null!;
    public FakeUpstream Local { get; private set; } = null!;
    public Dictionary<string, string?> Settings { get; } = new();

    public static async Task<RoutingEnvironment> StartAsync()
    {
        Environment.SetEnvironmentVariable(AdminKeyVariable, AdminKey);
        var env = new RoutingEnvironment();
        env.Cheap = await FakeUpstream.StartAsync(Answer("cheap"));
        env.Pricey = await FakeUpstream.StartAsync(Answer("pricey"));
        env.Local = await FakeUpstream.StartAsync(Answer("local"));
        env._owned.AddRange([env.Cheap, env.Pricey, env.Local]);

        var s = env.Settings;
        s["Serilog:MinimumLevel:Default"] = "Warning";
        s["Gateway:Auth:AdminKeyEnv"] = AdminKeyVariable;
        s["Gateway:Resilience:MaxRetries"] = "0";
        Provider(s, "cheap", env.Cheap, local: false);
        Provider(s, "pricey", env.Pricey, local: false);
        Provider(s, "local", env.Local, local: true);

        // Worst cases for a short prompt: pricey ~$0.12 (4096 output tokens at $0.03/1k), cheap ~$0.0008, local free.
        Model(s, "pricey-model", "pricey", priority: 10, input: "0.01", output: "0.03", quality: "0.9", capabilities: ["tools", "vision", "json"]);
        Model(s, "cheap-model", "cheap", priority: 20, input: "0.0001", output: "0.0002", quality: "0.5", capabilities: ["tools", "json"]);
        Model(s, "local-model", "local", priority: 30, input: "0", output: "0", quality: "0.3", capabilities: ["json"], contextWindow: 2048, maxOutput: 512);
        s["Gateway:Models:local-model:Fallbacks:0"] = "cheap-model";
        s["Gateway:Models:pricey-model:Fallbacks:0"] = "cheap-model";

        s["Gateway:Routing:DefaultTaskType"] = "general";
        TaskType(s, "general", ["pricey-model", "cheap-model", "local-model"]);
        TaskType(s, "sql", ["cheap-model", "local-model"], patterns: [@"\bselect\b"]);
        TaskType(s, "summarization", ["pricey-model", "cheap-model"], strategy: "cost", patterns: [@"\bsummari[sz]e\b"]);
        TaskType(s, "fastest", ["pricey-model", "cheap-model"], strategy: "latency");
        return env;
    }

    /// <summary>Answers as an OpenAI server would, with content saying who answered.</summary>
    public static Func<HttpContext, ReceivedRequest, Task> Answer(string name, Action? before = null) => async (http, request) =>
    {
        before?.Invoke();
        if (request.Json.TryGetProperty("stream", out var stream) && stream.ValueKind == System.Text.Json.JsonValueKind.True)
        {
            await OpenAiWire.WriteStreamAsync(http, ["answered by ", name]);
        }
        else
        {
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answered by " + name));
        }
    };

    private static void Provider(Dictionary<string, string?> s, string name, FakeUpstream upstream, bool local)
    {
        s[$"Gateway:Providers:{name}:Type"] = "openai";
        s[$"Gateway:Providers:{name}:BaseUrl"] = upstream.BaseUrl + "/v1";
        s[$"Gateway:Providers:{name}:Local"] = local ? "true" : "false";
    }

    private static void Model(Dictionary<string, string?> s, string name, string provider, int priority, string input, string output, string quality,
        string[] capabilities, int contextWindow = 128000, int maxOutput = 4096)
    {
        var at = $"Gateway:Models:{name}";
        s[$"{at}:Provider"] = provider;
        s[$"{at}:UpstreamModel"] = name + "-upstream";
        s[$"{at}:Priority"] = priority.ToString(System.Globalization.CultureInfo.InvariantCulture);
        s[$"{at}:CostPer1kInput"] = input;
        s[$"{at}:CostPer1kOutput"] = output;
        s[$"{at}:Quality"] = quality;
        s[$"{at}:ContextWindow"] = contextWindow.ToString(System.Globalization.CultureInfo.InvariantCulture);
        s[$"{at}:MaxOutputTokens"] = maxOutput.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < capabilities.Length; i++) s[$"{at}:Capabilities:{i}"] = capabilities[i];
    }

    private static void TaskType(Dictionary<string, string?> s, string name, string[] models, string? strategy = null, string[]? patterns = null)
    {
        var at = $"Gateway:Routing:TaskTypes:{name}";
        for (var i = 0; i < models.Length; i++) s[$"{at}:Models:{i}"] = models[i];
        if (strategy is not null) s[$"{at}:Strategy"] = strategy;
        for (var i = 0; i < (patterns?.Length ?? 0); i++) s[$"{at}:Patterns:{i}"] = patterns![i];
    }

    /// <summary>The gateway over these upstreams; <paramref name="services"/> adds boundary fakes (provider health, budgets, a clock).</summary>
    public WebApplicationFactory<Program> Gateway(Action<Dictionary<string, string?>>? configure = null, Action<IServiceCollection>? services = null)
    {
        var settings = new Dictionary<string, string?>(Settings);
        configure?.Invoke(settings);
        var factory = new GatewayFactory(settings);
        _owned.Add(factory);
        return services is null ? factory : factory.WithWebHostBuilder(b => b.ConfigureTestServices(services));
    }

    /// <summary>The official OpenAI SDK against the gateway, sending the given routing headers on every call.</summary>
    public static ChatClient Client(WebApplicationFactory<Program> gateway, string model, params (string Name, string Value)[] headers)
    {
        var http = gateway.CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        };
        if (headers.Length > 0) options.AddPolicy(new HeadersPolicy(headers), PipelinePosition.PerCall);
        return new ChatClient(model, new ApiKeyCredential("routing-test-client"), options);
    }

    public static string? Header(ClientResult result, string name) =>
        result.GetRawResponse().Headers.TryGetValue(name, out var value) ? value : null;

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
    }

    private sealed class HeadersPolicy((string Name, string Value)[] headers) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Add(message);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            Add(message);
            await ProcessNextAsync(message, pipeline, currentIndex);
        }

        private void Add(PipelineMessage message)
        {
            foreach (var (name, value) in headers) message.Request.Headers.Set(name, value);
        }
    }
}

/// <summary>Provider health as the resilience capability reports it: a boundary fake.</summary>
internal sealed class OpenCircuits(params string[] providers) : IProviderHealth
{
    public CircuitState GetCircuitState(string provider, string upstreamModel) => providers.Contains(provider) ? CircuitState.Open : CircuitState.Closed;
}

/// <summary>Budgets as the store capability reports them: a boundary fake.</summary>
internal sealed class SpentBudgets(params string[] providers) : IBudgetGate
{
    public bool IsProviderExhausted(string provider) => providers.Contains(provider);
}

/// <summary>Keeps the request log's structured fields, the way a log pipeline would receive them.</summary>
internal sealed class RequestLogCapture : ILoggerProvider
{
    public ConcurrentQueue<Dictionary<string, object?>> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) =>
        categoryName == typeof(LlmGateway.Usage.RequestLog).FullName ? new Logger(this) : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public void Dispose() { }

    private sealed class Logger(RequestLogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is IReadOnlyList<KeyValuePair<string, object?>> fields)
            {
                owner.Lines.Enqueue(fields.ToDictionary(f => f.Key, f => f.Value));
            }
        }
    }
}
