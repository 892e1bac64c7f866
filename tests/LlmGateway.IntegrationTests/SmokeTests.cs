using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests;

public class SmokeTests
{
    [Fact]
    public async Task Shipped_settings_answer_with_the_mock_model()
    {
        await using var gateway = new GatewayFactory(new() { ["Serilog:MinimumLevel:Default"] = "Warning" }, useShippedSettings: true);
        var result = await gateway.ChatClient("mock-echo").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("ping from the smoke test")]);
        Assert.Equal("ping from the smoke test", result.Value.Content[0].Text);
    }
}
