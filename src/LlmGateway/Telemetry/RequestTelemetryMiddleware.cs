using System.Diagnostics;
using System.Runtime.ExceptionServices;
using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

/// <summary>
/// Marks an endpoint whose requests are model calls: they count in the in-flight gauge and get the
/// request span. <see cref="LogContent"/>: the prompt and completion log line applies (only when
/// Gateway:Logging:IncludeContent is on; chat, Responses and Messages only: a log of embedding vectors or uploads would be noise).
/// </summary>
public sealed record RequestTelemetry(bool LogContent)
{
    public static readonly RequestTelemetry WithContent = new(true);
    public static readonly RequestTelemetry WithoutContent = new(false);
}

public static class RequestTelemetryExtensions
{
    public static TBuilder WithRequestTelemetry<TBuilder>(this TBuilder builder, bool logContent = false) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(logContent ? RequestTelemetry.WithContent : RequestTelemetry.WithoutContent);
}

/// <summary>
/// Around each request to an endpoint marked with <see cref="RequestTelemetry"/> (chat, embeddings,
/// pass-through): the in-flight gauge, the request span and, where marked, the content log line.
/// Every other request goes to <c>unmarked</c>.
/// <para>
/// It sits right inside the error handler, and its failures go to <c>handleFailure</c>: the error handler as if the
/// failure had come through it (<see cref="Http.ErrorHandlingExtensions.UseOpenAiErrorsAndRequestTelemetry"/> says
/// why), after the gauge and the span are done with it, as when the error handler awaited this middleware.
/// </para>
/// </summary>
public sealed class RequestTelemetryMiddleware(
    RequestDelegate next,
    RequestDelegate unmarked,
    Func<HttpContext, ExceptionDispatchInfo, Task> handleFailure,
    GatewayMetrics metrics,
    ContentLog content,
    IOptions<GatewayOptions> options)
{
    private readonly bool _includeContent = options.Value.Logging.IncludeContent;

    public Task InvokeAsync(HttpContext http) =>
        http.GetEndpoint()?.Metadata.GetMetadata<RequestTelemetry>() is { } marked
            ? InvokeTracedAsync(http, marked.LogContent && _includeContent)
            : unmarked(http);

    private async Task InvokeTracedAsync(HttpContext http, bool includeContent)
    {
        ExceptionDispatchInfo? failure = null;
        try
        {
            metrics.RequestStarted();
            using var activity = GatewayTracing.StartRequest();
            try
            {
                if (includeContent) await content.RunAsync(http, next).ConfigureAwait(false);
                else await next(http).ConfigureAwait(false);
            }
            catch (Exception e) when (activity is not null)
            {
                activity.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
                activity.AddException(e);
                throw;
            }
            finally
            {
                metrics.RequestEnded();
            }
        }
        catch (Exception e)
        {
            // What the error handler's own await did with a failure: captured, then handled once the request's own
            // frames (the span's, the gauge's) are done with it.
            failure = ExceptionDispatchInfo.Capture(e);
        }
        if (failure is not null) await handleFailure(http, failure).ConfigureAwait(false);
    }
}
