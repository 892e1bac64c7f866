using System.Buffers;

namespace LlmGateway.PassThrough;

/// <summary>
/// Finds the usage in a server-sent event stream as its bytes go by, for the record of a streamed
/// pass-through answer. The bytes come in whatever pieces the copy hands over, so lines (ended by LF,
/// CRLF or CR) may be cut anywhere; only <c>data:</c> lines are looked at, and only those that can
/// still be the usage line are copied (into one pooled buffer, at most <see cref="MaxLineBytes"/>):
/// <list type="bullet">
/// <item>The Responses API ends with <c>response.completed</c> (or <c>response.incomplete</c>,
/// <c>response.failed</c>) carrying <c>response.model</c> and <c>response.usage</c>; its other events
/// (deltas, <c>response.created</c>) say which they are in their first bytes and are dropped there.</item>
/// <item>A chat-completions-style stream (any other OpenAI-compatible stream) ends with a chunk
/// whose top-level <c>usage</c> is an object, where the others have <c>"usage":null</c> or none.</item>
/// </list>
/// The last data line whose JSON carries usage wins; it is read when its line ends, so only the
/// result is kept, never a second line. Each data line is read on its own: OpenAI puts each event's
/// JSON on one line, and an event split over several data lines is not read.
/// </summary>
public sealed class SseUsageFinder : IDisposable
{
    /// <summary>
    /// The longest line kept. The usage event of a Responses stream repeats the whole output, so this
    /// is the JSON answer's limit; a longer line is skipped (and counted in <see cref="SkippedLines"/>).
    /// </summary>
    public const int MaxLineBytes = PassThroughHandler.MaxUsageBodyBytes;

    /// <summary>How much of a data line is seen before deciding whether it can be the usage line.</summary>
    private const int DecideBytes = 128;

    private const int InitialBuffer = 4096;

    private byte[] _line = [];
    private int _length;
    private LineState _state;
    private bool _afterCr;

    private enum LineState : byte
    {
        /// <summary>Copying the start of a line to see what it is.</summary>
        Undecided,
        /// <summary>A data line that can carry usage: copied to its end.</summary>
        Keeping,
        /// <summary>Not a data line, not one that carries usage, or too long: passed over to its end.</summary>
        Skipping,
    }

    /// <summary>What the last data line with usage said; default while none was seen.</summary>
    public ResponseUsage Usage { get; private set; }

    /// <summary>Data lines that could have carried usage but were longer than <see cref="MaxLineBytes"/>.</summary>
    public int SkippedLines { get; private set; }

    /// <summary>Looks at the next bytes of the stream; never changes them.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (_afterCr)
        {
            // A CR ended the last piece: an LF right after it belongs to the same line end.
            _afterCr = false;
            if (!bytes.IsEmpty && bytes[0] == (byte)'\n') bytes = bytes[1..];
        }
        while (!bytes.IsEmpty)
        {
            var end = bytes.IndexOfAny((byte)'\n', (byte)'\r');
            if (end < 0)
            {
                Take(bytes);
                return;
            }
            Take(bytes[..end]);
            EndLine();
            if (bytes[end] == (byte)'\r')
            {
                if (end + 1 == bytes.Length) _afterCr = true;
                else if (bytes[end + 1] == (byte)'\n') end++;
            }
            bytes = bytes[(end + 1)..];
        }
    }

    /// <summary>Part of the current line.</summary>
    private void Take(ReadOnlySpan<byte> part)
    {
        if (part.IsEmpty || _state == LineState.Skipping) return;
        if (_state == LineState.Undecided)
        {
            // Most lines are decided on the piece they start in, before a byte is copied.
            if (_length == 0) _state = Decide(part, lineEnded: false);
            if (_state == LineState.Undecided)
            {
                // Undecided means fewer than DecideBytes seen: copy up to that many and look again.
                var head = Math.Min(part.Length, DecideBytes - _length);
                Keep(part[..head]);
                part = part[head..];
                _state = Decide(_line.AsSpan(0, _length), lineEnded: false);
            }
        }
        if (part.IsEmpty || _state == LineState.Skipping) return;
        if (_length + part.Length > MaxLineBytes)
        {
            SkippedLines++;
            _state = LineState.Skipping;
            _length = 0;
            return;
        }
        Keep(part);
    }

    private void EndLine()
    {
        var line = _line.AsSpan(0, _length);
        var state = _state == LineState.Undecided ? Decide(line, lineEnded: true) : _state;
        if (state == LineState.Keeping && HasUsageObject(line))
        {
            var found = ResponseUsage.ReadEvent(Payload(line));
            if (!found.Usage.IsEmpty) Usage = found;
        }
        _length = 0;
        _state = LineState.Undecided;
    }

    private void Keep(ReadOnlySpan<byte> part)
    {
        if (_length + part.Length > _line.Length)
        {
            var size = Math.Max(InitialBuffer, _line.Length);
            while (size < _length + part.Length) size *= 2;
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(size, MaxLineBytes));
            _line.AsSpan(0, _length).CopyTo(bigger);
            if (_line.Length > 0) ArrayPool<byte>.Shared.Return(_line);
            _line = bigger;
        }
        part.CopyTo(_line.AsSpan(_length));
        _length += part.Length;
    }

    /// <summary>
    /// From a line's first bytes (at least <see cref="DecideBytes"/> of them unless the line ended):
    /// whether it can be the usage line. Responses events name their type first.
    /// </summary>
    private static LineState Decide(ReadOnlySpan<byte> start, bool lineEnded)
    {
        if (!lineEnded && start.Length < DecideBytes)
        {
            // Too little seen for the type: only a line that can't be a data line is known yet.
            var n = Math.Min(start.Length, 5);
            return start[..n].SequenceEqual("data:"u8[..n]) ? LineState.Undecided : LineState.Skipping;
        }
        if (!start.StartsWith("data:"u8)) return LineState.Skipping;
        var head = start[..Math.Min(start.Length, DecideBytes)];
        var type = head.IndexOf("\"type\":"u8);
        if (type < 0) return LineState.Keeping;
        var value = head[(type + 7)..].TrimStart((byte)' ');
        if (!value.StartsWith("\"response."u8)) return LineState.Keeping;
        value = value[10..];
        if (value.Length < 11 && !lineEnded) return LineState.Keeping; // the name is cut off: let the line's end decide
        return value.StartsWith("completed\""u8) || value.StartsWith("incomplete\""u8) || value.StartsWith("failed\""u8)
            ? LineState.Keeping
            : LineState.Skipping;
    }

    /// <summary>
    /// Whether a <c>"usage"</c> key with an object value is on the line: the cheap test before a
    /// chunk is parsed, since chat chunks say <c>"usage":null</c> until the last.
    /// </summary>
    private static bool HasUsageObject(ReadOnlySpan<byte> line)
    {
        while (true)
        {
            var at = line.IndexOf("\"usage\""u8);
            if (at < 0) return false;
            line = line[(at + 7)..];
            var rest = line.TrimStart(" \t"u8);
            if (rest.IsEmpty || rest[0] != (byte)':') continue;
            rest = rest[1..].TrimStart(" \t"u8);
            if (!rest.IsEmpty && rest[0] == (byte)'{') return true;
        }
    }

    /// <summary>The JSON of a data line: after <c>data:</c> and the one optional space SSE allows.</summary>
    private static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> line)
    {
        var payload = line[5..];
        return !payload.IsEmpty && payload[0] == (byte)' ' ? payload[1..] : payload;
    }

    public void Dispose()
    {
        if (_line.Length > 0) ArrayPool<byte>.Shared.Return(_line);
        _line = [];
        _length = 0;
    }
}
