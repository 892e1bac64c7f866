using System.Text;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Tests.Telemetry;

/// <summary>GET /metrics through the gateway's own scrape handler, without a server.</summary>
internal static class MetricsScrape
{
    public static async Task<string> TextAsync(MetricsExposure exposure, string? accept = null, string? bearer = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/metrics";
        if (accept is not null) context.Request.Headers.Accept = accept;
        if (bearer is not null) context.Request.Headers.Authorization = "Bearer " + bearer;
        using var body = new MemoryStream();
        context.Response.Body = body;
        await exposure.ScrapeAsync(context);
        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
        return Encoding.UTF8.GetString(body.ToArray());
    }
}
