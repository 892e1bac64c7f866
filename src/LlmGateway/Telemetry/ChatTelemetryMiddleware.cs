using System.Diagnostics;
using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

/// <summary>
/// Around each chat completion request: the in-flight gauge, the request span, and (only when
/// Gateway:Logging:IncludeContent is on) the prompt and completion log line. Every other path passes
/// straight through.
/// </summary>
public sealed class ChatTelemetryMiddleware(RequestDelegate next, GatewayMetrics metrics, ContentLog content, IOptions<GatewayOptions> options)
{
    private static readonly PathString s_chatPath = new("/v1/chat/completions");
    private readonly bool _includeContent = options.Value.Logging.IncludeContent;

    public Task InvokeAsync(HttpContext http) =>
        http.Request.Path.Equals(s_chatPath, StringComparison.OrdinalIgnoreCase) ? InvokeChatAsync(http) : next(http);

    private async Task InvokeChatAsync(HttpContext http)
    {
        metrics.RequestStarted();
        using var activity = GatewayTracing.StartRequest();
        try
        {
            if (_includeContent) await content.RunAsync(http, next).ConfigureAwait(false);
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
}
