using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace LlmGateway.Bench;

/// <summary>
/// The floor: what the .NET platform alone costs on the gateway's path. Kestrel takes the request, one shared
/// HttpClient sends its body to the upstream, the answer goes back; no logging, no middleware, none of the
/// gateway's work (routing, budgets, ledger, metrics, cache). Run with the gateway's runtime settings (server and
/// concurrent GC, thread-pool spin limit 0, inline I/O scheduling), so that between this row and nginx's is what
/// the platform costs, and between the gateway's and this one what the gateway's own layers cost (issue 19).
/// </summary>
internal static class BareProxy
{
    // The mock's bench bodies are about 1 kB; a bound keeps a stray client from making the floor buffer without end.
    private const int MaxBodyBytes = 1024 * 1024;

    /// <summary>The runtime's own switch for socket completions (the gateway's IoScheduling sets the same one).</summary>
    private const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Which client the floor forwards with: <c>httpclient</c> (the default, the floor run.sh reports) or <c>minimal</c>.</summary>
    private const string FloorClientVariable = "BENCH_FLOOR_CLIENT";

    public static async Task<int> RunAsync(Args args)
    {
        var port = args.Int("port", 0);
        var upstream = new Uri(args.Require("upstream").TrimEnd('/') + "/", UriKind.Absolute);

        // Inline completions, as the gateway runs by default: read once by the runtime when the first socket
        // operation starts, so set before the host opens any; a value the caller set is left as it is.
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null) Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");

        // As the gateway's providers: one long-lived handler, nothing between the proxy and the upstream that the
        // gateway does not have either (no proxy lookup, no redirects, no cookies, no decompression).
        using var client = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
        });

        var builder = LoopbackHost.CreateBuilder(port, MaxBodyBytes);
        // Kestrel continues on the thread that completed the socket read (the event thread, with inline
        // completions) instead of queueing the request to the thread pool: the gateway's Kestrel half of inline.
        builder.WebHost.UseSockets(s => s.UnsafePreferInlineScheduling = true);
        var app = builder.Build();
        // BENCH_FLOOR_CLIENT=minimal: the floor with the least an HTTP/1.1 call can cost instead of HttpClient (see
        // MinimalUpstreamClient); between the two is what .NET's HTTP client costs on this path.
        var minimal = Environment.GetEnvironmentVariable(FloorClientVariable) switch
        {
            null or "" or "httpclient" => null,
            "minimal" => new MinimalUpstreamClient(new IPEndPoint(IPAddress.Loopback, upstream.Port), upstream.Authority),
            var other => throw new ArgumentException($"{FloorClientVariable} is httpclient (the default) or minimal, not '{other}'."),
        };
        app.Run(http => HandleAsync(http, client, minimal, upstream));
        // run.sh checks this line: a floor measured with other runtime settings than the gateway's is not its floor.
        // Written before the port opens, so it is there once the port answers.
        Console.WriteLine($"bare-proxy runtime: {RuntimeSettings()}");
        await app.StartAsync().ConfigureAwait(false);
        Console.WriteLine($"bare-proxy listening on {string.Join(", ", app.Urls)}, forwarding to {upstream} with {(minimal is null ? "HttpClient" : "the minimal client")}");
        await app.WaitForShutdownAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// The settings in effect, read back from the runtime rather than from what was asked for: the GC's own
    /// configuration, and the spin count of the thread pool's worker semaphore (the runtime has no public view of
    /// it; if its internals change, this says "unknown" and run.sh withholds the row rather than guess).
    /// </summary>
    private static string RuntimeSettings()
    {
        var gc = GC.GetConfigurationVariables();
        string Flag(string name) => gc.TryGetValue(name, out var v) && v is true ? "true" : "false";
        return string.Create(CultureInfo.InvariantCulture,
            $"server_gc={Flag("ServerGC")} concurrent_gc={Flag("ConcurrentGC")} latency_mode={GCSettings.LatencyMode} " +
            $"tiered_pgo={AppContext.GetData("System.Runtime.TieredPGO") ?? "default"} spin_limit={ThreadPoolSpinLimit()} " +
            $"inline_completions={Environment.GetEnvironmentVariable(InlineCompletionsVariable)}");
    }

    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "A bench tool, never trimmed; a missing member reads as unknown.")]
    private static string ThreadPoolSpinLimit()
    {
        const BindingFlags Static = BindingFlags.Static | BindingFlags.NonPublic;
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic;
        var semaphore = typeof(ThreadPool).Assembly.GetType("System.Threading.PortableThreadPool+WorkerThread")?.GetField("s_semaphore", Static)?.GetValue(null);
        return semaphore?.GetType().GetField("_spinCount", Instance)?.GetValue(semaphore) is int spin ? spin.ToString(CultureInfo.InvariantCulture) : "unknown";
    }

    private static async Task HandleAsync(HttpContext http, HttpClient client, MinimalUpstreamClient? minimal, Uri upstream)
    {
        var request = http.Request;
        var response = http.Response;
        if (HttpMethods.IsGet(request.Method) && request.Path.Equals("/health", StringComparison.Ordinal))
        {
            response.StatusCode = StatusCodes.Status200OK;
            return;
        }
        // The paths the bench posts to: chat completions and anything else under /v1.
        if (!HttpMethods.IsPost(request.Method) || !request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        var aborted = http.RequestAborted;
        try
        {
            // The whole body first, as the gateway reads it (it looks at the model before choosing an upstream).
            byte[] body;
            try
            {
                var read = await MockUpstream.ReadWholeBodyAsync(request.BodyReader, aborted).ConfigureAwait(false);
                body = read.Buffer.ToArray();
                request.BodyReader.AdvanceTo(read.Buffer.End);
            }
            catch (BadHttpRequestException e)
            {
                // Above Kestrel's MaxRequestBodySize: 413.
                response.StatusCode = e.StatusCode;
                return;
            }

            if (minimal is not null)
            {
                await minimal.ForwardAsync(http, body, request.Path.Value + request.QueryString.Value, aborted).ConfigureAwait(false);
                return;
            }

            using var content = new ByteArrayContent(body);
            if (request.ContentType is { } contentType) content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            using var outgoing = new HttpRequestMessage(HttpMethod.Post, new Uri(upstream, request.Path.Value![1..] + request.QueryString.Value))
            {
                Content = content,
            };
            using var answer = await client.SendAsync(outgoing, HttpCompletionOption.ResponseHeadersRead, aborted).ConfigureAwait(false);

            response.StatusCode = (int)answer.StatusCode;
            if (answer.Content.Headers.ContentType is { } answerType) response.ContentType = answerType.ToString();
            if (answer.Content.Headers.ContentLength is { } length) response.ContentLength = length;
            // The mock's mark, handed on as nginx hands it on: the row's answers prove the mock answered them.
            if (answer.Headers.TryGetValues(MockUpstream.UpstreamHeader, out var mark)) response.Headers[MockUpstream.UpstreamHeader] = mark.ToArray();
            await answer.Content.CopyToAsync(response.Body, aborted).ConfigureAwait(false);
        }
        catch (HttpRequestException) when (!response.HasStarted)
        {
            response.StatusCode = StatusCodes.Status502BadGateway;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away mid-answer: nothing to do.
        }
    }
}
