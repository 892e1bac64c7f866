using System.Buffers;
using System.Globalization;
using System.Text;
using LlmGateway.Http;
using Serilog.Events;
using Serilog.Formatting.Json;
using Serilog.Parsing;

namespace LlmGateway.Telemetry;

/// <summary>
/// Writes a Serilog event as the JSON line Serilog's <c>JsonFormatter(renderMessage: true)</c> writes, byte for
/// byte, but as UTF-8 straight into the log writer's <see cref="LogLineBuffer"/>: no <c>StringWriter</c>, no
/// second pass to encode the text, no <c>TextWriter</c> call per token. Operators parse these lines, so the
/// output is Serilog's: same keys in the same order (Timestamp, Level, MessageTemplate, RenderedMessage,
/// TraceId, SpanId, Exception, Properties), same escaping (only <c>"</c>, <c>\</c> and control characters;
/// everything else raw), numbers in the invariant culture, doubles round-trip (<c>"R"</c>), NaN and infinities
/// as strings, date and time values in ISO 8601, structures with their <c>_typeTag</c>, dictionaries with
/// stringified keys.
/// <para>
/// What it does not render itself it hands, whole, to Serilog's formatter (<see cref="Fallbacks"/> counts
/// those): a message template with a format or an alignment (<c>{X:0.00}</c>, <c>{X,5}</c>; those also add
/// <c>Renderings</c>), a value of a type outside the list in <see cref="TryWriteScalar"/>, a property value of
/// a kind Serilog may add later. So a line only ever comes out as Serilog would write it; the gateway's own
/// events (the request line, start-up and batch lines, warnings with exceptions) all take the fast path.
/// <c>JsonLogLineFormatterTests</c> formats a wide set of events both ways and compares the bytes.
/// </para>
/// <para>
/// Measured (bench/LlmGateway.Benchmarks, <c>RequestLogBenchmarks</c>, the request line with the gateway's
/// properties, 2026-12-02): see <c>LoggingExtensions</c> for the numbers.
/// </para>
/// One instance per writer thread: it reuses its buffers, so it is not thread-safe.
/// </summary>
public sealed class JsonLogLineFormatter
{
    private static readonly SearchValues<char> s_mustEscape = SearchValues.Create(
        string.Create(34, 0, static (chars, _) =>
        {
            for (var i = 0; i < 32; i++) chars[i] = (char)i;
            chars[32] = '\\';
            chars[33] = '"';
        }));

    /// <summary>Printable ASCII but the quote and the backslash: what a JSON string holds as it is, byte for char.</summary>
    private static readonly SearchValues<char> s_plain = SearchValues.Create(
        string.Create(0x7F - 0x20 - 2, 0, static (chars, _) =>
        {
            var n = 0;
            for (var c = (char)0x20; c < 0x7F; c++)
            {
                if (c is not ('"' or '\\')) chars[n++] = c;
            }
        }));

    // Serilog writes the level with TextWriter.Write(object): the enum's name.
    private static readonly byte[][] s_levels =
        [.. Enum.GetValues<LogEventLevel>().OrderBy(l => (int)l).Select(l => Encoding.UTF8.GetBytes(l.ToString()))];

    private static readonly byte[] s_newLine = Encoding.UTF8.GetBytes(Environment.NewLine);

    private readonly JsonFormatter _serilog = new(renderMessage: true);
    private readonly StringWriter _fallbackText = new(CultureInfo.InvariantCulture);

    // Most lines are the request line, whose events have the same shape line after line: the same template object,
    // the same name strings in the same order, and for most fields the same value objects (RequestLog shares its
    // repeated values). What this formatter wrote for each of those objects is kept by position (a slot per
    // property, per message token) and copied when the next event holds the very same object there, instead of
    // escaping and formatting it again. Keyed by reference, never by value: a kept object is immutable (a string,
    // or a ScalarValue of a type TryWriteScalar formats), so its bytes cannot change; any other object misses and
    // is written as always. The same bytes either way, by construction.

    /// <summary>The event's properties in enumeration order, read once: the message and the properties both use them.</summary>
    private KeyValuePair<string, LogEventPropertyValue>[] _properties = new KeyValuePair<string, LogEventPropertyValue>[KeptPlaces];
    // A slot for each of the first places only, so that an event with thousands of properties does not leave thousands
    // of slots behind; any later place shares the one overflow slot (still keyed by reference, so still correct).
    private const int KeptPlaces = 64;
    private readonly Kept[] _names = new Kept[KeptPlaces];
    private readonly Kept[] _values = new Kept[KeptPlaces];
    private readonly Kept[] _rendered = new Kept[KeptPlaces];
    private Kept _overflow;
    private Kept _template;

    /// <summary>The template <see cref="_tokenProperties"/> was made for.</summary>
    private MessageTemplate? _mapped;

    /// <summary>Of <see cref="_mapped"/>'s tokens: the position in the last event of the property each names, and that name's string.</summary>
    private (int Position, string? Name)[] _tokenProperties = [];

    /// <summary>Events handed to Serilog's formatter because this one does not render them itself.</summary>
    public long Fallbacks { get; private set; }

    /// <summary>Appends the event's line (newline included) to <paramref name="output"/>.</summary>
    public void Format(LogEvent logEvent, LogLineBuffer output)
    {
        ArgumentNullException.ThrowIfNull(logEvent);
        var start = output.Length;
        if (TryWrite(logEvent, output)) return;

        output.Truncate(start);
        Fallbacks++;
        var text = _fallbackText.GetStringBuilder().Clear();
        _serilog.Format(logEvent, _fallbackText);
        // One string, encoded at once, so a surrogate pair never straddles two encoder calls. Rare: the
        // allocation does not matter.
        var line = text.ToString();
        text.Clear();
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(line.Length));
        output.Advance(Encoding.UTF8.GetBytes(line, span));
    }

    private bool TryWrite(LogEvent e, LogLineBuffer o)
    {
        if ((uint)e.Level >= (uint)s_levels.Length) return false;
        var count = ReadProperties(e);
        try
        {
            return TryWrite(e, count, o);
        }
        finally
        {
            // The event's values are not kept past its line (the slots keep only what repeats), nor the room an
            // outsized event needed.
            Array.Clear(_properties, 0, count);
            if (_properties.Length > 16 * KeptPlaces) _properties = new KeyValuePair<string, LogEventPropertyValue>[KeptPlaces];
        }
    }

    private bool TryWrite(LogEvent e, int count, LogLineBuffer o)
    {
        o.Write("{\"Timestamp\":\""u8);
        o.Advance(Format(e.Timestamp, o.GetSpan(64)));
        o.Write("\",\"Level\":\""u8);
        o.Write(s_levels[(int)e.Level]);
        o.Write("\",\"MessageTemplate\":"u8);
        var template = e.MessageTemplate;
        if (!ReferenceEquals(_mapped, template)) MapTemplate(template, count);
        if (!_template.TryCopy(template, o))
        {
            var start = o.Length;
            WriteQuoted(template.Text, o);
            _template.Keep(template, o, start);
        }
        o.Write(",\"RenderedMessage\":\""u8);
        // A template this formatter cannot render sends the event to Serilog; Format takes back what was written.
        if (!TryWriteMessage(e, count, o)) return false;
        o.Write((byte)'"');

        if (e.TraceId is { } traceId)
        {
            o.Write(",\"TraceId\":\""u8);
            WriteAscii(traceId.ToHexString(), o);
            o.Write((byte)'"');
        }
        if (e.SpanId is { } spanId)
        {
            o.Write(",\"SpanId\":\""u8);
            WriteAscii(spanId.ToHexString(), o);
            o.Write((byte)'"');
        }
        if (e.Exception is { } exception)
        {
            o.Write(",\"Exception\":"u8);
            WriteQuoted(exception.ToString(), o);
        }

        if (count != 0)
        {
            o.Write(",\"Properties\":{"u8);
            for (var i = 0; i < count; i++)
            {
                if (i != 0) o.Write((byte)',');
                var (name, value) = _properties[i];
                ref var kept = ref i < KeptPlaces ? ref _names[i] : ref _overflow;
                if (!kept.TryCopy(name, o))
                {
                    var start = o.Length;
                    WriteQuoted(name, o);
                    o.Write((byte)':');
                    kept.Keep(name, o, start);
                }
                if (!TryWriteValue(value, ref i < KeptPlaces ? ref _values[i] : ref _overflow, o)) return false;
            }
            o.Write((byte)'}');
        }

        o.Write((byte)'}');
        o.Write(s_newLine);
        return true;
    }

    /// <summary>Copies the event's properties into <see cref="_properties"/>, in the dictionary's own order as Serilog enumerates it.</summary>
    private int ReadProperties(LogEvent e)
    {
        var count = e.Properties.Count;
        if (_properties.Length < count)
        {
            var size = Math.Max(count, _properties.Length * 2);
            _properties = new KeyValuePair<string, LogEventPropertyValue>[size];
        }
        var n = 0;
        // The struct enumerator when it is a dictionary (it always is, from Serilog).
        if (e.Properties is Dictionary<string, LogEventPropertyValue> dictionary)
        {
            foreach (var property in dictionary) _properties[n++] = property;
        }
        else
        {
            foreach (var property in e.Properties) _properties[n++] = property;
        }
        return n;
    }

    /// <summary>A template other than the last one's: where each of its properties is in this event, looked up once.</summary>
    private void MapTemplate(MessageTemplate template, int count)
    {
        _mapped = template;
        var tokens = Tokens(template);
        if (_tokenProperties.Length < tokens.Length) _tokenProperties = new (int, string?)[tokens.Length];
        for (var t = 0; t < tokens.Length; t++)
        {
            _tokenProperties[t] = (-1, null);
            if (tokens[t] is not PropertyToken property) continue;
            for (var i = 0; i < count; i++)
            {
                if (string.Equals(_properties[i].Key, property.PropertyName, StringComparison.Ordinal))
                {
                    _tokenProperties[t] = (i, _properties[i].Key);
                    break;
                }
            }
        }
    }

    // Tokens is the template's own array behind IEnumerable: indexed, no enumerator per event.
    private static MessageTemplateToken[] Tokens(MessageTemplate template) =>
        template.Tokens as MessageTemplateToken[] ?? [.. template.Tokens];

    private static int Format(DateTimeOffset timestamp, Span<byte> destination)
    {
        timestamp.TryFormat(destination, out var written, "O", CultureInfo.InvariantCulture);
        return written;
    }

    /// <summary><see cref="TryWriteValue(LogEventPropertyValue, LogLineBuffer)"/>, copied from <paramref name="kept"/> when it holds this very value.</summary>
    private bool TryWriteValue(LogEventPropertyValue value, ref Kept kept, LogLineBuffer o)
    {
        if (kept.TryCopy(value, o)) return true;
        var start = o.Length;
        if (!TryWriteValue(value, o)) return false;
        kept.Keep(Immutable(value) ? value : null, o, start);
        return true;
    }

    /// <summary>
    /// A value whose bytes can never change: a scalar (every type <see cref="TryWriteScalar"/> writes is immutable), or
    /// a structure of scalars (Serilog's structures are). Not a dictionary: its keys are written by ToString() of any
    /// object.
    /// </summary>
    private static bool Immutable(LogEventPropertyValue value)
    {
        if (value is ScalarValue) return true;
        if (value is not StructureValue structure) return false;
        var properties = structure.Properties;
        for (var i = 0; i < properties.Count; i++)
        {
            if (properties[i].Value is not ScalarValue) return false;
        }
        return true;
    }

    /// <summary>Serilog's <c>JsonValueFormatter</c> (type tag <c>_typeTag</c>), value by value.</summary>
    private bool TryWriteValue(LogEventPropertyValue value, LogLineBuffer o)
    {
        switch (value)
        {
            case ScalarValue scalar:
                return TryWriteScalar(scalar.Value, o);

            case SequenceValue sequence:
                o.Write((byte)'[');
                var elements = sequence.Elements;
                for (var i = 0; i < elements.Count; i++)
                {
                    if (i != 0) o.Write((byte)',');
                    if (!TryWriteValue(elements[i], o)) return false;
                }
                o.Write((byte)']');
                return true;

            case StructureValue structure:
                o.Write((byte)'{');
                var properties = structure.Properties;
                for (var i = 0; i < properties.Count; i++)
                {
                    if (i != 0) o.Write((byte)',');
                    WriteQuoted(properties[i].Name, o);
                    o.Write((byte)':');
                    if (!TryWriteValue(properties[i].Value, o)) return false;
                }
                if (structure.TypeTag is { } typeTag)
                {
                    // Serilog writes its (nullable) delimiter here: nothing when the structure has no properties.
                    if (properties.Count != 0) o.Write((byte)',');
                    o.Write("\"_typeTag\":"u8);
                    WriteQuoted(typeTag, o);
                }
                o.Write((byte)'}');
                return true;

            case DictionaryValue dictionary:
                o.Write((byte)'{');
                var firstElement = true;
                foreach (var (key, element) in dictionary.Elements)
                {
                    if (!firstElement) o.Write((byte)',');
                    firstElement = false;
                    WriteQuoted((key.Value ?? "null").ToString()!, o);
                    o.Write((byte)':');
                    if (!TryWriteValue(element, o)) return false;
                }
                o.Write((byte)'}');
                return true;

            default:
                return false;
        }
    }

    /// <summary>
    /// The scalar types Serilog's <c>JsonValueFormatter.FormatLiteralValue</c> knows, written the same way; enums
    /// and Guids as their <c>ToString()</c> in quotes, as Serilog writes any other object. Anything else (DateOnly,
    /// TimeOnly, Uri, a type a later Serilog may special-case) goes to Serilog.
    /// </summary>
    private static bool TryWriteScalar(object? value, LogLineBuffer o)
    {
        switch (value)
        {
            case null: o.Write("null"u8); return true;
            case string s: WriteQuoted(s, o); return true;
            case int v: o.Advance(Invariant(v, o)); return true;
            case uint v: o.Advance(Invariant(v, o)); return true;
            case long v: o.Advance(Invariant(v, o)); return true;
            case ulong v: o.Advance(Invariant(v, o)); return true;
            case decimal v: WriteDecimal(v, o); return true;
            case byte v: o.Advance(Invariant(v, o)); return true;
            case sbyte v: o.Advance(Invariant(v, o)); return true;
            case short v: o.Advance(Invariant(v, o)); return true;
            case ushort v: o.Advance(Invariant(v, o)); return true;
            case double v when TryWriteThousandths(v, o): return true;
            case double v when double.IsFinite(v): o.Advance(RoundTrip(v, o)); return true;
            case double v: WriteQuoted(v.ToString(CultureInfo.InvariantCulture), o); return true;
            case float v when float.IsFinite(v): o.Advance(RoundTrip(v, o)); return true;
            case float v: WriteQuoted(v.ToString(CultureInfo.InvariantCulture), o); return true;
            case bool v: o.Write(v ? "true"u8 : "false"u8); return true;
            case char v: WriteQuoted(v.ToString(), o); return true;
            case DateTime v: o.Write((byte)'"'); o.Advance(Iso(v, o)); o.Write((byte)'"'); return true;
            case DateTimeOffset v: o.Write((byte)'"'); o.Advance(Iso(v, o)); o.Write((byte)'"'); return true;
            case TimeSpan v: o.Write((byte)'"'); o.Advance(Constant(v, o)); o.Write((byte)'"'); return true;
            case Enum or Guid: WriteQuoted(value.ToString() ?? "", o); return true;
            default: return false;
        }
    }

    private static int Invariant<T>(T value, LogLineBuffer o) where T : IUtf8SpanFormattable
    {
        value.TryFormat(o.GetSpan(64), out var written, default, CultureInfo.InvariantCulture);
        return written;
    }

    private static int RoundTrip<T>(T value, LogLineBuffer o) where T : IUtf8SpanFormattable
    {
        value.TryFormat(o.GetSpan(64), out var written, "R", CultureInfo.InvariantCulture);
        return written;
    }

    /// <summary>
    /// A double that is exactly the double nearest to a multiple of 0.001 (every duration the gateway logs is rounded
    /// so) as its shortest round-trip text, which is what both <c>"R"</c> and the default format write, without their
    /// general algorithm (the formatter's next largest frame in perf); see <see cref="Thousandths.TryOf"/>. False,
    /// nothing written, otherwise.
    /// </summary>
    private static bool TryWriteThousandths(double value, LogLineBuffer o)
    {
        if (!Thousandths.TryOf(value, out var thousandths)) return false;
        o.Advance(Thousandths.Write(thousandths, o.GetSpan(Thousandths.MaxLength)));
        return true;
    }

    /// <summary>A decimal as its invariant default text: every digit of its scale, trailing zeros kept.</summary>
    private static void WriteDecimal(decimal value, LogLineBuffer o) =>
        o.Advance(Usage.DecimalParts.WriteInvariant(value, o.GetSpan(Usage.DecimalParts.MaxPositionalLength)));

    private static int Iso<T>(T value, LogLineBuffer o) where T : IUtf8SpanFormattable
    {
        value.TryFormat(o.GetSpan(64), out var written, "O", null);
        return written;
    }

    private static int Constant(TimeSpan value, LogLineBuffer o)
    {
        value.TryFormat(o.GetSpan(64), out var written, default, null);
        return written;
    }

    /// <summary>
    /// <c>MessageTemplate.Render(properties)</c>, escaped as the string it would be, written straight into the line (no
    /// rendered text kept to be scanned and escaped a second time), for templates whose properties carry neither a
    /// format nor an alignment and whose values are scalars of the types <see cref="TryWriteRendered"/> knows; false
    /// otherwise, part of it written. A property is found at its position in the template's first event when the
    /// same name string is there again (the request line's always is), else looked up by name.
    /// </summary>
    private bool TryWriteMessage(LogEvent e, int count, LogLineBuffer o)
    {
        var tokens = Tokens(e.MessageTemplate);
        for (var t = 0; t < tokens.Length; t++)
        {
            var token = tokens[t];
            if (token is TextToken text)
            {
                WriteEscaped(text.Text, o);
                continue;
            }
            if (token is not PropertyToken property || property.Format is not null || property.Alignment.HasValue) return false;
            var (position, name) = _tokenProperties[t];
            LogEventPropertyValue? value;
            if (position >= 0 && position < count && ReferenceEquals(_properties[position].Key, name))
            {
                value = _properties[position].Value;
            }
            else if (!e.Properties.TryGetValue(property.PropertyName, out value))
            {
                WriteEscaped(property.ToString(), o); // the raw token, braces and all
                continue;
            }
            if (value is not ScalarValue scalar) return false;
            ref var kept = ref t < KeptPlaces ? ref _rendered[t] : ref _overflow;
            if (kept.TryCopy(scalar, o)) continue;
            var start = o.Length;
            if (!TryWriteRendered(scalar.Value, o)) return false;
            kept.Keep(scalar, o, start);
        }
        return true;
    }

    /// <summary><c>ScalarValue.Render</c> without a format or format provider, escaped: none of these renderings but a string's needs it.</summary>
    private static bool TryWriteRendered(object? value, LogLineBuffer o)
    {
        switch (value)
        {
            case null: o.Write("null"u8); return true;
            case string s: WriteRenderedString(s, o); return true;
            case bool v: o.Write(v ? "True"u8 : "False"u8); return true;
            case int v: o.Advance(Invariant(v, o)); return true;
            case long v: o.Advance(Invariant(v, o)); return true;
            case double v when TryWriteThousandths(v, o): return true;
            case double v: o.Advance(Invariant(v, o)); return true;
            case decimal v: WriteDecimal(v, o); return true;
            case uint v: o.Advance(Invariant(v, o)); return true;
            case ulong v: o.Advance(Invariant(v, o)); return true;
            case short v: o.Advance(Invariant(v, o)); return true;
            case ushort v: o.Advance(Invariant(v, o)); return true;
            case byte v: o.Advance(Invariant(v, o)); return true;
            case sbyte v: o.Advance(Invariant(v, o)); return true;
            case float v: o.Advance(Invariant(v, o)); return true;
            default: return false;
        }
    }

    /// <summary>
    /// A string as a message renders it, in quotes with its quotes (only those) backslashed, then escaped for the
    /// line: <c>\"</c> around it, <c>\\\"</c> for each quote in it.
    /// </summary>
    private static void WriteRenderedString(ReadOnlySpan<char> s, LogLineBuffer o)
    {
        o.Write("\\\""u8);
        while (true)
        {
            var quote = s.IndexOf('"');
            if (quote < 0) break;
            WriteEscaped(s[..quote], o);
            o.Write("\\\\\\\""u8);
            s = s[(quote + 1)..];
        }
        WriteEscaped(s, o);
        o.Write("\\\""u8);
    }

    /// <summary>Serilog's <c>JsonValueFormatter.WriteQuotedJsonString</c>, encoded as UTF-8 as it goes.</summary>
    private static void WriteQuoted(ReadOnlySpan<char> s, LogLineBuffer o)
    {
        o.Write((byte)'"');
        WriteEscaped(s, o);
        o.Write((byte)'"');
    }

    /// <summary>The inside of a JSON string: <see cref="WriteQuoted"/> without the quotes.</summary>
    private static void WriteEscaped(ReadOnlySpan<char> s, LogLineBuffer o)
    {
        // Most strings are printable ASCII without a quote or backslash, wholly or up to a point: that run is found
        // and narrowed to bytes by two vectorized passes, where a loop of one char at a time was the formatter's
        // largest frame in perf.
        var end = s.IndexOfAnyExcept(s_plain);
        var plain = end < 0 ? s : s[..end];
        if (!plain.IsEmpty)
        {
            Ascii.FromUtf16(plain, o.GetSpan(plain.Length), out var narrowed);
            o.Advance(narrowed);
        }
        if (end < 0) return;

        // The rest from the first character that is not plain ASCII (cut before it, so a surrogate pair stays whole).
        s = s[end..];
        while (true)
        {
            var i = s.IndexOfAny(s_mustEscape);
            var clean = i < 0 ? s : s[..i];
            if (!clean.IsEmpty)
            {
                // Cut only at an ASCII character, so a surrogate pair is never split between two calls.
                o.Advance(Encoding.UTF8.GetBytes(clean, o.GetSpan(Encoding.UTF8.GetMaxByteCount(clean.Length))));
            }
            if (i < 0) break;
            WriteEscape(s[i], o);
            s = s[(i + 1)..];
        }
    }

    private static void WriteEscape(char c, LogLineBuffer o)
    {
        switch (c)
        {
            case '"': o.Write("\\\""u8); break;
            case '\\': o.Write("\\\\"u8); break;
            case '\n': o.Write("\\n"u8); break;
            case '\r': o.Write("\\r"u8); break;
            case '\f': o.Write("\\f"u8); break;
            case '\t': o.Write("\\t"u8); break;
            default:
                o.Write("\\u"u8);
                ((int)c).TryFormat(o.GetSpan(4), out var written, "X4", CultureInfo.InvariantCulture);
                o.Advance(written);
                break;
        }
    }

    private static void WriteAscii(string ascii, LogLineBuffer o) =>
        o.Advance(Encoding.UTF8.GetBytes(ascii, o.GetSpan(ascii.Length)));

    /// <summary>The bytes last written for one object at one place in the line, to be copied when that object comes again.</summary>
    private struct Kept
    {
        /// <summary>Longer renderings are written each time: the request line's repeated ones are far shorter.</summary>
        private const int MaxLength = 128;

        public object? Key;
        private byte[]? _bytes;
        private int _length;

        public readonly bool TryCopy(object key, LogLineBuffer o)
        {
            if (!ReferenceEquals(Key, key)) return false;
            o.Write(_bytes.AsSpan(0, _length));
            return true;
        }

        /// <summary>Keeps what was written since <paramref name="start"/> as <paramref name="key"/>'s bytes; null keeps nothing.</summary>
        public void Keep(object? key, LogLineBuffer o, int start)
        {
            var written = o.WrittenSpan[start..];
            if (key is null || written.Length > MaxLength)
            {
                Key = null;
                return;
            }
            _bytes ??= new byte[MaxLength];
            written.CopyTo(_bytes);
            _length = written.Length;
            Key = key;
        }
    }
}
