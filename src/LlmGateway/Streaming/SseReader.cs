using System.Buffers;
using System.Runtime.CompilerServices;

namespace LlmGateway.Streaming;

/// <summary>
/// Server-sent events from an upstream body, per the WHATWG framing: <c>event:</c> and <c>data:</c>
/// fields, several data lines joined by a newline, comments (<c>:</c>) ignored, an event dispatched
/// at a blank line. Read one event at a time so each read can carry its own timeout.
/// </summary>
public sealed class SseReader(Stream stream) : IDisposable
{
    private readonly LineReader _lines = new(stream);
    private readonly ArrayBufferWriter<byte> _data = new(4096);
    private readonly ArrayBufferWriter<byte> _eventType = new(32);
    // The event being read has a data line; kept across fills, as an event's lines can come in several reads.
    private bool _hasData;
    // The last TryRead handed an event out: the next one starts a new event.
    private bool _dispatched = true;

    /// <summary>The current event's data (joined data lines); valid until the next read.</summary>
    public ReadOnlyMemory<byte> Data => _data.WrittenMemory;

    /// <summary>The current event's type, empty when the event named none (the default "message").</summary>
    public ReadOnlySpan<byte> EventType => _eventType.WrittenSpan;

    /// <summary>
    /// A whole event with data is already read from the body (a data line with a value, then the blank line that ends
    /// it), so the next <see cref="ReadAsync"/> takes it without waiting on the upstream. A relay may then leave what it
    /// wrote unflushed and send both in one write: events that arrived together (a stream's last chunk, its usage and
    /// [DONE] come in one read) go out together, and nothing waits for bytes that have not arrived.
    /// </summary>
    public bool HasBufferedEvent
    {
        get
        {
            var rest = _lines.Unread;
            var sawData = false;
            while (true)
            {
                var newline = rest.IndexOf((byte)'\n');
                if (newline < 0) return false;
                var line = rest[..newline];
                if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
                if (line.IsEmpty)
                {
                    if (sawData) return true;
                }
                else if (line.StartsWith("data:"u8))
                {
                    var value = line[5..];
                    if (!value.IsEmpty && value[0] == (byte)' ') value = value[1..];
                    sawData |= !value.IsEmpty;
                }
                rest = rest[(newline + 1)..];
            }
        }
    }

    /// <summary>Moves to the next event; false at the end of the body.</summary>
    /// <remarks>
    /// Takes buffered lines synchronously and awaits the body itself when it needs more (see <see cref="LineReader"/>):
    /// one async level per chunk fewer than awaiting a line reader's own async read.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (!TryRead())
        {
            if (AtEnd) return false;
            Filled(await FillAsync(cancellationToken).ConfigureAwait(false));
        }
        return true;
    }

    /// <summary>
    /// Moves to the next event if the lines that end it are already read from the body (<see cref="ReadAsync"/> without
    /// the wait). False when they are not: at the end of the body (<see cref="AtEnd"/>), or else read more with
    /// <see cref="FillAsync"/> and <see cref="Filled"/>, then try again; the lines taken so far stay part of the event.
    /// A framing reader on a hot path awaits the body itself this way, as this reader does with its lines: one async
    /// level per chunk fewer than awaiting <see cref="ReadAsync"/>.
    /// </summary>
    public bool TryRead()
    {
        if (_dispatched)
        {
            // The event before was handed out: its data stays valid until here.
            _data.ResetWrittenCount();
            _eventType.ResetWrittenCount();
            _hasData = false;
            _dispatched = false;
        }
        while (_lines.TryReadLine(out var line))
        {
            if (Take(line.Span, ref _hasData)) return _dispatched = true;
        }
        // A final event without its blank line is still delivered.
        return _dispatched = _lines.AtEnd && _hasData;
    }

    /// <summary>The body has ended and every event of it was read.</summary>
    public bool AtEnd => _lines.AtEnd && !_hasData;

    /// <inheritdoc cref="LineReader.FillAsync"/>
    public ValueTask<int> FillAsync(CancellationToken cancellationToken) => _lines.FillAsync(cancellationToken);

    /// <inheritdoc cref="LineReader.Filled"/>
    public void Filled(int read) => _lines.Filled(read);

    /// <summary>One line of the event being read; true when it ends an event that has data (a blank line).</summary>
    private bool Take(ReadOnlySpan<byte> span, ref bool hasData)
    {
        if (span.IsEmpty)
        {
            if (hasData) return true;
            _eventType.ResetWrittenCount();
            return false;
        }
        if (span[0] == (byte)':') return false;

        var colon = span.IndexOf((byte)':');
        var field = colon < 0 ? span : span[..colon];
        var value = colon < 0 ? [] : span[(colon + 1)..];
        if (!value.IsEmpty && value[0] == (byte)' ') value = value[1..];

        if (field.SequenceEqual("data"u8))
        {
            if (hasData) _data.Write("\n"u8);
            _data.Write(value);
            hasData = true;
        }
        else if (field.SequenceEqual("event"u8))
        {
            _eventType.ResetWrittenCount();
            _eventType.Write(value);
        }
        return false;
    }

    public void Dispose() => _lines.Dispose();
}
