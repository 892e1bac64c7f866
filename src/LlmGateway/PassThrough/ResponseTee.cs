using System.Buffers;

namespace LlmGateway.PassThrough;

/// <summary>
/// Put in front of the response body while YARP copies a small JSON answer to the client: every write
/// goes straight through, and the first <see cref="_limit"/> bytes are also kept (in a pooled buffer)
/// so the record can read the model and usage afterwards. The gateway never copies the body itself.
/// Past the limit it stops keeping and says so (<see cref="Overflowed"/>): a cut JSON is not read.
/// </summary>
public sealed class ResponseTee : ObservingStream
{
    private readonly int _limit;
    private byte[] _buffer;
    private int _length;

    public ResponseTee(Stream inner, int initialCapacity, int limit) : base(inner)
    {
        _limit = limit;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Clamp(initialCapacity, 256, limit));
    }

    public bool Overflowed { get; private set; }

    /// <summary>What was kept; empty once the body outgrew the limit.</summary>
    public ReadOnlySpan<byte> Captured => Overflowed ? default : _buffer.AsSpan(0, _length);

    protected override void Observe(ReadOnlySpan<byte> bytes)
    {
        if (Overflowed || bytes.IsEmpty) return;
        if (_length + bytes.Length > _limit)
        {
            Overflowed = true;
            return;
        }
        if (_length + bytes.Length > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_limit, Math.Max(_buffer.Length * 2, _length + bytes.Length)));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    /// <summary>Returns the buffer; the response body it wrapped belongs to the server and stays open.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && _buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _length = 0;
        }
        base.Dispose(disposing);
    }
}
