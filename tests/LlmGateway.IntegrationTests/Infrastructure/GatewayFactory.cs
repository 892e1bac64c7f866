using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using OpenAI;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>
/// The real gateway (Program) configured from a dictionary only, so each test states exactly the
/// providers and models it uses. <see cref="UseShippedSettings"/> keeps the repo's appsettings.json instead.
/// </summary>
public sealed class GatewayFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public GatewayFactory(Dictionary<string, string?> settings, bool useShippedSettings = false)
    {
        _settings = settings;
        UseShippedSettings = useShippedSettings;
    }

    public bool UseShippedSettings { get; }

    /// <summary>Replaces services after the app registered its own (a manual clock, a shared store, a log capture).</summary>
    public Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? TestServices { get; init; }

    /// <summary>The host environment (Testing unless a test needs Production's behaviour).</summary>
    public string EnvironmentName { get; init; } = "Testing";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(EnvironmentName);
        if (TestServices is not null) Microsoft.AspNetCore.TestHost.WebHostBuilderExtensions.ConfigureTestServices(builder, TestServices);
        builder.ConfigureAppConfiguration((_, config) =>
        {
            if (!UseShippedSettings)
            {
                config.Sources.Clear();
            }
            config.AddInMemoryCollection(_settings);
        });
    }

    /// <summary>The official OpenAI .NET SDK, pointed at this gateway, with its own retries off so tests see every answer.</summary>
    /// <summary>
    /// Starts the gateway on a real Kestrel socket on 127.0.0.1 (for clients outside the process: the npm SDKs,
    /// raw sockets) and returns its base address.
    /// </summary>
    public Uri StartOnLoopback()
    {
        UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        StartServer();
        using var client = CreateClient();
        var address = client.BaseAddress!;
        Xunit.Assert.Equal("127.0.0.1", address.Host);
        return address;
    }

    public ChatClient ChatClient(string model, string apiKey = "test-client-key")
    {
        var http = CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        };
        return new ChatClient(model, new ApiKeyCredential(apiKey), options);
    }

    /// <summary>The SDK's embeddings client, pointed at this gateway like <see cref="ChatClient"/>.</summary>
    public OpenAI.Embeddings.EmbeddingClient EmbeddingClient(string model, string apiKey = "test-client-key")
    {
        var http = CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        };
        return new OpenAI.Embeddings.EmbeddingClient(model, new ApiKeyCredential(apiKey), options);
    }

    /// <summary>Settings for one OpenAI-compatible provider named <paramref name="provider"/> and one model on it.</summary>
    public static Dictionary<string, string?> OpenAiSettings(string baseUrl, string provider = "up", string model = "test-model", string upstreamModel = "upstream-model", string? keyEnv = null) => new()
    {
        [$"Gateway:Providers:{provider}:Type"] = "openai",
        [$"Gateway:Providers:{provider}:BaseUrl"] = baseUrl + "/v1",
        [$"Gateway:Providers:{provider}:ApiKeyEnv"] = keyEnv,
        [$"Gateway:Models:{model}:Provider"] = provider,
        [$"Gateway:Models:{model}:UpstreamModel"] = upstreamModel,
        [$"Gateway:Models:{model}:CostPer1kInput"] = "0.001",
        [$"Gateway:Models:{model}:CostPer1kOutput"] = "0.002",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };
}

public static class PipelineHeadersExtensions
{
    public static string? GetFirstOrDefault(this System.ClientModel.Primitives.PipelineResponseHeaders headers, string name) =>
        headers.TryGetValue(name, out var value) ? value : null;
}
