using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Routing;

namespace LlmGateway.Caching;

/// <summary>
/// The exact-match cache key: SHA-256 of the resolved model (name, provider, upstream model) and the
/// request's fields in canonical form: object members sorted by name at every level, arrays in
/// order, values as sent. Fields that never change the answer are left out, so a streaming and a
/// non-streaming request, or two users of one key asking the same thing, share one entry.
/// </summary>
public static class CacheKey
{
    /// <summary>Top-level fields that don't change the output: transport (stream), attribution (user, metadata), storage flags.</summary>
    private static readonly HashSet<string> s_ignored = new(StringComparer.Ordinal)
    {
        "model", "stream", "stream_options", "user", "metadata", "store", "prompt_cache_key", "safety_identifier",
    };

    private static readonly IComparer<JsonProperty> s_byName = Comparer<JsonProperty>.Create(static (a, b) => string.CompareOrdinal(a.Name, b.Name));

    /// <summary>
    /// Lower-case hex of the hash (64 characters). <paramref name="scope"/> (a gateway key id) gives the caller a
    /// cache of its own; null shares the entry with every caller.
    /// </summary>
    public static string Compute(GatewayRequest request, Candidate resolved, string? scope = null)
    {
        using var hashing = new HashingBufferWriter();
        using (var w = new Utf8JsonWriter(hashing, new JsonWriterOptions { SkipValidation = true }))
        {
            w.WriteStartObject();
            // Leading characters that no request field starts with keep these apart from the body's own fields.
            w.WriteString("~model"u8, resolved.ModelName);
            w.WriteString("~provider"u8, resolved.Provider.Name);
            w.WriteString("~upstream"u8, resolved.Model.UpstreamModel ?? resolved.ModelName);
            // Chat keys stay as they were; another operation with the same fields is a different question.
            if (request.Operation != RequestOperation.Chat) w.WriteString("~operation"u8, request.Operation.ToString());
            if (scope is not null) w.WriteString("~scope"u8, scope);
            WriteMembers(w, request.Root, topLevel: true);
            w.WriteEndObject();
        }
        return Convert.ToHexStringLower(hashing.Finish());
    }

    private static void WriteCanonical(Utf8JsonWriter w, JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                WriteMembers(w, e, topLevel: false);
                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in e.EnumerateArray()) WriteCanonical(w, item);
                w.WriteEndArray();
                break;
            default:
                e.WriteTo(w);
                break;
        }
    }

    private static void WriteMembers(Utf8JsonWriter w, JsonElement obj, bool topLevel)
    {
        var count = 0;
        foreach (var _ in obj.EnumerateObject()) count++;
        var members = ArrayPool<JsonProperty>.Shared.Rent(Math.Max(count, 1));
        try
        {
            var n = 0;
            foreach (var p in obj.EnumerateObject())
            {
                if (topLevel && s_ignored.Contains(p.Name)) continue;
                members[n++] = p;
            }
            Array.Sort(members, 0, n, s_byName);
            for (var i = 0; i < n; i++)
            {
                w.WritePropertyName(members[i].Name);
                WriteCanonical(w, members[i].Value);
            }
        }
        finally
        {
            ArrayPool<JsonProperty>.Shared.Return(members, clearArray: true);
        }
    }

    /// <summary>Feeds what the JSON writer writes straight into the hash, so a large request needs no copy of its canonical form.</summary>
    private sealed class HashingBufferWriter : IBufferWriter<byte>, IDisposable
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(8192);
        private int _used;

        public void Advance(int count) => _used += count;

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsMemory(_used);
        }

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsSpan(_used);
        }

        private void Ensure(int sizeHint)
        {
            sizeHint = Math.Max(sizeHint, 1);
            if (_buffer.Length - _used >= sizeHint) return;
            _hash.AppendData(_buffer, 0, _used);
            _used = 0;
            if (_buffer.Length < sizeHint)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = ArrayPool<byte>.Shared.Rent(sizeHint);
            }
        }

        public byte[] Finish()
        {
            _hash.AppendData(_buffer, 0, _used);
            _used = 0;
            return _hash.GetHashAndReset();
        }

        public void Dispose()
        {
            _hash.Dispose();
            ArrayPool<byte>.Shared.Return(_buffer);
        }
    }
}
