using LlmGateway.Pipeline;

namespace LlmGateway.Http;

/// <summary>How an ingress reports a write that did not go through, the same for every dialect.</summary>
public static class Deliveries
{
    /// <summary>
    /// The client left, or stalled past the write timeout and was cut off (both the client's outcome, 499,
    /// never the provider's), or the write failed some other way.
    /// </summary>
    public static Delivery Undelivered(HttpContext http) =>
        http.RequestAborted.IsCancellationRequested ? Delivery.ClientGone : Delivery.WriteFailed;
}
