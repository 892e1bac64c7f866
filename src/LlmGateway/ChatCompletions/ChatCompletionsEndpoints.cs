using LlmGateway.Http;
using LlmGateway.Telemetry;

namespace LlmGateway.ChatCompletions;

public static class ChatCompletionsEndpoints
{
    public const string Path = "/v1/chat/completions";
    public const string EndpointName = "CreateChatCompletion";

    public static IServiceCollection AddChatCompletions(this IServiceCollection services)
    {
        // The pipeline itself comes with AddGatewayPipeline; this is the OpenAI ingress in front of it.
        services.AddSingleton<ChatCompletionsHandler>();
        return services;
    }

    public static IEndpointRouteBuilder MapChatCompletions(this IEndpointRouteBuilder app)
    {
        // The handler reads the raw body itself (size limit, pooled buffer, no DTO round trip), so the
        // endpoint takes the HttpContext. No Accepts(): that would turn away curl's default content type.
        // The handler, a singleton, without a DI scope per request (SingletonHandlers).
        app.MapPost(Path, app.Calling<ChatCompletionsHandler>(static (handler, http) => handler.HandleAsync(http)))
            .WithRequestTelemetry(logContent: true)
            .WithName(EndpointName)
            .WithTags("Chat")
            .WithSummary("OpenAI Chat Completions, streamed (SSE) or not")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status404NotFound)
            .Produces(StatusCodes.Status502BadGateway);
        return app;
    }
}
