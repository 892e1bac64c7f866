using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace LlmGateway.Bench;

/// <summary>What one streamed answer looked like from the client's side (Stopwatch timestamps).</summary>
internal sealed class StreamTiming
{
    public long Start;
    public long Headers;
    public long FirstToken;
    public long Last;
    public int ContentEvents;
    /// <summary>Content events that arrived in the same socket read as the content event before them: held back and sent together.</summary>
    public int Coalesced;
    public bool Done;
    public bool ErrorEvent;
    /// <summary>The answer's headers did not say what the row claims (cache, provider, upstream).</summary>
    public bool Mismatch;
    public List<double> GapsMs { get; } = [];
}

/// <summary>A plain SSE client: one pooled connection per concurrent stream, events split at blank lines.</summary>
internal sealed class StreamClient : IDisposable
{
    private static readonly MediaTypeHeaderValue s_json = new("application/json");
    private readonly HttpClient _client;
    private readonly Uri _url;
    private readonly byte[] _body;
    private readonly List<(string Name, string Value)> _headers = [];

    /// <summary>What every answer's headers must say (see <see cref="AnswerCheck"/>); each stream is checked.</summary>
    public AnswerCheck Check { get; }

    public StreamClient(Args args, int connections)
    {
        Check = AnswerCheck.FromArgs(args);
        _url = new Uri(args.Require("url"));
        if (!IPAddress.TryParse(_url.Host, out var ip) || !IPAddress.IsLoopback(ip))
        {
            throw new ArgumentException($"--url must point at a loopback address (127.0.0.1), not '{_url.Host}'.");
        }
        _body = BuildBody(args.Require("body"), args.Get("model"));
        foreach (var header in args.All("header"))
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new ArgumentException($"--header must look like 'Name: value', not '{header}'.");
            _headers.Add((header[..colon].Trim(), header[(colon + 1)..].Trim()));
        }
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = Math.Max(1, connections),
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The body file with stream on (and the model replaced when asked); done once, outside any timing.</summary>
    private static byte[] BuildBody(string path, string? model)
    {
        var node = JsonNode.Parse(File.ReadAllBytes(path))!.AsObject();
        node["stream"] = true;
        if (model is not null) node["model"] = model;
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    /// <summary>
    /// Sends one streaming request and reads it to the end (or until <paramref name="onFirstToken"/>'s
    /// caller cancels). The timing is filled in as events arrive.
    /// </summary>
    public async Task<bool> RunAsync(StreamTiming t, Action? onFirstToken, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _url);
        request.Content = new ByteArrayContent(_body);
        request.Content.Headers.ContentType = s_json;
        request.Headers.Accept.ParseAdd("text/event-stream");
        foreach (var (name, value) in _headers) request.Headers.TryAddWithoutValidation(name, value);

        t.Start = Stopwatch.GetTimestamp();
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        t.Headers = Stopwatch.GetTimestamp();
        if (!Check.Check((int)response.StatusCode, response.Headers)) t.Mismatch = true;
        if (!response.IsSuccessStatusCode) return false;

        using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[64 * 1024];
        var filled = 0;
        var previousContent = 0L;
        var previousRead = -1;
        var readIndex = 0;
        while (true)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
            var n = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            var now = Stopwatch.GetTimestamp();
            if (n == 0) return t.Done;
            filled += n;
            readIndex++;

            var start = 0;
            while (true)
            {
                var end = buffer.AsSpan(start, filled - start).IndexOf("\n\n"u8);
                if (end < 0) break;
                var ev = buffer.AsSpan(start, end);
                start += end + 2;
                if (!ev.StartsWith("data: "u8)) continue;
                var data = ev[6..];
                if (data.SequenceEqual("[DONE]"u8))
                {
                    t.Last = now;
                    t.Done = true;
                    continue;
                }
                if (data.StartsWith("{\"error\""u8))
                {
                    t.ErrorEvent = true;
                    t.Last = now;
                    continue;
                }
                if (!HasContent(data)) continue;
                if (t.ContentEvents == 0)
                {
                    t.FirstToken = now;
                    onFirstToken?.Invoke();
                }
                else
                {
                    t.GapsMs.Add(Stats.Ms(previousContent, now));
                    if (previousRead == readIndex) t.Coalesced++;
                }
                t.ContentEvents++;
                previousContent = now;
                previousRead = readIndex;
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                filled -= start;
            }
        }
    }

    /// <summary>A chunk whose delta carries text: <c>"content":"</c> followed by something other than the closing quote.</summary>
    private static bool HasContent(ReadOnlySpan<byte> data)
    {
        var at = data.IndexOf("\"content\":\""u8);
        return at >= 0 && at + 11 < data.Length && data[at + 11] != (byte)'"';
    }

    public void Dispose() => _client.Dispose();
}
