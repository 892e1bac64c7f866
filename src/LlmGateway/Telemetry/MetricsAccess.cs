using System.Security.Cryptography;
using System.Text;
using LlmGateway.Configuration;
using LlmGateway.Http;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

/// <summary>What a scrape of /metrics may see.</summary>
public enum MetricsAccessLevel
{
    /// <summary>No key presented: everything but the series that name a gateway key.</summary>
    Public,

    /// <summary>The metrics key or the admin key: per-key series too.</summary>
    Full,

    /// <summary>A key was presented and it is neither: 401, so a misconfigured scrape is noticed rather than quietly given less.</summary>
    Refused,
}

/// <summary>
/// Decides per scrape whether per-key series (key ids, their spend and limits) are shown. /metrics stays
/// open for Prometheus and the health of the gateway, but which teams exist and what they spent is not
/// for anyone who can reach the port: that needs <c>Authorization: Bearer</c> with the key in
/// <see cref="AuthOptions.MetricsKeyEnv"/> (or the admin key).
/// </summary>
public sealed class MetricsAccess
{
    private readonly byte[][] _hashes;

    public MetricsAccess(IOptions<GatewayOptions> options)
    {
        var auth = options.Value.Auth;
        var hashes = new List<byte[]>(2);
        foreach (var variable in (string[])[auth.MetricsKeyEnv, auth.AdminKeyEnv])
        {
            var key = string.IsNullOrEmpty(variable) ? null : Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(key)) continue;
            SecretScrubber.Register(key);
            hashes.Add(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        }
        _hashes = [.. hashes];
    }

    /// <summary>Whether any scrape can be <see cref="MetricsAccessLevel.Full"/>: a metrics or admin key is set.</summary>
    public bool AcceptsKeys => _hashes.Length > 0;

    public MetricsAccessLevel Decide(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.Length == 0) return MetricsAccessLevel.Public;
        const string Bearer = "Bearer ";
        if (!header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase)) return MetricsAccessLevel.Refused;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim()));
        foreach (var hash in _hashes)
        {
            // Constant time, so the comparison leaks nothing about the key.
            if (CryptographicOperations.FixedTimeEquals(hash, presented)) return MetricsAccessLevel.Full;
        }
        return MetricsAccessLevel.Refused;
    }
}
