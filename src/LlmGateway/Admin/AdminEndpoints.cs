using System.Security.Cryptography;
using System.Text;
using LlmGateway.Configuration;
using LlmGateway.Http;
using Microsoft.Extensions.Options;

namespace LlmGateway.Admin;

/// <summary>
/// The <c>/admin</c> group. Every admin endpoint is mapped on it and so needs
/// <c>Authorization: Bearer &lt;admin key&gt;</c>; with no admin key configured the group is off
/// (404), never open. The group is left out of the public OpenAPI document (/swagger): it is served to
/// anyone, and a map of the admin surface helps only an attacker; operators have the README.
/// </summary>
public static class AdminEndpoints
{
    public static IServiceCollection AddAdmin(this IServiceCollection services)
    {
        services.AddSingleton<AdminKey>();
        return services;
    }

    public static RouteGroupBuilder MapAdminGroup(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/admin").WithTags("Admin").ExcludeFromDescription();
        group.AddEndpointFilter(async (context, next) =>
        {
            var key = context.HttpContext.RequestServices.GetRequiredService<AdminKey>();
            if (!key.IsConfigured)
            {
                return ApiError.NotFound("Admin endpoints are off: set the variable named by Gateway:Auth:AdminKeyEnv to turn them on.").ToResult();
            }
            if (!key.Matches(BearerToken(context.HttpContext.Request)))
            {
                return new ApiError(StatusCodes.Status401Unauthorized, ErrorTypes.Authentication, ErrorCodes.InvalidApiKey,
                    "Admin endpoints need 'Authorization: Bearer <admin key>'.").ToResult();
            }
            return await next(context);
        });
        return group;
    }

    internal static string? BearerToken(HttpRequest request)
    {
        var auth = request.Headers.Authorization.ToString();
        return auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? auth["Bearer ".Length..].Trim() : null;
    }
}

/// <summary>The admin key, read once from the variable named by Gateway:Auth:AdminKeyEnv and kept only as its hash.</summary>
public sealed class AdminKey
{
    private readonly byte[]? _hash;

    public AdminKey(IOptions<GatewayOptions> options)
    {
        var env = options.Value.Auth.AdminKeyEnv;
        var key = string.IsNullOrEmpty(env) ? null : Environment.GetEnvironmentVariable(env);
        if (!string.IsNullOrEmpty(key))
        {
            SecretScrubber.Register(key);
            _hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        }
    }

    public bool IsConfigured => _hash is not null;

    /// <summary>Compares hashes in constant time, so the comparison leaks nothing about the key.</summary>
    public bool Matches(string? presented) =>
        _hash is not null && presented is { Length: > 0 } &&
        CryptographicOperations.FixedTimeEquals(_hash, SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
