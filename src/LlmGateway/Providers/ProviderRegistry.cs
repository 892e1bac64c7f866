using LlmGateway.Configuration;
using LlmGateway.Providers.Anthropic;
using LlmGateway.Providers.Gemini;
using LlmGateway.Providers.Mock;
using LlmGateway.Providers.Ollama;
using LlmGateway.Providers.OpenAi;
using Microsoft.Extensions.Options;

namespace LlmGateway.Providers;

/// <summary>Every configured provider, built once at start-up from its type's factory.</summary>
public sealed class ProviderRegistry : IDisposable
{
    private readonly Dictionary<string, IChatProvider> _providers = new(StringComparer.OrdinalIgnoreCase);

    public ProviderRegistry(IOptions<GatewayOptions> options, IEnumerable<IChatProviderFactory> factories)
    {
        var byType = factories.ToDictionary(f => f.Type, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, p) in options.Value.Providers)
        {
            if (!byType.TryGetValue(p.Type, out var factory))
            {
                throw new InvalidOperationException($"Provider '{name}' has type '{p.Type}', which this build does not implement.");
            }
            _providers[name] = factory.Create(name, p);
        }
    }

    public IReadOnlyCollection<IChatProvider> All => _providers.Values;

    public IChatProvider? Find(string name) => _providers.GetValueOrDefault(name);

    public IChatProvider Get(string name) => _providers[name];

    public void Dispose()
    {
        foreach (var p in _providers.Values) (p as IDisposable)?.Dispose();
    }
}

public static class ProvidersServiceCollectionExtensions
{
    /// <summary>Registers one factory per provider type and the registry that builds the configured providers.</summary>
    public static IServiceCollection AddProviders(this IServiceCollection services)
    {
        services.AddSingleton<IChatProviderFactory, OpenAiProviderFactory>();
        services.AddSingleton<IChatProviderFactory, AzureOpenAiProviderFactory>();
        services.AddSingleton<IChatProviderFactory, AnthropicProviderFactory>();
        services.AddSingleton<IChatProviderFactory, GeminiProviderFactory>();
        services.AddSingleton<IChatProviderFactory, OllamaProviderFactory>();
        services.AddSingleton<IChatProviderFactory, MockProviderFactory>();
        services.AddSingleton<ProviderRegistry>();
        return services;
    }
}
