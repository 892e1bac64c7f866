using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.Http;
using Microsoft.Extensions.Options;

namespace LlmGateway.Models;

/// <summary>
/// GET /v1/models in OpenAI's list shape: every configured model the caller's gateway key may use
/// (all of them without keys), plus <c>auto</c>. A model the key may not use is as unknown to it as
/// one that isn't configured.
/// </summary>
public static class ModelsEndpoints
{
    public static IEndpointRouteBuilder MapModels(this IEndpointRouteBuilder app)
    {
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        app.MapGet("/v1/models", (HttpContext http, IOptions<GatewayOptions> options) =>
        {
            var caller = CallerIdentity.Of(http);
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("object"u8, "list"u8);
                w.WriteStartArray("data"u8);
                WriteModel(w, GatewayDefaults.AutoModel, "llm-gateway", created);
                foreach (var (name, model) in options.Value.Models)
                {
                    if (caller is null || caller.MayRequest(name)) WriteModel(w, name, model.Provider, created);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        }).WithTags("Models").WithName("ListModels");

        app.MapGet("/v1/models/{**id}", (string id, HttpContext http, IOptions<GatewayOptions> options) =>
        {
            string owner;
            if (string.Equals(id, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase)) owner = "llm-gateway";
            else if (options.Value.Models.TryGetValue(id, out var model) && CallerIdentity.Of(http)?.MayRequest(id) != false) owner = model.Provider;
            else return ApiError.ModelNotFound(id).ToResult();

            var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
            using (var w = new Utf8JsonWriter(buffer))
            {
                WriteModel(w, id, owner, created);
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        }).WithTags("Models").WithName("RetrieveModel");

        return app;
    }

    private static void WriteModel(Utf8JsonWriter w, string id, string owner, long created)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, id);
        w.WriteString("object"u8, "model"u8);
        w.WriteNumber("created"u8, created);
        w.WriteString("owned_by"u8, owner);
        w.WriteEndObject();
    }
}
