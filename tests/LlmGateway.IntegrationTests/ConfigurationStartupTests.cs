using System.Net.Http.Json;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace LlmGateway.IntegrationTests;

/// <summary>GATEWAY_CONFIG is process-wide: these tests run alone so no other host reads it meanwhile.</summary>
[CollectionDefinition(nameof(ProcessEnvironment), DisableParallelization = true)]
public sealed class ProcessEnvironment;

[Collection(nameof(ProcessEnvironment))]
public class ConfigurationStartupTests
{
    [Fact]
    public async Task A_bad_configuration_stops_start_up_listing_every_problem()
    {
        await using var gateway = new GatewayFactory(new()
        {
            ["Gateway:Providers:p:Type"] = "nonsense",
            ["Gateway:Models:m:Provider"] = "missing",
            ["Gateway:Routing:Strategy"] = "random",
        });
        var e = Assert.Throws<OptionsValidationException>(() => gateway.CreateClient());
        Assert.Contains("Gateway:Providers:p:Type", e.Message);
        Assert.Contains("Gateway:Models:m:Provider", e.Message);
        Assert.Contains("Gateway:Routing:Strategy", e.Message);
    }

    [Fact]
    public async Task The_file_named_by_GATEWAY_CONFIG_is_layered_over_appsettings_and_under_environment_variables()
    {
        var dir = Directory.CreateTempSubdirectory();
        var path = Path.Combine(dir.FullName, "extra.yaml");
        File.WriteAllText(path, """
            Gateway:
              Models:
                yaml-model:
                  Provider: mock
                  UpstreamModel: from-yaml
              Limits:
                MaxRequestBytes: 12345
            """);
        Environment.SetEnvironmentVariable("GATEWAY_CONFIG", path);
        Environment.SetEnvironmentVariable("Gateway__Limits__MaxRequestBytes", "54321");
        try
        {
            await using var gateway = new GatewayFactory([], useShippedSettings: true);
            using var client = gateway.CreateClient();
            var models = await client.GetFromJsonAsync<JsonElement>("/v1/models");
            var ids = models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
            Assert.Contains("yaml-model", ids);
            Assert.Contains("mock-echo", ids);

            var options = gateway.Services.GetRequiredService<IOptions<LlmGateway.Configuration.GatewayOptions>>().Value;
            Assert.Equal(54321, options.Limits.MaxRequestBytes);
        }
        finally
        {
            Environment.SetEnvironmentVariable("GATEWAY_CONFIG", null);
            Environment.SetEnvironmentVariable("Gateway__Limits__MaxRequestBytes", null);
            dir.Delete(recursive: true);
        }
    }
}
