using LlmGateway.Http;
using LlmGateway.Telemetry;

namespace LlmGateway.Responses;

/// <summary>
/// <c>POST /v1/responses</c>, <c>GET</c> and <c>DELETE /v1/responses/{id}</c>, <c>GET /v1/responses/{id}/input_items</c>:
/// OpenAI's Responses API, to every provider type.
/// </summary>
public static class ResponsesEndpoints
{
    public static IServiceCollection AddResponses(this IServiceCollection services)
    {
        services.AddSingleton<ResponseStore>();
        services.AddSingleton<ResponsesHandler>();
        return services;
    }

    public static IEndpointRouteBuilder MapResponses(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/responses").WithTags("Responses");
        // The handler reads the raw body itself (size limit, pooled buffer), like the chat endpoint; the
        // content log (when on) reads the Responses API's input and output text as well as chat's.
        group.MapPost("", app.Calling<ResponsesHandler>(static (handler, http) => handler.CreateAsync(http)))
            .WithRequestTelemetry(logContent: true)
            .WithName("CreateResponse")
            .WithSummary("OpenAI Responses API, streamed (SSE) or not, translated for every provider")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status404NotFound)
            .Produces(StatusCodes.Status502BadGateway);
        group.MapGet("/{id}", (string id, HttpContext http, ResponsesHandler handler) => handler.GetAsync(http, id))
            .WithName("GetResponse")
            .WithSummary("A stored response of the calling key");
        group.MapGet("/{id}/input_items", (string id, HttpContext http, ResponsesHandler handler) => handler.ListInputItemsAsync(http, id))
            .WithName("ListResponseInputItems")
            .WithSummary("The input items of a stored response of the calling key, a page at a time");
        group.MapDelete("/{id}", (string id, HttpContext http, ResponsesHandler handler) => handler.DeleteAsync(http, id))
            .WithName("DeleteResponse")
            .WithSummary("Delete a stored response of the calling key");
        return app;
    }
}
