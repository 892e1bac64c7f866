using System.Net;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Configuration;

/// <summary>The built-in mock answers requests that name it, and is an auto choice only where the operator lists it.</summary>
public sealed class MockByNameTests
{
    private static Dictionary<string, string?> MockOnly() => new()
    {
        ["Gateway:Providers:mock:Type"] = "mock",
        ["Gateway:Models:mock-echo:Provider"] = "mock",
        ["Gateway:Models:mock-echo:UpstreamModel"] = "mock-echo",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    private static async Task<(HttpStatusCode Status, string Body, string? Provider)> ChatAsync(GatewayFactory gateway, string model)
    {
        using var client = gateway.CreateClient();
        using var response = await client.PostAsync("/v1/chat/completions",
            new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"echo this"}]}""", Encoding.UTF8, "application/json"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync(),
            response.Headers.TryGetValues("x-gateway-provider", out var p) ? p.Single() : null);
    }

    [Fact]
    public async Task Auto_never_picks_the_mock_on_its_own_but_the_mock_answers_by_name()
    {
        await using var gateway = new GatewayFactory(MockOnly());

        var (autoStatus, autoBody, _) = await ChatAsync(gateway, "auto");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, autoStatus);
        Assert.Contains("auto has no model to choose from", autoBody, StringComparison.Ordinal);

        var (named, namedBody, provider) = await ChatAsync(gateway, "mock-echo");
        Assert.Equal(HttpStatusCode.OK, named);
        Assert.Equal("mock", provider);
        Assert.Contains("echo this", namedBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_task_type_the_operator_writes_with_the_mock_makes_it_an_auto_choice()
    {
        var settings = MockOnly();
        settings["Gateway:Routing:TaskTypes:general:Models:0"] = "mock-echo";
        await using var gateway = new GatewayFactory(settings);

        var (status, body, provider) = await ChatAsync(gateway, "auto");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("mock", provider);
        Assert.Contains("echo this", body, StringComparison.Ordinal);
    }
}
