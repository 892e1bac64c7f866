using System.Buffers;
using System.Runtime.CompilerServices;

namespace LlmGateway.Streaming;

/// <summary>
/// Reads lines (LF or CRLF) from an upstream body with one pooled buffer and no per-line allocation.
/// A returned line is valid until the next call. The base of both SSE and NDJSON framing.
/// <para>
/// Two ways to read. <see cref="ReadLineAsync"/> is the simple one. A framing reader on a hot path takes lines
/// with <see cref="TryReadLine"/> and, when none is buffered, awaits the body itself (<see cref="FillAsync"/>,
/// then <see cref="Filled"/>): a stream waits on its upstream once per chunk, and each async level between
/// that wait and the client is a state machine resumed per chunk, so the SSE reader awaits the socket directly
/// instead of through a line-reading level of its own.
/// </para>
/// </summary>
public sealed class LineReader(Stream stream, int maxLineBytes = LineReader.DefaultMaxLineBytes) : IDisposable
{
    public const int DefaultMaxLineBytes = 16 * 1024 * 1024;

    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private int _start;
    private int _end;
    // Where the search for the next newline resumes: the bytes before it, since _start, hold none.
    private int _scanned;
    private bool _eof;

    /// <summary>The body has ended and every line of it was taken.</summary>
    public bool AtEnd => _eof && _start == _end;

    /// <summary>What was read from the body and not yet taken as lines; valid until the next call.</summary>
    public ReadOnlySpan<byte> Unread => _buffer.AsSpan(_start, _end - _start);

    /// <summary>
    /// The next buffered line without its terminator; after the end of the body, the last line even without
    /// one. False when no whole line is buffered (read more with <see cref="FillAsync"/>) or at the end (<see cref="AtEnd"/>).
    /// </summary>
    public bool TryReadLine(out ReadOnlyMemory<byte> line)
    {
        var newline = Array.IndexOf(_buffer, (byte)'\n', _scanned, _end - _scanned);
        if (newline >= 0)
        {
            var lineEnd = newline > _start && _buffer[newline - 1] == (byte)'\r' ? newline - 1 : newline;
            line = new ReadOnlyMemory<byte>(_buffer, _start, lineEnd - _start);
            _start = _scanned = newline + 1;
            return true;
        }
        _scanned = _end;
        if (_eof && _start < _end)
        {
            // A last line without a terminator still counts.
            line = new ReadOnlyMemory<byte>(_buffer, _start, _end - _start);
            _start = _scanned = _end;
            return true;
        }
        line = default;
        return false;
    }

    /// <summary>
    /// Reads more of the body into the buffer (moving the partial line to its start, or growing it up to the
    /// line limit first); hand the count to <see cref="Filled"/> before the next <see cref="TryReadLine"/>.
    /// </summary>
    public ValueTask<int> FillAsync(CancellationToken cancellationToken)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _scanned -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            if (_buffer.Length >= maxLineBytes) throw new InvalidDataException($"An upstream line is longer than {maxLineBytes} bytes.");
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, maxLineBytes));
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        return stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
    }

    /// <summary>What <see cref="FillAsync"/> read; 0 is the end of the body.</summary>
    public void Filled(int read)
    {
        if (read == 0) _eof = true;
        _end += read;
    }

    /// <summary>The next line without its terminator, or null at the end of the body.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryReadLine(out var line)) return line;
            if (_eof) return null;
            Filled(await FillAsync(cancellationToken).ConfigureAwait(false));
        }
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
    }
}
