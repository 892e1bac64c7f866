using System.Globalization;
using System.Text.Json;
using LlmGateway.Admin;
using LlmGateway.Http;
using LlmGateway.Storage;

namespace LlmGateway.Usage;

public static class UsageEndpoints
{
    /// <summary>The usage ledger: one more observer of finished requests, and its background writer.</summary>
    public static IServiceCollection AddUsageLedger(this IServiceCollection services)
    {
        services.AddSingleton<UsageLedger>();
        services.AddSingleton<IRequestObserver>(sp => sp.GetRequiredService<UsageLedger>());
        services.AddHostedService(sp => sp.GetRequiredService<UsageLedger>());
        return services;
    }

    /// <summary>GET /admin/usage?from=&amp;to=&amp;groupBy=model|provider|key|task_type</summary>
    public static IEndpointRouteBuilder MapUsage(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapGet("/usage", async (HttpRequest request, UsageLedger ledger, TimeProvider time) =>
        {
            var query = request.Query;
            var now = time.GetUtcNow();
            if (!TryParseTime(query["to"], now, out var to)) return BadTime("to");
            if (!TryParseTime(query["from"], to - TimeSpan.FromDays(1), out var from)) return BadTime("from");
            if (from > to) return ApiError.InvalidRequest("'from' must not be after 'to'.", "from").ToResult();
            if (!UsageGroupByNames.TryParse(query["groupBy"].ToString(), out var groupBy))
            {
                return ApiError.InvalidRequest("'groupBy' must be one of model, provider, key, task_type.", "groupBy").ToResult();
            }
            try
            {
                var report = await ledger.QueryAsync(from, to, groupBy).ConfigureAwait(false);
                return Results.Bytes(JsonSerializer.SerializeToUtf8Bytes(report, UsageJsonContext.Default.UsageReport), "application/json");
            }
            catch (StoreUnavailableException)
            {
                return new ApiError(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, "store_unavailable",
                    "The usage ledger can't be read right now: the gateway's store is unreachable. Usage is still being recorded and will be written when it is back.").ToResult();
            }
        })
        .WithName("GetUsage")
        .WithSummary("Requests, tokens, cost and latency (average and median) per model, provider, key or task type over [from, to]; defaults: the last 24 hours by model");
        return app;
    }

    /// <summary>An ISO 8601 time (offset or Z; a time without one is UTC) or Unix seconds; absent means <paramref name="fallback"/>.</summary>
    internal static bool TryParseTime(string? value, DateTimeOffset fallback, out DateTimeOffset time)
    {
        time = fallback;
        if (string.IsNullOrWhiteSpace(value)) return true;
        if (long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seconds))
        {
            if (seconds is < 0 or > 253_402_300_799) return false;
            time = DateTimeOffset.FromUnixTimeSeconds(seconds);
            return true;
        }
        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
    }

    private static IResult BadTime(string param) =>
        ApiError.InvalidRequest($"'{param}' must be an ISO 8601 time (2025-01-31T00:00:00Z) or Unix seconds.", param).ToResult();
}
