using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>A clock the test moves by hand. Only the wall clock is manual; timers and timestamps stay real.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>Every log line the gateway writes, at every level, with its structured properties and exceptions.</summary>
public sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    /// <summary>Registers the capture and lowers the level to Trace, so nothing escapes the scan.</summary>
    public void AddTo(IServiceCollection services)
    {
        services.AddSingleton<ILoggerProvider>(this);
        services.Configure<LoggerFilterOptions>(o =>
        {
            o.MinLevel = LogLevel.Trace;
            o.Rules.Clear();
        });
    }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull
        {
            owner.Lines.Enqueue($"scope {category}: {state}");
            return null;
        }

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = new StringBuilder().Append(logLevel).Append(' ').Append(category).Append(": ").Append(formatter(state, exception));
            if (state is IEnumerable<KeyValuePair<string, object?>> properties)
            {
                foreach (var (k, v) in properties) line.Append(' ').Append(k).Append('=').Append(v);
            }
            if (exception is not null) line.Append(' ').Append(exception);
            owner.Lines.Enqueue(line.ToString());
        }
    }
}

/// <summary>Settings and calls the auth tests share.</summary>
public static class AuthKit
{
    /// <summary>The admin key, in a variable only these tests use.</summary>
    public const string AdminKeyEnv = "AUTH_TESTS_ADMIN_KEY";
    public const string AdminKey = "auth-tests-admin-key-0123456789";

    public const string ValidBody = """{"model":"test-model","messages":[{"role":"user","content":"hi"}]}""";

    /// <summary>Sets the admin key variable (process-wide, read when a gateway starts).</summary>
    public static void EnsureAdminKey() => Environment.SetEnvironmentVariable(AdminKeyEnv, AdminKey);

    public sealed record Key(string Id, string Secret, string[]? Models = null, int Rpm = 0, int Tpm = 0, bool LocalOnly = false);

    /// <summary>Gateway:Auth:Mode=keys with these configured keys (stored as their SHA-256) and the admin key on.</summary>
    public static Dictionary<string, string?> WithKeys(this Dictionary<string, string?> settings, params Key[] keys)
    {
        EnsureAdminKey();
        settings["Gateway:Auth:Mode"] = "keys";
        settings["Gateway:Auth:AdminKeyEnv"] = AdminKeyEnv;
        for (var i = 0; i < keys.Length; i++)
        {
            var k = keys[i];
            var at = $"Gateway:Auth:Keys:{i}";
            settings[$"{at}:Id"] = k.Id;
            settings[$"{at}:Sha256"] = GatewayKeys.Sha256Hex(k.Secret);
            settings[$"{at}:Rpm"] = k.Rpm.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings[$"{at}:Tpm"] = k.Tpm.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings[$"{at}:LocalOnly"] = k.LocalOnly ? "true" : "false";
            for (var m = 0; m < (k.Models?.Length ?? 0); m++) settings[$"{at}:Models:{m}"] = k.Models![m];
        }
        return settings;
    }

    /// <summary>The built-in mock provider with one model, answering at once.</summary>
    public static Dictionary<string, string?> MockSettings(string model = "mock-echo") => new()
    {
        ["Gateway:Providers:mock:Type"] = "mock",
        ["Gateway:Providers:mock:Mock:ChunkDelayMs"] = "0",
        [$"Gateway:Models:{model}:Provider"] = "mock",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    public static HttpRequestMessage Chat(string body, string? bearer = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return request;
    }

    public static string ChatBody(string model, string content = "hi", int? maxTokens = null, bool stream = false) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model"] = model,
            ["stream"] = stream,
            ["max_tokens"] = maxTokens,
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = content } },
        });

    public static async Task<HttpResponseMessage> SendChatAsync(this HttpClient client, string body, string? bearer = null)
    {
        using var request = Chat(body, bearer);
        // Headers first: a stream that breaks after it started ends in an aborted connection, and the
        // caller decides how to read what arrived.
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    /// <summary>Reads an OpenAI-shaped error body, asserting its shape.</summary>
    public static async Task<JsonElement> ErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return error;
    }

    public static HttpClient AdminClient(this GatewayFactory gateway, string adminKey = AdminKey)
    {
        var client = gateway.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        return client;
    }

    public static string? Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var v) ? string.Join(",", v) : null;
}
