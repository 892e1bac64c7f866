namespace LlmGateway.Configuration;

/// <summary>
/// Where the gateway listens, by .NET's own conventions: <c>--urls</c>, <c>ASPNETCORE_URLS</c> (or
/// <c>URLS</c>), <c>ASPNETCORE_HTTP_PORTS</c>/<c>HTTPS_PORTS</c> and <c>Kestrel:Endpoints</c> all work,
/// as they do for any ASP.NET Core app and the aspnet container images. Only when none of them is given
/// does the gateway pick <see cref="DefaultUrl"/>: a default in a settings file would sit above the
/// ASPNETCORE_ variables (which are read first) and silently override them.
/// </summary>
public static class ListenAddress
{
    public const string DefaultUrl = "http://localhost:8080";

    public static void UseDefaultListenAddressWhenNoneGiven(this WebApplicationBuilder builder)
    {
        if (IsGiven(builder.Configuration)) return;
        builder.WebHost.UseUrls(DefaultUrl);
    }

    /// <summary>True when any of .NET's listen settings is present, in any configuration layer.</summary>
    public static bool IsGiven(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.ServerUrlsKey]) ||
        !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.HttpPortsKey]) ||
        !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.HttpsPortsKey]) ||
        configuration.GetSection("Kestrel:Endpoints").GetChildren().Any();
}
