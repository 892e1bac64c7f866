using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace LlmGateway.Bench;

/// <summary>
/// The Kestrel host the harness's own servers run on (the mock upstream, the bare proxy): HTTP/1.1 on one
/// loopback port, no configuration, logging, routing or middleware, so that what they cost is Kestrel's and theirs.
/// </summary>
internal static class LoopbackHost
{
    public static WebApplicationBuilder CreateBuilder(int port, long maxBodyBytes)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxBodyBytes;
            k.Limits.MaxConcurrentConnections = null;
            k.Listen(IPAddress.Loopback, port, l => l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
        });
        return builder;
    }
}
