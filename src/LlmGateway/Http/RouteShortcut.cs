namespace LlmGateway.Http;

/// <summary>
/// Routing, with the request that is nearly all of a gateway's traffic (POST /v1/chat/completions) matched before it.
/// <para>
/// Why: routing's matcher runs its whole search for every request (the path's segments through its jump tables, the
/// candidates at the end, among them the fallback, each scored, the HTTP-method policy between them, then the limits
/// the endpoint's metadata asks for), about 0.7 % of the gateway's samples on the bench's miss path (perf of
/// <c>d98dbf6</c>: <c>DfaMatcher.MatchAsync</c>, its jump tables, <c>SetMaxRequestBodySize</c>), and its answer for
/// this one method and path never changes. So the answer routing gave is remembered, and a request with exactly that
/// method and path gets it without the search: routing sees an endpoint already set and passes the request on, as it
/// does for any endpoint set before it.
/// </para>
/// <para>
/// Behaviour is routing's own: the endpoint is the one routing chose (learnt from the first such request routing
/// answered, and only if it is the endpoint named), and only the exact spelling is shortcut (any other case, a
/// trailing slash, any other method go through routing as before). Nothing else routing does applies to that endpoint:
/// it has no route values, no size-limit, form or short-circuit metadata, and the routing metrics it would record are
/// dropped from /metrics (<see cref="Telemetry.MetricsExposure"/>). The request duration metric and the error
/// handler read the same endpoint as before.
/// </para>
/// </summary>
public static class RouteShortcut
{
    /// <summary>
    /// Routing, where the host would have put it (first), with POST <paramref name="path"/> shortcut to the endpoint
    /// named <paramref name="endpointName"/>.
    /// </summary>
    public static WebApplication UseRoutingWithShortcut(this WebApplication app, string path, string endpointName)
    {
        var shortcut = new Shortcut(path, endpointName);
        app.Use(next => http => shortcut.Invoke(http, next));
        app.UseRouting();
        return app;
    }

    /// <summary>
    /// Routing's options for the endpoints the gateway maps. None carries authorization, CORS or antiforgery metadata
    /// (gateway keys are checked by the gateway's own middleware, and no endpoint binds a form), so the endpoint
    /// middleware's check that the middleware for such metadata ran, three metadata lookups on every request that can
    /// find nothing, is switched off. A test fails if an endpoint ever carries such metadata, so the check is never
    /// missed where it would apply.
    /// </summary>
    public static IServiceCollection AddGatewayRouting(this IServiceCollection services) =>
        services.Configure<RouteOptions>(o => o.SuppressCheckForUnhandledSecurityMetadata = true);

    /// <summary>The remembered endpoint, and the test that a request is the one it answers.</summary>
    internal sealed class Shortcut(string path, string endpointName)
    {
        private Endpoint? _endpoint;

        /// <summary>The endpoint once learnt; null until then.</summary>
        internal Endpoint? Endpoint => _endpoint;

        internal Task Invoke(HttpContext http, RequestDelegate next)
        {
            var request = http.Request;
            if (!HttpMethods.IsPost(request.Method) || !string.Equals(request.Path.Value, path, StringComparison.Ordinal)) return next(http);
            if (_endpoint is { } endpoint)
            {
                http.SetEndpoint(endpoint);
                return next(http);
            }
            return LearnAsync(http, next);
        }

        /// <summary>
        /// Routing answers this request; its endpoint is remembered once the request is done, if it is the one named (a
        /// race between the first requests remembers one of routing's answers, all the same endpoint). A request that
        /// failed has no endpoint left (the error handler clears it): the next one is learnt from.
        /// </summary>
        private async Task LearnAsync(HttpContext http, RequestDelegate next)
        {
            await next(http).ConfigureAwait(false);
            Learn(http.GetEndpoint());
        }

        internal void Learn(Endpoint? endpoint)
        {
            if (endpoint?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName == endpointName) _endpoint = endpoint;
        }
    }
}
