namespace LlmGateway.Http;

public static class ErrorHandlingExtensions
{
    /// <summary>
    /// Whatever goes wrong, the client gets JSON in OpenAI's shape: an unexpected exception is a 500
    /// with no detail (the log has it), an unknown path a 404.
    /// </summary>
    public static WebApplication UseOpenAiErrors(this WebApplication app)
    {
        app.UseExceptionHandler(errorApp => errorApp.Run(http =>
        {
            if (http.Response.HasStarted) return Task.CompletedTask;
            var feature = http.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>();
            var error = feature?.Error is BadHttpRequestException bad
                ? new ApiError(bad.StatusCode, ErrorTypes.InvalidRequest, bad.StatusCode == 413 ? ErrorCodes.RequestTooLarge : null, "The request could not be read: " + bad.Message)
                : ApiError.Internal();
            return error.WriteAsync(http.Response);
        }));
        return app;
    }

    public static IEndpointRouteBuilder MapOpenAiNotFound(this IEndpointRouteBuilder app)
    {
        app.MapFallback((HttpContext http) => ApiError.NotFound($"No endpoint at {http.Request.Method} {http.Request.Path}.").ToResult())
            .ExcludeFromDescription();
        return app;
    }
}
