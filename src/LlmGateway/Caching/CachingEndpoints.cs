using System.Text.Json;
using LlmGateway.Admin;
using LlmGateway.Http;
using LlmGateway.Storage;

namespace LlmGateway.Caching;

public static class CachingEndpoints
{
    public static IServiceCollection AddResponseCache(this IServiceCollection services)
    {
        services.AddSingleton<ResponseCache>();
        return services;
    }

    /// <summary>DELETE /admin/cache: empties the response cache (for every instance sharing the store).</summary>
    public static IEndpointRouteBuilder MapCaching(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapDelete("/cache", async (ResponseCache cache) =>
        {
            long removed;
            try
            {
                removed = await cache.ClearAsync().ConfigureAwait(false);
            }
            catch (StoreUnavailableException)
            {
                return new ApiError(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, "store_unavailable",
                    "The cache can't be emptied right now: the gateway's store is unreachable.").ToResult();
            }
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(64);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("object"u8, "cache"u8);
                w.WriteBoolean("deleted"u8, true);
                w.WriteNumber("entries"u8, removed);
                w.WriteEndObject();
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        })
        .WithName("ClearCache")
        .WithSummary("Empty the response cache");
        return app;
    }
}
