using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Providers;
using LlmGateway.Providers.Anthropic;
using LlmGateway.Providers.Gemini;
using LlmGateway.Providers.Ollama;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Providers;

public sealed class ShippedProvidersTests
{
    [Fact]
    public async Task The_shipped_native_providers_start_without_their_keys_and_say_why_they_are_unusable()
    {
        await using var gateway = new GatewayFactory(new() { ["Serilog:MinimumLevel:Default"] = "Warning" }, useShippedSettings: true);
        var registry = gateway.Services.GetRequiredService<ProviderRegistry>();

        var anthropic = Assert.IsType<AnthropicProvider>(registry.Get("anthropic"));
        var gemini = Assert.IsType<GeminiProvider>(registry.Get("gemini"));
        var ollama = Assert.IsType<OllamaProvider>(registry.Get("ollama"));

        foreach (var (provider, env) in new (IChatProvider, string)[] { (anthropic, "ANTHROPIC_API_KEY"), (gemini, "GEMINI_API_KEY") })
        {
            var keySet = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(env));
            Assert.Equal(keySet, provider.IsUsable);
            if (!keySet) Assert.Contains(env, provider.UnusableReason);
        }
        Assert.True(ollama.IsUsable);
        Assert.True(ollama.Options.IsLocal);

        // The mock still answers: the others being unusable costs start-up nothing.
        var answer = await gateway.ChatClient("mock-echo").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("still here")]);
        Assert.Equal("still here", answer.Value.Content[0].Text);
    }
}
