namespace LlmGateway.Auth;

/// <summary>
/// With Gateway:Auth:Mode=keys, every <c>/v1</c> request needs a gateway key; the caller it
/// identifies is put on the request's features for the rest of the pipeline. It runs for the whole
/// <c>/v1</c> prefix rather than per endpoint, so endpoints added later (and unknown /v1 paths) are
/// covered without anyone remembering to opt in. Path matching is case-insensitive, like routing.
/// </summary>
public sealed class GatewayAuthMiddleware(RequestDelegate next, KeyAuthenticator authenticator, ILogger<GatewayAuthMiddleware> logger)
{
    private static readonly PathString s_protected = "/v1";

    public async Task InvokeAsync(HttpContext http)
    {
        if (!http.Request.Path.StartsWithSegments(s_protected, StringComparison.OrdinalIgnoreCase))
        {
            await next(http).ConfigureAwait(false);
            return;
        }

        var result = await authenticator.AuthenticateAsync(GatewayKeys.Presented(http.Request.Headers), http.RequestAborted).ConfigureAwait(false);
        if (result.Outcome == AuthOutcome.Authenticated)
        {
            http.Features.Set(result.Caller);
            await next(http).ConfigureAwait(false);
            return;
        }

        var error = result.Outcome switch
        {
            AuthOutcome.Missing => AuthErrors.MissingKey,
            AuthOutcome.StoreUnavailable => AuthErrors.KeyLookupUnavailable,
            _ => AuthErrors.InvalidKey,
        };
        // The reason and where from, never what was presented.
        logger.LogInformation("Refused {Method} {Path} from {RemoteIp}: {Reason}",
            http.Request.Method, http.Request.Path.Value, http.Connection.RemoteIpAddress?.ToString(), result.Outcome);
        await error.WriteAsync(http.Response).ConfigureAwait(false);
    }
}
