using System.Diagnostics;
using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

/// <summary>
/// Around each chat completion and embeddings request: the in-flight gauge, the request span, and
/// (only for chat, and only when Gateway:Logging:IncludeContent is on) the prompt and completion log
/// line; a log of embedding vectors would be all numbers. Every other path passes straight through.
/// </summary>
public sealed class ChatTelemetryMiddleware(RequestDelegate next, GatewayMetrics metrics, ContentLog content, IOptions<GatewayOptions> options)
{
    private static readonly PathString s_chatPath = new("/v1/chat/completions");
    private static readonly PathString s_embeddingsPath = new("/v1/embeddings");
    private readonly bool _includeContent = options.Value.Logging.IncludeContent;

    public Task InvokeAsync(HttpContext http)
    {
        var path = http.Request.Path;
        if (path.Equals(s_chatPath, StringComparison.OrdinalIgnoreCase)) return InvokeTracedAsync(http, _includeContent);
        if (path.Equals(s_embeddingsPath, StringComparison.OrdinalIgnoreCase)) return InvokeTracedAsync(http, includeContent: false);
        return next(http);
    }

    private async Task InvokeTracedAsync(HttpContext http, bool includeContent)
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
}
