using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Options;

namespace LlmGateway.Configuration;

public static class ConfigurationExtensions
{
    public const string ExtraFileVariable = "GATEWAY_CONFIG";

    /// <summary>
    /// Adds the file named by GATEWAY_CONFIG after appsettings.{Environment}.json and before
    /// environment variables and the command line, so the contract's layering holds:
    /// env vars and args still override the extra file.
    /// </summary>
    public static void AddGatewayConfigFile(this ConfigurationManager configuration)
    {
        UseAppFolderSettingsWhenMissing(configuration);

        var path = Environment.GetEnvironmentVariable(ExtraFileVariable);
        if (string.IsNullOrWhiteSpace(path))
        {
            return;
        }
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new OptionsValidationException(GatewayOptions.SectionName, typeof(GatewayOptions),
                [$"{ExtraFileVariable} names '{full}', which does not exist."]);
        }

        FileConfigurationSource source = full.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || full.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            ? new YamlConfigurationSource()
            : new JsonConfigurationSource();
        source.Path = Path.GetFileName(full);
        source.FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(full)!);
        source.Optional = false;
        source.ReloadOnChange = false;

        var sources = (IList<IConfigurationSource>)configuration.Sources;
        var index = sources.Count;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is EnvironmentVariablesConfigurationSource { Prefix: null or "" })
            {
                index = i;
                break;
            }
        }
        sources.Insert(index, source);
    }

    /// <summary>
    /// appsettings.json lives at the repo root and is copied next to the app. When the content root
    /// (the working directory) has none, as under <c>dotnet run --project</c> or when the binary is
    /// started from elsewhere, read the copy next to the app instead of starting with no defaults.
    /// </summary>
    private static void UseAppFolderSettingsWhenMissing(ConfigurationManager configuration)
    {
        var sources = (IList<IConfigurationSource>)configuration.Sources;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is JsonConfigurationSource { Path: { } path } json &&
                path.StartsWith("appsettings", StringComparison.OrdinalIgnoreCase) &&
                json.FileProvider?.GetFileInfo(path).Exists != true &&
                File.Exists(Path.Combine(AppContext.BaseDirectory, path)))
            {
                sources[i] = new JsonConfigurationSource
                {
                    Path = path,
                    Optional = json.Optional,
                    ReloadOnChange = false,
                    FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(AppContext.BaseDirectory),
                };
            }
        }
    }

    /// <summary>Binds and validates the Gateway section; a bad configuration stops start-up with every problem listed.</summary>
    public static IServiceCollection AddGatewayOptions(this IServiceCollection services)
    {
        // Bound from the layered view, not BindConfiguration: .NET merges lists item by item and cannot
        // remove an entry, and the operator must be able to do both (GatewayConfigurationLayers).
        services.AddOptions<GatewayOptions>()
            .Configure<IConfiguration>(static (options, configuration) => GatewayConfigurationLayers.Effective(configuration).Bind(options))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        return services;
    }
}
