namespace LlmGateway.Configuration;

public static class ConfigurationReload
{
    private const string ReloadSetting = "hostBuilder:reloadConfigOnChange";

    /// <summary>
    /// The host's arguments with the reload of appsettings.json and appsettings.{Environment}.json turned off, unless the
    /// operator set it (as an argument or as DOTNET_hostBuilder__reloadConfigOnChange). The gateway reads its options once,
    /// validated at start, so a reload changes nothing; the watch behind it covers the content root and every folder below
    /// it. Started from a checkout, as the README does, every file written anywhere in the repository woke the gateway's
    /// file-watch thread (2.45 % of its samples in a stream profile whose perf output went there), and every process
    /// holds one of the user's inotify instances (128 by default) for it.
    /// </summary>
    public static string[] Off(string[] args)
    {
        if (Environment.GetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange") is not null) return args;
        foreach (var arg in args)
        {
            if (arg.Contains(ReloadSetting, StringComparison.OrdinalIgnoreCase)) return args;
        }
        return [.. args, $"--{ReloadSetting}=false"];
    }
}
