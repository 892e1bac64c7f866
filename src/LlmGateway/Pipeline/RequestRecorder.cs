namespace LlmGateway.Pipeline;

/// <summary>Hands a finished request to every observer, each isolated from the others' failures.</summary>
public sealed class RequestRecorder(IEnumerable<IRequestObserver> observers, ILogger<RequestRecorder> logger)
{
    private readonly IRequestObserver[] _observers = observers.ToArray();

    public void Record(RequestRecord record)
    {
        foreach (var o in _observers)
        {
            try
            {
                o.OnRequestCompleted(record);
            }
            catch (Exception e)
            {
                // A broken observer must not lose the record for the others, nor fail the request.
                logger.LogError(e, "Request observer {Observer} failed", o.GetType().Name);
            }
        }
    }
}
