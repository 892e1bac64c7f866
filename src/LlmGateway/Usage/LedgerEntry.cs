using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmGateway.Usage;

/// <summary>
/// One finished request in the usage ledger: who, what, where, how much, how fast. Never prompt or
/// completion text, never a secret. Stored as one compact JSON object per record.
/// </summary>
public sealed class LedgerEntry
{
    /// <summary>When the request started (UTC).</summary>
    public DateTimeOffset Time { get; set; }
    public string RequestId { get; set; } = "";
    public string? KeyId { get; set; }
    public string TaskType { get; set; } = "";
    public string Model { get; set; } = "";
    public string Provider { get; set; } = "";
    public bool Stream { get; set; }
    public int Status { get; set; }
    public string Outcome { get; set; } = "";
    public string? ErrorCode { get; set; }
    public int PromptTokens { get; set; }
    public int CompletionTokens { get; set; }
    public int CachedTokens { get; set; }
    public decimal CostUsd { get; set; }
    public double LatencyMs { get; set; }
    public double? TtftMs { get; set; }
    public string Cache { get; set; } = "";
    public int Attempts { get; set; }

    /// <summary>Every field from <paramref name="r"/>; the ledger fills one entry per thread, request after request.</summary>
    internal void Set(RequestRecord r)
    {
        Time = r.StartedAt;
        RequestId = r.RequestId;
        KeyId = r.KeyId;
        TaskType = r.TaskType;
        Model = r.Model;
        Provider = r.Provider;
        Stream = r.Stream;
        Status = r.Status;
        Outcome = r.Outcome;
        ErrorCode = r.ErrorCode;
        PromptTokens = r.Usage.Prompt;
        CompletionTokens = r.Usage.Completion;
        CachedTokens = r.Usage.CachedPrompt;
        CostUsd = r.CostUsd;
        LatencyMs = Math.Round(r.Duration.TotalMilliseconds, 3);
        TtftMs = r.TimeToFirstToken is { } t ? Math.Round(t.TotalMilliseconds, 3) : null;
        Cache = r.CacheResult;
        Attempts = r.Attempts;
    }
}

/// <summary>
/// A ledger entry as the JSON <see cref="UsageJsonContext"/> writes, byte for byte, for the records every request makes:
/// strings that need no escaping, durations that are whole thousandths of a millisecond (as <see cref="LedgerEntry.Set"/>
/// rounds them). Written straight into a per-thread buffer, without the serializer's writer, its per-property state and
/// its general number formatting; any other entry goes through the serializer. <c>LedgerJsonTests</c> compares the two
/// over random entries. A property added to <see cref="LedgerEntry"/> must be added here too (those tests fail until
/// it is).
/// </summary>
internal static class LedgerJson
{
    /// <summary>The ASCII the serializer's default encoder writes as it is (not <c>"</c>, <c>\</c>, <c>&amp;</c>, <c>'</c>, <c>+</c>, <c>&lt;</c>, <c>&gt;</c>, <c>`</c>, nor controls).</summary>
    private static readonly SearchValues<char> s_plain = SearchValues.Create(
        [.. Enumerable.Range(0, 0x80).Select(c => (char)c).Where(c => !JavaScriptEncoder.Default.WillEncode(c))]);

    /// <summary>The fixed part of an entry (names, punctuation, numbers) is under 400 bytes; its strings are added to that.</summary>
    private const int BufferSize = 1024;

    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>
    /// The entry's JSON in this thread's buffer, valid until the thread's next call (or, larger than the buffer, in a new array):
    /// for a store that copies it at once.
    /// </summary>
    public static ReadOnlySpan<byte> SerializeToBuffer(LedgerEntry e)
    {
        var buffer = t_buffer ??= new byte[BufferSize];
        return TryWrite(e, buffer, out var length)
            ? buffer.AsSpan(0, length)
            : JsonSerializer.SerializeToUtf8Bytes(e, UsageJsonContext.Default.LedgerEntry);
    }

    /// <summary>The entry's JSON in an array of its own, for a record that waits in a queue.</summary>
    public static byte[] Serialize(LedgerEntry e) => SerializeToBuffer(e).ToArray();

    internal static bool TryWrite(LedgerEntry e, Span<byte> buffer, out int length)
    {
        length = 0;
        if (400 + e.RequestId.Length + (e.KeyId?.Length ?? 0) + e.TaskType.Length + e.Model.Length + e.Provider.Length
            + e.Outcome.Length + (e.ErrorCode?.Length ?? 0) + e.Cache.Length > buffer.Length) return false;
        var w = new Writer(buffer);
        w.Raw("{\"time\":\""u8);
        w.Time(e.Time);
        w.Raw("\",\"request_id\":"u8);
        if (!w.String(e.RequestId)) return false;
        if (e.KeyId is not null)
        {
            w.Raw(",\"key_id\":"u8);
            if (!w.String(e.KeyId)) return false;
        }
        w.Raw(",\"task_type\":"u8);
        if (!w.String(e.TaskType)) return false;
        w.Raw(",\"model\":"u8);
        if (!w.String(e.Model)) return false;
        w.Raw(",\"provider\":"u8);
        if (!w.String(e.Provider)) return false;
        w.Raw(e.Stream ? ",\"stream\":true,\"status\":"u8 : ",\"stream\":false,\"status\":"u8);
        w.Number(e.Status);
        w.Raw(",\"outcome\":"u8);
        if (!w.String(e.Outcome)) return false;
        if (e.ErrorCode is not null)
        {
            w.Raw(",\"error_code\":"u8);
            if (!w.String(e.ErrorCode)) return false;
        }
        w.Raw(",\"prompt_tokens\":"u8);
        w.Number(e.PromptTokens);
        w.Raw(",\"completion_tokens\":"u8);
        w.Number(e.CompletionTokens);
        w.Raw(",\"cached_tokens\":"u8);
        w.Number(e.CachedTokens);
        w.Raw(",\"cost_usd\":"u8);
        w.Number(e.CostUsd);
        w.Raw(",\"latency_ms\":"u8);
        if (!w.Thousandths(e.LatencyMs)) return false;
        if (e.TtftMs is { } ttft)
        {
            w.Raw(",\"ttft_ms\":"u8);
            if (!w.Thousandths(ttft)) return false;
        }
        w.Raw(",\"cache\":"u8);
        if (!w.String(e.Cache)) return false;
        w.Raw(",\"attempts\":"u8);
        w.Number(e.Attempts);
        w.Raw("}"u8);
        length = w.Length;
        return true;
    }

    /// <summary>Appends to a buffer the caller made large enough.</summary>
    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;

        public int Length { get; private set; }

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_buffer[Length..]);
            Length += bytes.Length;
        }

        /// <summary>False, for the serializer to write, when the string holds anything its encoder escapes.</summary>
        public bool String(string s)
        {
            if (s.AsSpan().ContainsAnyExcept(s_plain)) return false;
            _buffer[Length++] = (byte)'"';
            Ascii.FromUtf16(s, _buffer[Length..], out var written);
            Length += written;
            _buffer[Length++] = (byte)'"';
            return true;
        }

        public void Number<T>(T value) where T : IUtf8SpanFormattable
        {
            value.TryFormat(_buffer[Length..], out var written, default, CultureInfo.InvariantCulture);
            Length += written;
        }

        /// <summary>A cost as decimal.TryFormat writes it, which is what the serializer writes, without the general formatter for a cost.</summary>
        public void Number(decimal value) => Length += DecimalParts.WriteInvariant(value, _buffer[Length..]);

        /// <summary>
        /// A duration as <see cref="LedgerEntry.Set"/> rounds it, as its shortest round-trip text, which is what the
        /// serializer writes (<see cref="Http.Thousandths.TryOf"/> says why); false for any other.
        /// </summary>
        public bool Thousandths(double value)
        {
            if (!Http.Thousandths.TryOf(value, out var thousandths)) return false;
            Length += Http.Thousandths.Write(thousandths, _buffer[Length..]);
            return true;
        }

        /// <summary>ISO 8601 ("O") with the fraction's trailing zeros cut, the point too when nothing is left: as the serializer writes it.</summary>
        public void Time(DateTimeOffset value)
        {
            var into = _buffer[Length..];
            value.TryFormat(into, out var written, "O", CultureInfo.InvariantCulture);
            // yyyy-MM-ddTHH:mm:ss.fffffff then the offset: the seven digits start at 20.
            var end = 27;
            while (end > 20 && into[end - 1] == (byte)'0') end--;
            if (end == 20) end = 19;
            if (end != 27)
            {
                into[27..written].CopyTo(into[end..]);
                written -= 27 - end;
            }
            Length += written;
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LedgerEntry))]
[JsonSerializable(typeof(UsageReport))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
