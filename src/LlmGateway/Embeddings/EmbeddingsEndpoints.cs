using LlmGateway.ChatCompletions;
using LlmGateway.Http;
using LlmGateway.Telemetry;

namespace LlmGateway.Embeddings;

public static class EmbeddingsEndpoints
{
    /// <summary>
    /// POST /v1/embeddings runs the same pipeline as chat (routing, keys, cache, budgets, resilience,
    /// usage); only the body it reads and the upstream call differ, so it needs nothing of its own to register.
    /// </summary>
    public static IEndpointRouteBuilder MapEmbeddings(this IEndpointRouteBuilder app)
    {
        // The handler, a singleton, without a DI scope per request (SingletonHandlers).
        app.MapPost("/v1/embeddings", app.Calling<ChatCompletionsHandler>(static (handler, http) => handler.HandleAsync(http, EmbeddingsRequest.TryParse)))
            .WithRequestTelemetry()
            .WithName("CreateEmbedding")
            .WithTags("Embeddings")
            .WithSummary("OpenAI Embeddings, for OpenAI-compatible, Azure OpenAI, Gemini and Ollama models")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status404NotFound)
            .Produces(StatusCodes.Status502BadGateway);
        return app;
    }
}
