using Microsoft.AspNetCore.Diagnostics;

namespace LlmGateway.Http;

/// <summary>
/// Endpoint metadata for an API dialect whose errors have another shape than OpenAI's (the Anthropic
/// Messages API's). <see cref="ApiError.WriteAsync"/> looks it up, so an error found before the
/// endpoint runs (a missing gateway key, the key store down) or after it threw reaches the client in
/// the shape its SDK parses, without each middleware knowing the dialects.
/// </summary>
public abstract class ErrorDialect
{
    public abstract Task WriteAsync(HttpResponse response, ApiError error);

    /// <summary>The dialect of the endpoint the request was routed to (or that threw), or null for OpenAI's shape.</summary>
    public static ErrorDialect? Of(HttpContext http) =>
        (http.GetEndpoint() ?? http.Features.Get<IExceptionHandlerFeature>()?.Endpoint)?.Metadata.GetMetadata<ErrorDialect>();
}
