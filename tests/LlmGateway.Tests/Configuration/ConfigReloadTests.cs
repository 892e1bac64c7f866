using LlmGateway.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace LlmGateway.Tests.Configuration;

/// <summary>
/// The gateway reads its options once, so its appsettings files are not watched: the watch would cover the content root
/// and every folder below it (a whole checkout, started as the README says) for a reload that changes nothing.
/// </summary>
public sealed class ConfigReloadTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llmgw-reload-").FullName;

    public ConfigReloadTests() => File.WriteAllText(Path.Combine(_root, "appsettings.json"), "{}");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static bool[] AppSettingsReloads(WebApplicationBuilder builder) =>
        [.. ((IConfigurationBuilder)builder.Configuration).Sources.OfType<JsonConfigurationSource>()
            .Where(s => s.Path?.StartsWith("appsettings", StringComparison.OrdinalIgnoreCase) == true)
            .Select(s => s.ReloadOnChange)];

    [Fact]
    public void The_appsettings_files_are_read_once_not_watched()
    {
        var options = new WebApplicationOptions { ContentRootPath = _root, EnvironmentName = "Production" };
        // What the host does by default, which this test would not notice otherwise: both files watched.
        Assert.Equal([true, true], AppSettingsReloads(WebApplication.CreateBuilder(options)));

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ConfigurationReload.Off([]), ContentRootPath = _root, EnvironmentName = "Production",
        });

        Assert.Equal([false, false], AppSettingsReloads(builder));
    }

    [Fact]
    public void An_operators_own_setting_is_kept()
    {
        string[] args = ["--hostBuilder:reloadConfigOnChange=true"];
        Assert.Same(args, ConfigurationReload.Off(args));
    }
}
