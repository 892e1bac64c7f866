using System.Net;
using LlmGateway.Admin;
using LlmGateway.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace LlmGateway.Auth;

/// <summary>
/// Says at start-up, once the listening addresses are known, when the auth configuration is
/// probably not what the operator meant: Mode none on a network address (anyone who can reach the
/// port spends the provider keys), or Mode keys with no way for anyone to get a key.
/// </summary>
public sealed class AuthStartupCheck(
    IOptions<GatewayOptions> options,
    IServer server,
    IHostApplicationLifetime lifetime,
    AdminKey adminKey,
    ILogger<AuthStartupCheck> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => Check(server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    internal void Check(ICollection<string> addresses)
    {
        var auth = options.Value.Auth;
        if (string.Equals(auth.Mode, AuthEndpoints.ModeNone, StringComparison.Ordinal))
        {
            var exposed = addresses.Where(a => !IsLoopback(a)).ToList();
            if (exposed.Count > 0)
            {
                logger.LogWarning(
                    "Gateway:Auth:Mode is none and the gateway listens on {Addresses}, which is not loopback: anyone who can reach it can use every configured provider key. Set Gateway:Auth:Mode to keys, or listen on localhost only.",
                    string.Join(", ", exposed));
            }
        }
        else if (auth.Keys.Count == 0 && !adminKey.IsConfigured)
        {
            logger.LogWarning(
                "Gateway:Auth:Mode is keys but no key is configured under Gateway:Auth:Keys and the admin API is off ({AdminKeyEnv} is not set): only keys already in the shared store can call /v1.",
                auth.AdminKeyEnv);
        }
    }

    /// <summary>
    /// True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1, Unix sockets.
    /// Wildcards (<c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>[::]</c>) and named hosts count as exposed.
    /// </summary>
    internal static bool IsLoopback(string address)
    {
        BindingAddress binding;
        try
        {
            binding = BindingAddress.Parse(address);
        }
        catch (FormatException)
        {
            return false;
        }
        if (binding.IsUnixPipe || binding.IsNamedPipe) return true;
        var host = binding.Host;
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);
    }
}
