using BenchmarkDotNet.Attributes;
using LlmGateway.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.Benchmarks;

/// <summary>
/// What a route handler pays per request to get a singleton handler, the two ways the chat and embeddings endpoints
/// have been mapped: as a parameter of the handler (<c>ServiceParameter</c>: resolved from <c>RequestServices</c>, which
/// makes the request a DI scope of its own, disposed with it) or taken once from the root provider
/// (<c>CapturedSingleton</c>: <c>SingletonHandlers.Calling</c>, what the model-call endpoints map). Both are route handlers built by ASP.NET Core from
/// a Delegate, invoked on a context from the host's factory with the request-services feature as Kestrel's requests
/// get it; the handler itself does nothing. Kestrel's part of the scope's disposal (the registration with the
/// response and the completion callback that disposes it) is not in here.
/// </summary>
[MemoryDiagnoser]
public class EndpointBenchmarks
{
    private WebApplication _app = null!;
    private IHttpContextFactory _contexts = null!;
    private IServiceScopeFactory _scopes = null!;
    private RequestDelegate _serviceParameter = null!;
    private RequestDelegate _capturedSingleton = null!;
    private readonly FeatureCollection _features = new();

    [GlobalSetup]
    public void Setup()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<Handler>();
        _app = builder.Build();
        _app.MapPost("/parameter", (HttpContext http, Handler h) => h.HandleAsync(http));
        _app.MapPost("/captured", _app.Calling<Handler>(static (h, http) => h.HandleAsync(http)));
        var endpoints = ((IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>().ToList();
        _serviceParameter = endpoints.Single(e => e.RoutePattern.RawText == "/parameter").RequestDelegate!;
        _capturedSingleton = endpoints.Single(e => e.RoutePattern.RawText == "/captured").RequestDelegate!;
        _contexts = _app.Services.GetRequiredService<IHttpContextFactory>();
        _scopes = _app.Services.GetRequiredService<IServiceScopeFactory>();
        _features.Set<IHttpRequestFeature>(new HttpRequestFeature { Method = "POST" });
        _features.Set<IHttpResponseFeature>(new HttpResponseFeature());
    }

    [GlobalCleanup]
    public void Cleanup() => _app.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark(Baseline = true)]
    public Task ServiceParameter() => RunAsync(_serviceParameter);

    [Benchmark]
    public Task CapturedSingleton() => RunAsync(_capturedSingleton);

    private async Task RunAsync(RequestDelegate endpoint)
    {
        var http = _contexts.Create(_features);
        var services = new RequestServicesFeature(http, _scopes);
        http.Features.Set<IServiceProvidersFeature>(services);
        await endpoint(http).ConfigureAwait(false);
        await services.DisposeAsync().ConfigureAwait(false);
        _contexts.Dispose(http);
    }

    public sealed class Handler
    {
        public Task HandleAsync(HttpContext http) => Task.CompletedTask;
    }
}
