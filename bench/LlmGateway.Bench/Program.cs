namespace LlmGateway.Bench;

/// <summary>
/// The harness's helpers, one subcommand each, driven by bench/run.sh. They measure the gateway from
/// the outside, over HTTP on 127.0.0.1, and print JSON that the report subcommand turns into tables.
/// </summary>
internal static class Program
{
    private const string Usage = """
        LlmGateway.Bench <command> [options]

          mock-upstream --port N [--chunks 20] [--chunk-delay-ms 0] [--first-token-ms 0]
              A fast OpenAI-compatible upstream on 127.0.0.1: POST .../chat/completions, JSON or SSE.
              Every answer carries x-bench-upstream: mock; GET /stats counts the calls per endpoint.
              Per request the settings can be changed by query string (?chunks=&chunk_delay_ms=&first_token_ms=),
              by headers (x-mock-chunks, x-mock-chunk-delay-ms, x-mock-first-token-ms) or by a model name
              suffix that survives a gateway in between ("bench-stream@chunks=20,chunk_delay_ms=5").

          bare-proxy --port N --upstream http://127.0.0.1:M
              The floor: a bare .NET proxy (Kestrel + one HttpClient, no gateway layers) that forwards every POST
              under /v1 to the upstream (same path) and hands back the status, Content-Type, body and the mock's
              x-bench-upstream header. Run it with the gateway's runtime settings (bench/run.sh sets them); it
              prints the settings in effect at start. BENCH_FLOOR_CLIENT=minimal forwards with MinimalUpstreamClient
              (the least an HTTP/1.1 call to the mock can cost) instead of HttpClient: what .NET's client costs.

          stream-probe --url URL --n N --concurrency C --body FILE [--model M] [--header 'Name: value'] [--warmup W] [--expect-chunks K]
                       [--expect-cache hit|miss|bypass|-] [--expect-provider P|-] [--expect-upstream mock]
              Streams N answers, C at a time; prints time to headers, first token and last token and the
              gaps between chunks (p50/p99, milliseconds) as one JSON line, with how many answers did not
              carry the expected x-gateway-cache, x-gateway-provider and x-bench-upstream headers.

          slow-streams --url URL --count 1000 --body FILE [--model M] [--header 'Name: value'] [--hold-seconds 10] [--pid P] [--expect-...]
              Holds COUNT streams open at once and samples the resident memory of process P meanwhile.

          report --results FILE --out RESULTS.md
              Turns the JSON lines that run.sh collected into the markdown report.

          alloc-report --trace FILE --requests N [--top 20]
              Where the allocated bytes went in a dotnet-trace with the runtime's allocation sampling: by type and by the
              innermost gateway method on the stack, per request; bench/diagnose.sh alloc runs it.

          profile-report --speedscope FILE --cpu-us-per-request X --requests N --out FILE [--unit request|stream] [--title T] [--note TEXT]...
              Where the gateway's busy time goes in a dotnet-trace thread-time profile (speedscope JSON),
              by part of the request path; bench/profile.sh runs it.
        """;

    public static async Task<int> Main(string[] argv)
    {
        if (argv.Length == 0 || argv[0] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return argv.Length == 0 ? 2 : 0;
        }
        try
        {
            var args = Args.Parse(argv, 1);
            return argv[0] switch
            {
                "mock-upstream" => await MockUpstream.RunAsync(args).ConfigureAwait(false),
                "bare-proxy" => await BareProxy.RunAsync(args).ConfigureAwait(false),
                "stream-probe" => await StreamProbe.RunAsync(args).ConfigureAwait(false),
                "slow-streams" => await SlowStreams.RunAsync(args).ConfigureAwait(false),
                "report" => Report.Run(args),
                "profile-report" => ProfileReport.Run(args),
                "alloc-report" => AllocReport.Run(args),
                _ => Fail($"Unknown command '{argv[0]}'.\n\n{Usage}"),
            };
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }
}
