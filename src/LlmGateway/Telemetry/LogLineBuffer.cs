namespace LlmGateway.Telemetry;

/// <summary>
/// The log writer's bytes: whole JSON lines, appended by <see cref="JsonLogLineFormatter"/> and written out
/// by <see cref="BatchedJsonLinesSink"/>. Unlike <c>ArrayBufferWriter</c> it can take back a partly written
/// line (<see cref="Truncate"/>), which is how the formatter hands an event it cannot render to Serilog's
/// own formatter without leaving half a line behind. One writer thread owns it: not thread-safe.
/// </summary>
public sealed class LogLineBuffer(int capacity)
{
    private readonly int _initialCapacity = capacity;
    private byte[] _bytes = new byte[capacity];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> WrittenSpan => _bytes.AsSpan(0, Length);

    internal byte[] WrittenArray => _bytes;

    /// <summary>Room for at least <paramref name="size"/> more bytes after what is written.</summary>
    public Span<byte> GetSpan(int size)
    {
        if (_bytes.Length - Length < size) Grow(size);
        return _bytes.AsSpan(Length);
    }

    public void Advance(int count) => Length += count;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetSpan(bytes.Length));
        Length += bytes.Length;
    }

    public void Write(byte b)
    {
        if (Length == _bytes.Length) Grow(1);
        _bytes[Length++] = b;
    }

    /// <summary>Forgets everything after <paramref name="length"/> bytes (a line begun and abandoned).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)length, (uint)Length, nameof(length));
        Length = length;
    }

    /// <summary>Empties the buffer; one that an outsized line (a long exception) grew returns to its first size.</summary>
    public void Clear()
    {
        Length = 0;
        if (_bytes.Length > 4 * _initialCapacity) _bytes = new byte[_initialCapacity];
    }

    private void Grow(int size)
    {
        var bigger = new byte[Math.Max(_bytes.Length * 2, Length + size)];
        _bytes.AsSpan(0, Length).CopyTo(bigger);
        _bytes = bigger;
    }
}
