namespace LlmGateway.PassThrough;

/// <summary>
/// Put in front of the response body while YARP copies a streamed (<c>text/event-stream</c>) answer
/// to the client: every write and flush goes straight through, unchanged and unbuffered, so the
/// client still gets the stream event by event; on the side, <see cref="SseUsageFinder"/> looks for
/// the usage event, and the first byte's time is noted for the record.
/// </summary>
public sealed class EventStreamTee(Stream inner, TimeProvider time) : ObservingStream(inner)
{
    private readonly SseUsageFinder _finder = new();

    /// <summary>The usage of the last event that carried one; default if none went by.</summary>
    public ResponseUsage Usage => _finder.Usage;

    /// <summary>Events that might have carried usage but were too long to read (see <see cref="SseUsageFinder.MaxLineBytes"/>).</summary>
    public int SkippedLines => _finder.SkippedLines;

    /// <summary>When the first byte of the answer was handed to the client (a <see cref="TimeProvider"/> timestamp; 0 if none was).</summary>
    public long FirstByte { get; private set; }

    protected override void Observe(ReadOnlySpan<byte> bytes)
    {
        if (FirstByte == 0 && !bytes.IsEmpty) FirstByte = time.GetTimestamp();
        _finder.Append(bytes);
    }

    /// <summary>Returns the finder's buffer; the response body it wrapped belongs to the server and stays open.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _finder.Dispose();
        base.Dispose(disposing);
    }
}
