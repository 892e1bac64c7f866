using LlmGateway.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace LlmGateway.Http;

/// <summary>
/// Kestrel's limits, each chosen for a gateway whose clients are SDKs and scripts sending small
/// headers and bodies of at most Gateway:Limits:MaxRequestBytes, so that a slow or hostile client
/// can't pin connections, threads or memory. Kestrel checks its timeouts once a second.
/// </summary>
public static class KestrelLimits
{
    /// <summary>SDK requests carry well under 4 KB of headers; 32 KB leaves room for proxies' cookies and trace baggage.</summary>
    public const int MaxRequestHeadersTotalSize = 32 * 1024;

    /// <summary>SDKs send about fifteen headers; 64 is generous and still bounds per-request header work (431 beyond).</summary>
    public const int MaxRequestHeaderCount = 64;

    /// <summary>Paths here are short (/v1/chat/completions); long request lines are probes.</summary>
    public const int MaxRequestLineSize = 8 * 1024;

    /// <summary>
    /// A body may trickle no slower than 1 KB/s after a 5 s grace: a 4 MB body on a bad mobile link
    /// passes easily, a slowloris body does not hold the connection for long.
    /// </summary>
    public static readonly MinDataRate MinRequestBodyDataRate = new(bytesPerSecond: 1024, gracePeriod: TimeSpan.FromSeconds(5));

    /// <summary>
    /// Idle keep-alive connections close after this. Longer than the usual proxy idle timeouts
    /// (nginx and AWS ALB: 60 s), so a proxy in front closes first and never reuses a connection the
    /// gateway is closing; short enough that abandoned client connections don't pile up.
    /// </summary>
    public static readonly TimeSpan KeepAliveTimeout = TimeSpan.FromSeconds(120);

    public static IServiceCollection AddRequestLimits(this IServiceCollection services)
    {
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<GatewayOptions>>((kestrel, gateway) => Apply(kestrel, gateway.Value.Limits));
        return services;
    }

    public static void Apply(KestrelServerOptions kestrel, LimitsOptions limits)
    {
        // No "Server: Kestrel": nothing to gain from telling scanners what to try.
        kestrel.AddServerHeader = false;
        var l = kestrel.Limits;

        // Derived from Limits:MaxRequestBytes, which the chat handler enforces exactly (413 from
        // Content-Length before reading, or as soon as a chunked body passes it). Kestrel's own
        // limit is twice that because of what happens after such a 413: Kestrel drains the unread
        // body (up to 5 s) so the client, still sending, can read the answer, but only when the
        // body fits its limit; beyond it, it closes the connection and the client usually sees a
        // reset instead of the 413. So a body a little over the limit gets a readable 413, a huge
        // one is cut off, and no endpoint ever reads more than twice the limit.
        l.MaxRequestBodySize = 2L * limits.MaxRequestBytes;
        l.MaxRequestHeadersTotalSize = MaxRequestHeadersTotalSize;
        l.MaxRequestHeaderCount = MaxRequestHeaderCount;
        l.MaxRequestLineSize = MaxRequestLineSize;

        // Headers must arrive within this (Kestrel's default is 30 s): the slowloris defence.
        l.RequestHeadersTimeout = TimeSpan.FromSeconds(limits.RequestHeadersTimeoutSeconds);
        l.MinRequestBodyDataRate = MinRequestBodyDataRate;
        l.KeepAliveTimeout = KeepAliveTimeout;

        // MinResponseDataRate stays at Kestrel's 240 B/s after 5 s. It does not catch a client that stops
        // reading a fast stream (every write that reached the socket buffers earned it credit), so each
        // write also runs under Limits:ResponseWriteTimeoutSeconds (Streaming/ClientWriteTimeout).
    }
}
