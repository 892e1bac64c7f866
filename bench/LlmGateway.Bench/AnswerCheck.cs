using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json;

namespace LlmGateway.Bench;

/// <summary>
/// What every answer of a measured row must say about itself, so that a row measures what its label
/// claims: <c>x-gateway-cache</c> (hit, miss, bypass; "-" for none), <c>x-gateway-provider</c> (the
/// bench's upstream provider for a miss, "cache" for a hit) and the mock's <c>x-bench-upstream</c>
/// (the answer came from the mock, not from the proxy). The same check as bench/wrk/chat.lua, for the
/// stream probes; run.sh and the report refuse a row with any mismatch.
/// </summary>
internal sealed class AnswerCheck
{
    private readonly string? _cache;
    private readonly string? _provider;
    private readonly string? _upstream;
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private long _checked;
    private long _mismatched;
    private string _firstMismatch = "";

    private AnswerCheck(string? cache, string? provider, string? upstream)
    {
        _cache = cache;
        _provider = provider;
        _upstream = upstream;
    }

    /// <summary>--expect-cache, --expect-provider, --expect-upstream (unset: not checked).</summary>
    public static AnswerCheck FromArgs(Args args) =>
        new(Blank(args.Get("expect-cache")), Blank(args.Get("expect-provider")), Blank(args.Get("expect-upstream")));

    private static string? Blank(string? v) => string.IsNullOrEmpty(v) ? null : v;

    /// <summary>Counts the answer and says whether it is what the row claims.</summary>
    public bool Check(int status, HttpResponseHeaders headers)
    {
        var cache = Header(headers, "x-gateway-cache");
        var provider = Header(headers, "x-gateway-provider");
        var upstream = Header(headers, MockUpstream.UpstreamHeader);
        var key = $"{status} cache={cache} provider={provider} upstream={upstream}";
        _seen.AddOrUpdate(key, 1, static (_, n) => n + 1);
        Interlocked.Increment(ref _checked);
        var ok = status == 200
            && (_cache is null || cache == _cache)
            && (_provider is null || provider == _provider)
            && (_upstream is null || upstream == _upstream);
        if (!ok && Interlocked.Increment(ref _mismatched) == 1) _firstMismatch = key;
        return ok;
    }

    private static string Header(HttpResponseHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? string.Join(",", values) : "-";

    /// <summary>"check": { checked, mismatched, first_mismatch, seen }, the shape wrk/chat.lua prints.</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject("check");
        w.WriteNumber("checked", Interlocked.Read(ref _checked));
        w.WriteNumber("mismatched", Interlocked.Read(ref _mismatched));
        w.WriteString("first_mismatch", Volatile.Read(ref _firstMismatch));
        w.WriteStartObject("seen");
        foreach (var (key, n) in _seen.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteNumber(key, n);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
