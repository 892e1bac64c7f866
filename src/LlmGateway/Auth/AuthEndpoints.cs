using System.Text.Json;
using System.Text.RegularExpressions;
using LlmGateway.Admin;
using LlmGateway.Configuration;
using LlmGateway.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmGateway.Auth;

/// <summary>
/// Gateway keys: who may call <c>/v1</c>, with which models and limits, and the admin API that
/// hands out and revokes virtual keys (<c>/admin/keys</c>).
/// </summary>
public static partial class AuthEndpoints
{
    public const string ModeNone = "none";
    public const string ModeKeys = "keys";

    /// <summary>POST /admin/keys bodies are small; this keeps the admin API from reading megabytes.</summary>
    private const int MaxAdminBodyBytes = 64 * 1024;
    private const int MaxModelPatterns = 256;
    private const int MaxPatternLength = 200;

    /// <summary>Key creation and revocation are logged under this category (ids only, never a secret).</summary>
    private const string AdminLogCategory = "LlmGateway.Auth.KeyAdmin";

    public static IServiceCollection AddGatewayAuth(this IServiceCollection services)
    {
        // Keys and limits live in the gateway's store: in memory by default, shared by every instance on Redis.
        services.TryAddSingleton<IKeyStore, StoreKeyStore>();
        services.TryAddSingleton<IRateLimiter, StoreRateLimiter>();
        services.AddSingleton<KeyAuthenticator>();
        services.AddSingleton<KeyRateLimits>();
        services.AddHostedService<AuthStartupCheck>();
        return services;
    }

    /// <summary>Puts the key check in front of every /v1 endpoint when Gateway:Auth:Mode is keys; adds nothing otherwise.</summary>
    public static WebApplication UseGatewayAuth(this WebApplication app)
    {
        if (ChecksKeys(app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value)) app.UseMiddleware<GatewayAuthMiddleware>();
        return app;
    }

    /// <summary>Gateway:Auth:Mode is keys: the key check runs, and only then does a request carry a <see cref="CallerIdentity"/>.</summary>
    public static bool ChecksKeys(GatewayOptions options) => string.Equals(options.Auth.Mode, ModeKeys, StringComparison.Ordinal);

    public static IEndpointRouteBuilder MapGatewayAuth(this IEndpointRouteBuilder app)
    {
        var admin = app.MapAdminGroup();
        admin.MapPost("/keys", CreateAsync).WithName("CreateKey").WithSummary("Creates a virtual key; the secret is in this answer only");
        admin.MapGet("/keys", ListAsync).WithName("ListKeys").WithSummary("Every key's metadata (never a secret or a hash)");
        admin.MapDelete("/keys/{id}", RevokeAsync).WithName("RevokeKey").WithSummary("Revokes a virtual key on every instance within seconds");
        return app;
    }

    private static async Task<IResult> CreateAsync(HttpContext http, IKeyStore store, KeyAuthenticator authenticator, TimeProvider time, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(AdminLogCategory);
        var (request, error) = await ReadCreateRequestAsync(http).ConfigureAwait(false);
        if (error is not null) return error.ToResult();
        error = Validate(request!);
        if (error is not null) return error.ToResult();

        var id = request!.Id ?? "key-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        if (authenticator.IsConfiguredId(id)) return Conflict(id).ToResult();

        var secret = GatewayKeys.NewSecret();
        var stored = new StoredKey(id, GatewayKeys.Sha256Hex(secret), request.Models ?? ["*"], request.Rpm ?? 0, request.Tpm ?? 0,
            request.DailyUsd ?? 0, request.MonthlyUsd ?? 0, request.LocalOnly ?? false, time.GetUtcNow());
        try
        {
            if (!await store.CreateAsync(stored, http.RequestAborted).ConfigureAwait(false)) return Conflict(id).ToResult();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Key store failed to create key {KeyId} ({Error})", id, e.GetType().Name);
            return AuthErrors.KeyLookupUnavailable.ToResult();
        }
        authenticator.ForgetHash(stored.Sha256);
        logger.LogInformation("Created key {KeyId}", id);

        http.Response.Headers.CacheControl = "no-store";
        var created = new CreatedKey
        {
            Id = stored.Id,
            Source = "admin",
            Key = secret,
            Models = stored.Models,
            Rpm = stored.Rpm,
            Tpm = stored.Tpm,
            DailyUsd = stored.DailyUsd,
            MonthlyUsd = stored.MonthlyUsd,
            LocalOnly = stored.LocalOnly,
            CreatedAt = stored.CreatedAt,
        };
        return Results.Json(created, AuthJsonContext.Default.CreatedKey, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> ListAsync(HttpContext http, IKeyStore store, KeyAuthenticator authenticator, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(AdminLogCategory);
        var views = new List<KeyView>();
        foreach (var c in authenticator.Configured)
        {
            views.Add(new KeyView
            {
                Id = c.KeyId, Source = "config", Models = c.Models.Patterns, Rpm = c.Rpm, Tpm = c.Tpm,
                DailyUsd = c.DailyUsd, MonthlyUsd = c.MonthlyUsd, LocalOnly = c.LocalOnly,
            });
        }
        IReadOnlyList<StoredKey> stored;
        try
        {
            stored = await store.ListAsync(http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Key store failed to list keys ({Error})", e.GetType().Name);
            return AuthErrors.KeyLookupUnavailable.ToResult();
        }
        foreach (var k in stored)
        {
            views.Add(new KeyView
            {
                Id = k.Id, Source = "admin", Models = k.Models, Rpm = k.Rpm, Tpm = k.Tpm,
                DailyUsd = k.DailyUsd, MonthlyUsd = k.MonthlyUsd, LocalOnly = k.LocalOnly, CreatedAt = k.CreatedAt,
            });
        }
        return Results.Json(new KeyList { Data = views }, AuthJsonContext.Default.KeyList);
    }

    private static async Task<IResult> RevokeAsync(string id, HttpContext http, IKeyStore store, KeyAuthenticator authenticator, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(AdminLogCategory);
        if (authenticator.IsConfiguredId(id))
        {
            return new ApiError(StatusCodes.Status409Conflict, ErrorTypes.InvalidRequest, AuthErrors.KeyExists,
                $"The key '{id}' is defined in Gateway:Auth:Keys; remove it from the configuration instead.", "id").ToResult();
        }
        bool revoked;
        try
        {
            revoked = await store.RevokeAsync(id, http.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Key store failed to revoke a key ({Error})", e.GetType().Name);
            return AuthErrors.KeyLookupUnavailable.ToResult();
        }
        if (!revoked)
        {
            return new ApiError(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, AuthErrors.KeyNotFound,
                $"No virtual key has the id '{Truncate(id)}'.", "id").ToResult();
        }
        // This instance stops accepting it now; the others when their cached lookup expires.
        authenticator.Forget(id);
        logger.LogInformation("Revoked key {KeyId}", id);
        return Results.Json(new DeletedKey { Id = id }, AuthJsonContext.Default.DeletedKey);
    }

    private static async Task<(CreateKeyRequest?, ApiError?)> ReadCreateRequestAsync(HttpContext http)
    {
        if (http.Request.ContentLength > MaxAdminBodyBytes) return (null, ApiError.RequestTooLarge(MaxAdminBodyBytes));
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxAdminBodyBytes;

        using var body = new MemoryStream();
        try
        {
            await http.Request.Body.CopyToAsync(body, http.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, ApiError.RequestTooLarge(MaxAdminBodyBytes));
        }
        if (body.Length > MaxAdminBodyBytes) return (null, ApiError.RequestTooLarge(MaxAdminBodyBytes));
        if (body.Length == 0) return (new CreateKeyRequest(), null);
        try
        {
            var request = JsonSerializer.Deserialize(body.GetBuffer().AsSpan(0, (int)body.Length), AuthJsonContext.Default.CreateKeyRequest);
            return request is null
                ? (null, ApiError.InvalidRequest("The body must be a JSON object.", code: ErrorCodes.InvalidJson))
                : (request, null);
        }
        catch (JsonException e)
        {
            // The path says which field; the message never echoes values.
            var at = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? null : e.Path.TrimStart('$', '.');
            return (null, ApiError.InvalidRequest($"The body is not a valid key request{(at is null ? "" : $" (at '{at}')")}: expected {{\"id\", \"models\", \"rpm\", \"tpm\", \"dailyUsd\", \"monthlyUsd\", \"localOnly\"}} with the right types.", at, ErrorCodes.InvalidJson));
        }
    }

    private static ApiError? Validate(CreateKeyRequest r)
    {
        if (r.Id is not null && !KeyId().IsMatch(r.Id))
        {
            return ApiError.InvalidRequest("'id' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.", "id");
        }
        if (r.Models is not null)
        {
            if (r.Models.Count == 0) return ApiError.InvalidRequest("'models' must list at least one model or pattern (\"*\" is every model).", "models");
            if (r.Models.Count > MaxModelPatterns) return ApiError.InvalidRequest($"'models' may hold at most {MaxModelPatterns} patterns.", "models");
            foreach (var m in r.Models)
            {
                if (string.IsNullOrWhiteSpace(m) || m.Length > MaxPatternLength || m.Any(char.IsControl))
                {
                    return ApiError.InvalidRequest($"Each entry of 'models' must be a model name or pattern of 1 to {MaxPatternLength} printable characters.", "models");
                }
            }
        }
        if (r.Rpm < 0) return ApiError.InvalidRequest("'rpm' must be 0 (unlimited) or positive.", "rpm");
        if (r.Tpm < 0) return ApiError.InvalidRequest("'tpm' must be 0 (unlimited) or positive.", "tpm");
        if (r.DailyUsd < 0) return ApiError.InvalidRequest("'dailyUsd' must be 0 (no budget) or positive.", "dailyUsd");
        if (r.MonthlyUsd < 0) return ApiError.InvalidRequest("'monthlyUsd' must be 0 (no budget) or positive.", "monthlyUsd");
        return null;
    }

    private static ApiError Conflict(string id) =>
        new(StatusCodes.Status409Conflict, ErrorTypes.InvalidRequest, AuthErrors.KeyExists, $"A key with the id '{id}' already exists.", "id");

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyId();
}
