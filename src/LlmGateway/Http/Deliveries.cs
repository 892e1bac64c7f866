using LlmGateway.Pipeline;

namespace LlmGateway.Http;

/// <summary>How an ingress reports a write that did not go through, the same for every dialect.</summary>
public static class Deliveries
{
    /// <summary>
    /// The client left, or stalled past the write timeout and was cut off (both the client's outcome, 499,
    /// never the provider's), or the write failed some other way.
    /// </summary>
    /// <remarks>
    /// The write timeout's own flag counts too: it aborts the connection, but Kestrel signals
    /// <c>RequestAborted</c> from a thread-pool item, so the failed write can be seen before the token is
    /// cancelled, and a stalled client would then be recorded as a failed write under the 200 already sent.
    /// </remarks>
    public static Delivery Undelivered(HttpContext http) => CutOff(http) ? Delivery.ClientGone : Delivery.WriteFailed;

    /// <summary>The client left, or the write timeout cut it off: a write that returned may still not have reached it.</summary>
    public static bool CutOff(HttpContext http) =>
        http.RequestAborted.IsCancellationRequested || Streaming.ClientWriteTimeout.FiredFor(http);
}
