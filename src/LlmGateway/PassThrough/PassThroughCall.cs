using System.Net.Http.Headers;
using LlmGateway.Http;
using LlmGateway.Usage;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace LlmGateway.PassThrough;

/// <summary>
/// One forwarded request: YARP's transforms (credentials out, the provider key in, the URL mapped onto
/// the provider's BaseUrl) and what the record needs from the way back. One per request, because the
/// transforms are where the request's state is at hand.
/// </summary>
internal sealed class PassThroughCall(PassThroughHandler owner, RequestRecord record, PathString remainder) : HttpTransformer
{
    /// <summary>Client headers that carry the client's credentials or name its OpenAI account; the provider's key replaces them.</summary>
    private static readonly string[] s_strippedRequestHeaders =
    [
        HeaderNames.Authorization, "api-key", "x-api-key", HeaderNames.Cookie, "OpenAI-Organization", "OpenAI-Project",
    ];

    private long _sent;

    public RequestRecord Record => record;

    /// <summary>Set when the answer is JSON small enough to read the model and usage from.</summary>
    public ResponseTee? Tee { get; private set; }

    /// <summary>Set when the answer is an uncompressed event stream, to find its usage event as it passes.</summary>
    public EventStreamTee? EventTee { get; private set; }

    /// <summary>When the request left for the upstream (0 if it never did): the gateway's own time ends here.</summary>
    public long Sent => _sent;

    /// <summary>When a streamed answer's first byte went to the client (0 if none did, or not a stream).</summary>
    public long FirstByte { get; private set; }

    /// <summary>Events of a streamed answer that could have carried its usage but were too long to read.</summary>
    public int SkippedEvents { get; private set; }

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        // :: The client's headers (less hop-by-hop ones and Host), then what the gateway changes.
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        proxyRequest.RequestUri = PassThroughPaths.Target(destinationPrefix, remainder, httpContext.Request.QueryString);

        var headers = proxyRequest.Headers;
        foreach (var name in s_strippedRequestHeaders) headers.Remove(name);
        if (owner.ApiKey is { Length: > 0 } key) headers.Authorization = new AuthenticationHeaderValue("Bearer", key);

        // A compressed answer can't be read for usage. Bodies sent with POST get JSON answers worth
        // reading and small enough that compression saves little; GETs (file downloads) stay compressed.
        if (!HttpMethods.IsGet(httpContext.Request.Method)) headers.AcceptEncoding.Clear();

        _sent = owner.Time.GetTimestamp();
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        var headers = httpContext.Response.Headers;

        // The provider's session cookies are none of the client's business (the client's own never went up).
        headers.Remove(HeaderNames.SetCookie);

        // x-request-id is the gateway's (the contract's); the provider's own stays available for its support.
        if (proxyResponse is not null && proxyResponse.Headers.TryGetValues(GatewayHeaders.RequestId, out var upstreamIds))
        {
            headers[PassThroughHeaders.UpstreamRequestId] = upstreamIds.ToArray();
        }
        headers[GatewayHeaders.RequestId] = record.RequestId;
        headers[GatewayHeaders.Provider] = record.Provider;

        if (proxyResponse is not null)
        {
            var content = proxyResponse.Content.Headers;
            var mediaType = content.ContentType?.MediaType;
            record.Stream = string.Equals(mediaType, "text/event-stream", StringComparison.OrdinalIgnoreCase);
            var length = content.ContentLength;
            if (string.Equals(mediaType, "application/json", StringComparison.OrdinalIgnoreCase) &&
                content.ContentEncoding.Count == 0 &&
                (length is null || length <= PassThroughHandler.MaxUsageBodyBytes))
            {
                // YARP reads Response.Body after this transform, so its copy goes through the tee.
                Tee = new ResponseTee(httpContext.Response.Body, (int)(length ?? 4096), PassThroughHandler.MaxUsageBodyBytes);
                httpContext.Response.Body = Tee;
            }
            else if (record.Stream && content.ContentEncoding.Count == 0)
            {
                // A stream's usage is in its last event: read on the way through, nothing held back.
                EventTee = new EventStreamTee(httpContext.Response.Body, owner.Time);
                httpContext.Response.Body = EventTee;
            }
        }
        return proceed;
    }

    /// <summary>
    /// Puts the server's response body back and hands back the captured bytes' buffer. A stream that
    /// broke or that the client left gives whatever usage went by before (usually none: it comes last).
    /// </summary>
    public ResponseUsage Finish(HttpContext http)
    {
        if (EventTee is { } events)
        {
            http.Response.Body = events.Inner;
            var found = events.Usage;
            FirstByte = events.FirstByte;
            SkippedEvents = events.SkippedLines;
            events.Dispose();
            EventTee = null;
            return found;
        }
        if (Tee is not { } tee) return default;
        http.Response.Body = tee.Inner;
        var usage = tee.Overflowed ? default : ResponseUsage.Read(tee.Captured);
        tee.Dispose();
        Tee = null;
        return usage;
    }
}

public static class PassThroughHeaders
{
    /// <summary>The provider's own request id, kept when the gateway's replaces it in x-request-id.</summary>
    public const string UpstreamRequestId = "x-gateway-upstream-request-id";
}
