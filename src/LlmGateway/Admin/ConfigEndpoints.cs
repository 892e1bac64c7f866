using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace LlmGateway.Admin;

/// <summary>
/// <c>GET /admin/config</c>: the configuration the gateway runs with, after every layer (the bound
/// <see cref="GatewayOptions"/>, so exactly what the code reads), with secrets redacted: key hashes,
/// passwords in connection strings, and any value equal to a registered secret. Next to it, what an
/// operator otherwise reconstructs by hand: the layers that said anything under Gateway, the listen
/// addresses, which providers have their key, and per task type the models auto can reach.
/// </summary>
public static partial class ConfigEndpoints
{
    private static readonly JsonSerializerOptions s_options = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IEndpointRouteBuilder MapGatewayConfig(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapGet("/config", (IOptions<GatewayOptions> options, IConfiguration configuration, ProviderRegistry providers, IModelRouter router, IServiceProvider services) =>
            Results.Text(Build(options.Value, configuration, providers, router, services).ToJsonString(s_options), "application/json"))
            .WithName("GetConfig")
            .WithSummary("The effective configuration after every layer, secrets redacted")
            .Produces(StatusCodes.Status200OK, contentType: "application/json");
        return app;
    }

    internal static JsonObject Build(GatewayOptions options, IConfiguration configuration, ProviderRegistry providers, IModelRouter router, IServiceProvider services)
    {
        // Reflection serialization of the options classes: start-up shaped, not a hot path.
        var gateway = JsonSerializer.SerializeToNode(options, s_options)!.AsObject();
        if (gateway["Auth"]?["Keys"] is JsonArray keys)
        {
            foreach (var key in keys.OfType<JsonObject>())
            {
                if (key.ContainsKey("Sha256")) key["Sha256"] = SecretScrubber.Redacted;
            }
        }
        if (gateway["Providers"] is JsonObject providerNodes)
        {
            foreach (var (name, node) in providerNodes)
            {
                if (node is JsonObject p && providers.Find(name) is { } provider)
                {
                    p["Usable"] = provider.IsUsable;
                    if (provider.UnusableReason is { } reason) p["UnusableReason"] = reason;
                }
            }
        }
        ScrubStrings(gateway);

        var connectionStrings = new JsonObject();
        foreach (var cs in configuration.GetSection("ConnectionStrings").GetChildren())
        {
            connectionStrings[cs.Key] = cs.Value is null ? null : RedactConnectionString(cs.Value);
        }

        var taskTypes = new JsonObject();
        foreach (var route in router.TaskTypes)
        {
            taskTypes[route.TaskType] = new JsonObject
            {
                ["Strategy"] = route.Strategy,
                ["Default"] = route.IsDefault,
                ["Models"] = new JsonArray([.. route.Models.Select(static c => (JsonNode)c.ModelName)]),
                ["Reachable"] = new JsonArray([.. route.Models.Where(static c => c.Provider.IsUsable).Select(static c => (JsonNode)c.ModelName)]),
            };
        }

        var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        return new JsonObject
        {
            ["Layers"] = new JsonArray([.. GatewayConfigurationLayers.Describe(configuration).Select(static l => (JsonNode)l)]),
            ["Listen"] = new JsonArray([.. addresses.Select(static a => (JsonNode)a)]),
            ["ConnectionStrings"] = connectionStrings,
            ["Gateway"] = gateway,
            ["AutoRoutes"] = taskTypes,
        };
    }

    /// <summary>Passwords in StackExchange.Redis (<c>password=...</c>) and URL (<c>redis://user:pass@host</c>) forms.</summary>
    internal static string RedactConnectionString(string value)
    {
        var redacted = PasswordSetting().Replace(value, m => m.Groups[1].Value + "=" + SecretScrubber.Redacted);
        return UrlCredentials().Replace(redacted, m => m.Groups[1].Value + SecretScrubber.Redacted + "@");
    }

    [GeneratedRegex(@"\b(password|pwd)\s*=\s*[^,;]*", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PasswordSetting();

    [GeneratedRegex(@"(://[^:/@\s]*:)[^@/\s]*@", RegexOptions.CultureInvariant)]
    private static partial Regex UrlCredentials();

    /// <summary>Any string in the tree that holds a registered secret (a key pasted where a name belongs) is scrubbed.</summary>
    private static void ScrubStrings(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList())
                {
                    if (v is JsonValue value && value.TryGetValue<string>(out var s)) o[k] = SecretScrubber.Scrub(s);
                    else ScrubStrings(v);
                }
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    if (a[i] is JsonValue value && value.TryGetValue<string>(out var s)) a[i] = SecretScrubber.Scrub(s);
                    else ScrubStrings(a[i]);
                }
                break;
        }
    }
}
