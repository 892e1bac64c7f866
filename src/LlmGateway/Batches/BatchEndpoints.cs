namespace LlmGateway.Batches;

public static class BatchEndpoints
{
    public static IServiceCollection AddBatches(this IServiceCollection services)
    {
        services.AddSingleton<BatchMetrics>();
        services.AddSingleton<BatchRunner>();
        return services;
    }

    public static IEndpointRouteBuilder MapBatches(this IEndpointRouteBuilder app)
    {
        // Like the chat endpoint, the runner reads the raw body itself (its own size limit, JSON or JSON Lines).
        app.MapPost("/v1/batch/chat/completions", (HttpContext http, BatchRunner runner) => runner.HandleAsync(http))
            .WithName("CreateChatCompletionBatch")
            .WithTags("Chat")
            .WithSummary("Many chat completion requests in one call: a JSON array or JSON Lines, run through the chat pipeline with bounded parallelism; results in input order")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status413PayloadTooLarge);
        return app;
    }
}
