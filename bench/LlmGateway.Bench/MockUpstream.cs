using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;

namespace LlmGateway.Bench;

/// <summary>How one answer is paced. <see cref="FirstTokenMs"/> is also the delay of a non-streamed answer.</summary>
internal record struct MockSettings(int Chunks, int ChunkDelayMs, int FirstTokenMs);

/// <summary>
/// A zero-latency OpenAI Chat Completions upstream (and embeddings and moderations, see
/// <see cref="MockEmbeddings"/> and <see cref="MockModerations"/>), so the numbers measure what sits in front of it.
/// Kept light: Kestrel with no middleware, no routing and no logging; answers are pre-rendered bytes;
/// the body is scanned once with a forward-only reader for the three fields that matter.
/// </summary>
internal static class MockUpstream
{
    private const int MaxBodyBytes = 4 * 1024 * 1024;

    private static readonly byte[] s_completion = Encoding.UTF8.GetBytes(
        """{"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion","created":1730000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[{"index":0,"message":{"role":"assistant","content":"A gateway in front of every model call has to cost close to nothing: parse only the fields it acts on, pass the rest through untouched, reuse connections, and never buffer a stream. This answer is a fixed text of about sixty tokens so that the response size is realistic for a short chat reply.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":236,"completion_tokens":58,"total_tokens":294,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}""");

    private const string ChunkHead = """data: {"id":"chatcmpl-bench0000000000000000000001","object":"chat.completion.chunk","created":1730000000,"model":"bench-model","system_fingerprint":"fp_bench","choices":[""";
    private static readonly byte[] s_roleChunk = Encoding.UTF8.GetBytes(ChunkHead + """{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}""" + "\n\n");
    private static readonly byte[] s_contentChunk = Encoding.UTF8.GetBytes(ChunkHead + """{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}""" + "\n\n");
    private static readonly byte[] s_finishChunk = Encoding.UTF8.GetBytes(ChunkHead + """{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}""" + "\n\n");
    private static readonly byte[] s_usageHead = Encoding.UTF8.GetBytes(ChunkHead + """],"usage":{"prompt_tokens":236,"completion_tokens":""");
    private static readonly byte[] s_usageTail = Encoding.UTF8.GetBytes("""}}""" + "\n\n");
    private static readonly byte[] s_done = Encoding.UTF8.GetBytes("data: [DONE]\n\n");

    /// <summary>On every answer of the mock, so that the bench can tell an upstream's answer from a proxy's.</summary>
    internal const string UpstreamHeader = "x-bench-upstream";
    internal const string UpstreamHeaderValue = "mock";

    // Calls per endpoint since start, read by run.sh around every round (GET /stats): a miss row must
    // have cost one upstream call per answer, a cache-hit row none.
    private static long s_chatCalls;
    private static long s_embeddingsCalls;
    private static long s_moderationsCalls;

    private static async Task WriteStatsAsync(HttpContext http)
    {
        var body = Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{{\"chat\":{Interlocked.Read(ref s_chatCalls)},\"embeddings\":{Interlocked.Read(ref s_embeddingsCalls)},\"moderations\":{Interlocked.Read(ref s_moderationsCalls)}}}"));
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = body.Length;
        await http.Response.Body.WriteAsync(body, http.RequestAborted).ConfigureAwait(false);
    }

    public static async Task<int> RunAsync(Args args)
    {
        var port = args.Int("port", 0);
        var defaults = new MockSettings(Math.Max(1, args.Int("chunks", 20)), args.Int("chunk-delay-ms", 0), args.Int("first-token-ms", 0));

        var builder = LoopbackHost.CreateBuilder(port, MaxBodyBytes);
        var app = builder.Build();
        app.Run(http => HandleAsync(http, defaults));
        await app.StartAsync().ConfigureAwait(false);
        Console.WriteLine($"mock-upstream listening on {string.Join(", ", app.Urls)} (chunks {defaults.Chunks}, chunk delay {defaults.ChunkDelayMs} ms, first token {defaults.FirstTokenMs} ms)");
        await app.WaitForShutdownAsync().ConfigureAwait(false);
        return 0;
    }

    private static async Task HandleAsync(HttpContext http, MockSettings settings)
    {
        var request = http.Request;
        if (HttpMethods.IsGet(request.Method) && request.Path.Equals("/health", StringComparison.Ordinal))
        {
            http.Response.StatusCode = StatusCodes.Status200OK;
            return;
        }
        if (HttpMethods.IsGet(request.Method) && request.Path.Equals("/stats", StringComparison.Ordinal))
        {
            await WriteStatsAsync(http).ConfigureAwait(false);
            return;
        }
        var path = request.Path.Value;
        if (!HttpMethods.IsPost(request.Method) || path is null)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        // Every answer says it came from here: a row that claims to measure the upstream (direct, nginx,
        // pass-through) checks this header on its answers, so a proxy's own reply can't pass for one.
        http.Response.Headers[UpstreamHeader] = UpstreamHeaderValue;
        // The other endpoints the benchmark measures: embeddings (through the gateway's pipeline) and
        // moderations (through its pass-through), both answered at once like chat.
        if (path.EndsWith("/embeddings", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref s_embeddingsCalls);
            await MockEmbeddings.HandleAsync(http).ConfigureAwait(false);
            return;
        }
        if (path.EndsWith("/moderations", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref s_moderationsCalls);
            await MockModerations.HandleAsync(http).ConfigureAwait(false);
            return;
        }
        if (!path.EndsWith("/chat/completions", StringComparison.Ordinal))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        Interlocked.Increment(ref s_chatCalls);

        var aborted = http.RequestAborted;
        try
        {
            var reader = request.BodyReader;
            var read = await ReadWholeBodyAsync(reader, aborted).ConfigureAwait(false);
            var body = ScanBody(read.Buffer, ref settings);
            reader.AdvanceTo(read.Buffer.End);
            ApplyQueryAndHeaders(request, ref settings);

            if (!body.Valid)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }
            if (body.Stream)
            {
                await StreamAsync(http, settings, body.IncludeUsage, aborted).ConfigureAwait(false);
                return;
            }
            if (settings.FirstTokenMs > 0) await Task.Delay(settings.FirstTokenMs, aborted).ConfigureAwait(false);
            var response = http.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/json";
            response.ContentLength = s_completion.Length;
            await response.BodyWriter.WriteAsync(s_completion, aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away mid-answer: nothing to do.
        }
    }

    /// <summary>
    /// Reads the whole body (wrk and gateways send it at once) so it can be looked at in place; the
    /// caller advances past <see cref="ReadResult.Buffer"/> when done with it.
    /// </summary>
    internal static async ValueTask<ReadResult> ReadWholeBodyAsync(PipeReader reader, CancellationToken aborted)
    {
        while (true)
        {
            var read = await reader.ReadAsync(aborted).ConfigureAwait(false);
            if (read.IsCompleted || read.IsCanceled) return read;
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    /// <summary>The OpenAI pacing: headers at once, the role chunk with the first token, then one chunk per delay.</summary>
    private static async Task StreamAsync(HttpContext http, MockSettings settings, bool includeUsage, CancellationToken aborted)
    {
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var writer = response.BodyWriter;
        await response.StartAsync(aborted).ConfigureAwait(false);

        if (settings.FirstTokenMs > 0) await Task.Delay(settings.FirstTokenMs, aborted).ConfigureAwait(false);
        writer.Write(s_roleChunk);
        writer.Write(s_contentChunk);
        if ((await writer.FlushAsync(aborted).ConfigureAwait(false)).IsCompleted) return;

        for (var i = 1; i < settings.Chunks; i++)
        {
            if (settings.ChunkDelayMs > 0) await Task.Delay(settings.ChunkDelayMs, aborted).ConfigureAwait(false);
            writer.Write(s_contentChunk);
            if ((await writer.FlushAsync(aborted).ConfigureAwait(false)).IsCompleted) return;
        }

        writer.Write(s_finishChunk);
        if (includeUsage) WriteUsage(writer, settings.Chunks);
        writer.Write(s_done);
        await writer.FlushAsync(aborted).ConfigureAwait(false);
    }

    private static void WriteUsage(PipeWriter writer, int completionTokens)
    {
        writer.Write(s_usageHead);
        var span = writer.GetSpan(64);
        Utf8Formatter.TryFormat(completionTokens, span, out var n);
        var total = ",\"total_tokens\":"u8;
        total.CopyTo(span[n..]);
        n += total.Length;
        Utf8Formatter.TryFormat(236 + completionTokens, span[n..], out var m);
        writer.Advance(n + m);
        writer.Write(s_usageTail);
    }

    private readonly record struct BodyInfo(bool Valid, bool Stream, bool IncludeUsage);

    /// <summary>Top-level <c>stream</c>, <c>stream_options.include_usage</c> and settings after '@' in <c>model</c>.</summary>
    private static BodyInfo ScanBody(ReadOnlySequence<byte> body, ref MockSettings settings)
    {
        var stream = false;
        var includeUsage = false;
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return default;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("stream"u8))
                {
                    reader.Read();
                    stream = reader.TokenType == JsonTokenType.True;
                }
                else if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String && !reader.HasValueSequence && !reader.ValueIsEscaped)
                    {
                        var model = reader.ValueSpan;
                        var at = model.IndexOf((byte)'@');
                        if (at >= 0) ApplyPairs(model[(at + 1)..], ref settings);
                    }
                }
                else if (reader.ValueTextEquals("stream_options"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isUsage = reader.ValueTextEquals("include_usage"u8);
                        reader.Read();
                        if (isUsage) includeUsage = reader.TokenType == JsonTokenType.True;
                        else reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return new BodyInfo(true, stream, includeUsage);
        }
        catch (JsonException)
        {
            return default;
        }
    }

    /// <summary><c>chunks=20,chunk_delay_ms=5,first_token_ms=0</c> (the query-string names).</summary>
    private static void ApplyPairs(ReadOnlySpan<byte> pairs, ref MockSettings settings)
    {
        while (!pairs.IsEmpty)
        {
            var comma = pairs.IndexOf((byte)',');
            var pair = comma < 0 ? pairs : pairs[..comma];
            pairs = comma < 0 ? [] : pairs[(comma + 1)..];
            var eq = pair.IndexOf((byte)'=');
            if (eq <= 0 || !Utf8Parser.TryParse(pair[(eq + 1)..], out int value, out _) || value < 0) continue;
            Apply(pair[..eq], value, ref settings);
        }
    }

    private static void Apply(ReadOnlySpan<byte> name, int value, ref MockSettings settings)
    {
        if (name.SequenceEqual("chunks"u8)) settings.Chunks = Math.Max(1, value);
        else if (name.SequenceEqual("chunk_delay_ms"u8)) settings.ChunkDelayMs = value;
        else if (name.SequenceEqual("first_token_ms"u8)) settings.FirstTokenMs = value;
    }

    private static void ApplyQueryAndHeaders(HttpRequest request, ref MockSettings settings)
    {
        if (request.QueryString.HasValue)
        {
            var query = request.Query;
            settings = Override(settings, query["chunks"], query["chunk_delay_ms"], query["first_token_ms"]);
        }
        var headers = request.Headers;
        if (headers.ContainsKey("x-mock-chunks") || headers.ContainsKey("x-mock-chunk-delay-ms") || headers.ContainsKey("x-mock-first-token-ms"))
        {
            settings = Override(settings, headers["x-mock-chunks"], headers["x-mock-chunk-delay-ms"], headers["x-mock-first-token-ms"]);
        }
    }

    private static MockSettings Override(MockSettings s, string? chunks, string? chunkDelay, string? firstToken)
    {
        if (int.TryParse(chunks, out var c) && c > 0) s.Chunks = c;
        if (int.TryParse(chunkDelay, out var d) && d >= 0) s.ChunkDelayMs = d;
        if (int.TryParse(firstToken, out var f) && f >= 0) s.FirstTokenMs = f;
        return s;
    }
}
