namespace LlmGateway.Http;

/// <summary>
/// Route handlers for the model-call endpoints, whose handler is a singleton. As a parameter of the route handler
/// the handler came from <see cref="HttpContext.RequestServices"/>, which made every request a DI scope of its own
/// (created, registered for disposal with the response, disposed) that nothing used. Taken once from the root
/// provider instead, on the first request: not when the endpoint is mapped, since the options it reads are
/// validated when the host starts. Still a route handler (a <see cref="Delegate"/> taking the
/// <see cref="HttpContext"/>), so the OpenAPI document describes the endpoint as before.
/// </summary>
public static class SingletonHandlers
{
    public static Func<HttpContext, Task> Calling<THandler>(this IEndpointRouteBuilder app, Func<THandler, HttpContext, Task> call)
        where THandler : notnull
    {
        THandler? handler = default;
        // A race on the first requests resolves the same singleton twice: harmless.
        return http => call(handler ??= app.ServiceProvider.GetRequiredService<THandler>(), http);
    }
}
