using System.Runtime.ExceptionServices;
using LlmGateway.Telemetry;

namespace LlmGateway.Http;

public static class ErrorHandlingExtensions
{
    /// <summary>
    /// Whatever goes wrong, the client gets JSON in OpenAI's shape: an unexpected exception is a 500
    /// with no detail (the log has it), an unknown path a 404. Inside the error handler, the request
    /// telemetry (<see cref="RequestTelemetryMiddleware"/>): the in-flight gauge and the request span of
    /// the endpoints marked for it.
    /// <para>
    /// Why one middleware for both: the error handler awaits every request that does not finish at once (each model
    /// call), so it was an async level of its own in front of the telemetry's, each one more state-machine box and one
    /// more resumption per request. For a marked endpoint the telemetry's level is the only one: it catches a failure
    /// as the error handler's own await did, and hands it to the same error handler (ASP.NET Core's, with the same
    /// error page), which handles it as if it had come through it: the same log line, metric, cleared response and
    /// 500 body, after the gauge and the span are done with it, as before. Every other request goes through the error
    /// handler in front of the rest of the chain, as before.
    /// </para>
    /// </summary>
    public static WebApplication UseOpenAiErrorsAndRequestTelemetry(this WebApplication app)
    {
        IApplicationBuilder builder = app;
        // The failure a marked request ended with, handed to the error handler by a step that throws it again.
        var failed = WithErrorHandler(builder, static http =>
        {
            var failure = http.Features.Get<CaughtFailure>()!;
            http.Features.Set<CaughtFailure>(null);
            failure.Exception.Throw();
            return Task.CompletedTask;
        });
        app.Use(next => builder.RequestTelemetry(next, unmarked: WithErrorHandler(builder, next), handleFailure: (http, failure) =>
        {
            http.Features.Set(new CaughtFailure(failure));
            return failed(http);
        }));
        return app;
    }

    /// <summary>The error handler in front of <paramref name="then"/>, as <c>UseExceptionHandler</c> puts it in a chain.</summary>
    private static RequestDelegate WithErrorHandler(IApplicationBuilder app, RequestDelegate then)
    {
        var branch = app.New();
        branch.UseExceptionHandler(errorApp => errorApp.Run(WriteErrorAsync));
        branch.Run(then);
        return branch.Build();
    }

    private static Task WriteErrorAsync(HttpContext http)
    {
        if (http.Response.HasStarted) return Task.CompletedTask;
        // Every answer carries x-request-id (the contract), this 500 too: the handler cleared the response's headers, so the
        // id is set again, the one the ingress gave the request when it got that far (RememberRequestId), else a new one.
        http.Response.Headers[GatewayHeaders.RequestId] = http.Items.TryGetValue(RequestIdItem, out var id) && id is string known ? known : GatewayHeaders.NewRequestId();
        var feature = http.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>();
        var error = feature?.Error is BadHttpRequestException bad
            ? new ApiError(bad.StatusCode, ErrorTypes.InvalidRequest, bad.StatusCode == 413 ? ErrorCodes.RequestTooLarge : null, "The request could not be read: " + bad.Message)
            : ApiError.Internal();
        return error.WriteAsync(http.Response);
    }

    private static readonly object RequestIdItem = new();

    /// <summary>
    /// For an exception filter on the way out of an ingress: remembers the request's id for the error handler's 500 and
    /// returns false, so the exception goes on unhandled. Only a failing request pays for it (the Items dictionary).
    /// </summary>
    public static bool RememberRequestId(HttpContext http, string requestId)
    {
        http.Items[RequestIdItem] = requestId;
        return false;
    }

    private sealed record CaughtFailure(ExceptionDispatchInfo Exception);

    public static IEndpointRouteBuilder MapOpenAiNotFound(this IEndpointRouteBuilder app)
    {
        app.MapFallback((HttpContext http) => ApiError.NotFound($"No endpoint at {http.Request.Method} {http.Request.Path}.").ToResult())
            .ExcludeFromDescription();
        return app;
    }
}
