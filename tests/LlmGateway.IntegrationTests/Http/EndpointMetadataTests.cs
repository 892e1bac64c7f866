using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Http;

public class EndpointMetadataTests
{
    /// <summary>
    /// The endpoint middleware's check for unhandled authorization, CORS and antiforgery metadata is switched off
    /// (RouteShortcut.AddGatewayRouting) because no endpoint has any: an endpoint that gets some needs the check back.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void No_endpoint_carries_metadata_whose_middleware_the_gateway_does_not_run(bool passThrough)
    {
        var settings = GatewayFactory.OpenAiSettings("http://127.0.0.1:9");
        if (passThrough) settings["Gateway:PassThrough:Provider"] = "up";
        using var gateway = new GatewayFactory(settings);
        using var client = gateway.CreateClient(); // builds the pipeline, which maps the endpoints

        var endpoints = gateway.Services.GetRequiredService<EndpointDataSource>().Endpoints;
        Assert.Contains(endpoints, e => e.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName == "CreateChatCompletion");
        var marked = endpoints
            .Where(e => e.Metadata.GetMetadata<IAuthorizeData>() is not null || e.Metadata.GetMetadata<ICorsMetadata>() is not null
                || e.Metadata.GetMetadata<IAntiforgeryMetadata>() is not null)
            .Select(e => e.DisplayName)
            .ToList();
        Assert.Empty(marked);
    }
}
