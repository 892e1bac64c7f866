using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LlmGateway.Bench;

/// <summary>
/// Turns the JSON lines run.sh collected (one per wrk round, stream probe, /proc reading, ...) into
/// bench/RESULTS.md: medians of rounds per target, what each adds over direct, the ratios to nginx,
/// and issue 9's targets marked met or missed; then the same tables for the other endpoint kinds.
/// </summary>
internal static class Report
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// An endpoint kind run.sh measures (the "endpoint" of its target lines), and the names of its
    /// direct, nginx and plain-gateway targets: each kind is compared with its own direct row.
    /// </summary>
    internal sealed record EndpointKind(string Name, string Title, string Direct, string Nginx, string Gateway);

    internal static readonly EndpointKind Chat = new("chat", "chat completions", "direct", "nginx", "gateway");
    internal static readonly EndpointKind Embeddings = new("embeddings", "embeddings", "emb-direct", "emb-nginx", "emb-gateway");
    internal static readonly EndpointKind PassThrough = new("passthrough", "pass-through (moderations)", "pt-direct", "pt-nginx", "pt-gateway");
    private static readonly EndpointKind[] s_kinds = [Chat, Embeddings, PassThrough];

    /// <summary>The chat target of the bare .NET proxy (bare-proxy): the floor the gateway is built on.</summary>
    internal const string FloorTarget = "bare";

    public static int Run(Args args)
    {
        var input = args.Require("results");
        var output = args.Require("out");
        var data = Results.Load(input);
        var markdown = Render(data);
        File.WriteAllText(output, markdown);
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    internal static string Render(Results r)
    {
        var md = new StringBuilder();
        var meta = r.Meta;
        md.AppendLine("# Benchmark results").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Written by `./bench/run.sh{(meta.Str("args") is { Length: > 0 } a ? " " + a : "")}` on {meta.Str("date")}.");
        if (meta.Str("mode") == "quick")
        {
            md.AppendLine().AppendLine("> **Quick run**: rounds of a few seconds that check the harness works end to end. The numbers are not a measurement; run `./bench/run.sh` on a quiet machine for those.");
        }
        md.AppendLine();
        md.AppendLine("| | |").AppendLine("| --- | --- |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| machine | {meta.Str("cpu")}, nproc {meta.Str("nproc")}, {meta.Str("mem_mb")} MB memory, Linux {meta.Str("kernel")}; load average {meta.Str("loadavg")} at the start, {r.End.Str("loadavg")} at the end ({r.End.Str("date")}); a quiet machine is near 0 before the bench starts; while it runs, its own processes make 3 to 6, and each table has the highest 1-minute load seen at the start of its rounds |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| commit | `{meta.Str("commit")}`{(meta.Str("dirty") == "true" ? " with uncommitted changes" : "")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| software | .NET SDK {meta.Str("dotnet")}, {meta.Str("nginx")}, wrk {meta.Str("wrk")}, redis-server {meta.Str("redis")} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| method | {meta.Str("rounds")} rounds of {meta.Str("duration_s")} s per target and connection count after a {meta.Str("warmup_s")} s warm-up{(meta.Str("warm_max_s") is "?" ? "" : $", prolonged 2 s at a time for each .NET target until its JIT thread took at most 2 % of its CPU (at most {meta.Str("warm_max_s")} s more; the notes say how long each target still compiling needed; a process whose tiering had finished has no JIT thread left and counts as warm)")}; targets alternate round-robin (the first target rotates each round); wrk -t{meta.Str("threads")} --latency posting {(r.TargetsOf(Chat).Count > 0 ? $"a {meta.Str("body_bytes")}-byte chat body" : "each endpoint's body (sizes in its section)")}; every number is the median over rounds. Load generator, mock, proxies and gateways share the same cores. |");
        md.AppendLine("| proof | every answer of every round (warm-up included) is checked by the wrk script and the stream probes: `x-gateway-cache` (miss rows: `bypass` for the temperature-0.2 chat body, `miss` for embeddings sent with `no-store`; cache-hit rows: `hit`; direct, nginx, pass-through: none), `x-gateway-provider` (`openai`, the bench's upstream provider on the mock; `cache` for a hit) and, for direct, nginx, the bare .NET proxy and pass-through, the mock's own `x-bench-upstream: mock`; the mock counts its calls around every round (one per answer for a miss, none for a hit). A row with any answer that says otherwise is marked **failed** and its numbers are withheld. The cache-hit targets run on gateway processes of their own. The I/O scheduling the gateway rows name (`inline`, the default, or `thread-pool`) is checked from each process's threads at start: one socket event thread per core inline, one per 30 cores otherwise. |");
        md.AppendLine();

        var targets = r.TargetsOf(Chat);
        var levels = r.Wrk.Select(w => w.Conns).Distinct().Order().ToList();
        // Per endpoint kind, per connection count: each kind's rows are relative to its own direct row.
        var byKind = new Dictionary<EndpointKind, Dictionary<int, Dictionary<string, Row>>>();
        foreach (var kind in s_kinds)
        {
            var perLevel = byKind[kind] = [];
            foreach (var c in levels) perLevel[c] = Summarize(r, c, kind);
        }
        var tables = byKind[Chat];
        var streams = SummarizeStreams(r);

        if (targets.Count > 0)
        {
            RenderTargets(md, r, tables, streams);
        }
        else
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"Chat completions were not measured in this run (`--only \"{meta.Str("only")}\"`), so neither are issue 9's targets.").AppendLine();
        }
        RenderCostPerEndpoint(md, r, levels, byKind);

        foreach (var c in levels)
        {
            if (targets.Count == 0) break;
            md.AppendLine(CultureInfo.InvariantCulture, $"## Non-streaming, {c} connection{(c == 1 ? "" : "s")}").AppendLine();
            RenderLoadTable(md, r, Chat, targets, tables[c]);
        }

        RenderEndpointSection(md, r, Embeddings, levels, byKind[Embeddings],
            $"`POST /v1/embeddings` with a {meta.Str("embeddings_body_bytes")}-byte body (`bench/bodies/embeddings.json`: 8 short strings, `encoding_format` base64 as the official SDKs send it) to the model `bench-embed` on the mock, which answers one 16-dimension vector per input and the usage. `Cache-Control: no-store` as for chat: an embedding is always cacheable, so every gateway request looks the cache up, misses and goes through routing, budget reserve and settle and the ledger. Added latency and the ratios are against this section's own direct and nginx rows.");
        RenderEndpointSection(md, r, PassThrough, levels, byKind[PassThrough],
            $"`POST /v1/moderations` with a {meta.Str("passthrough_body_bytes")}-byte body (`bench/bodies/moderations.json`), an endpoint the gateway does not translate: a gateway process of its own with `Gateway:PassThrough:Provider` on the mock forwards it with YARP's `IHttpForwarder` (gateway auth, key swap, a usage record and the budget check on each call); nginx proxies the same path. The mock's answer is a fixed moderation result. Added latency and the ratios are against this section's own direct and nginx rows.");

        if (streams.Count > 0)
        {
            md.AppendLine("## Streaming").AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"stream-probe: {meta.Str("stream_n")} streams per target and round, {meta.Str("stream_concurrency")} at a time; the mock sends the first content chunk at once, then {meta.Str("stream_chunks")} in all with a {meta.Str("stream_chunk_delay_ms")} ms timer before each (timer granularity stretches the gap by a millisecond or two, the same for every target). \"Coalesced\" counts chunks that reached the client in the same read as the chunk before them, i.e. held back somewhere.").AppendLine();
            md.AppendLine("| target | headers p50 / p99 ms | first token p50 / p99 ms | last token p50 / p99 ms | added first token p50 / p99 ms | inter-chunk p50 / p99 ms | coalesced | CPU µs/stream | x-gateway-cache | failed / incomplete | load (1 min, max) |");
            md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |");
            var streamFailures = new List<string>();
            foreach (var t in targets)
            {
                if (!streams.TryGetValue(t.Name, out var s)) continue;
                if (s.Failure is not null)
                {
                    streamFailures.Add($"{t.Label}: {s.Failure}");
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Label} | **failed** (see below) | — | — | — | — | — | — | {t.Cache} | {s.Failed} / {s.Incomplete} | {F2(s.LoadMax)} |");
                    continue;
                }
                var added = t.Name == "direct" ? "—" : $"{F3(s.AddedTtftP50)} / {F3(s.AddedTtftP99)}";
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {t.Label} | {F3(s.HeadersP50)} / {F3(s.HeadersP99)} | {F3(s.TtftP50)} / {F3(s.TtftP99)} | {F3(s.TtltP50)} / {F3(s.TtltP99)} | {added} | {F3(s.GapP50)} / {F3(s.GapP99)} | {F2(s.CoalescedPct)} % | {F1(s.CpuUsPerStream)} | {t.Cache} | {s.Failed} / {s.Incomplete} | {F2(s.LoadMax)} |");
            }
            md.AppendLine();
            if (streamFailures.Count > 0)
            {
                md.AppendLine("Failed rows (their streams did not prove what the row claims, so no numbers are reported for them):").AppendLine();
                foreach (var f in streamFailures) md.AppendLine(CultureInfo.InvariantCulture, $"- {f}");
                md.AppendLine();
            }
        }

        if (r.Slow is { } slow)
        {
            var p = slow.GetProperty("probe");
            var opened = p.GetProperty("opened").GetInt32();
            var before = p.GetProperty("rss_before_kb").GetDouble() / 1024;
            var max = p.GetProperty("rss_open_max_kb").GetDouble() / 1024;
            md.AppendLine("## Concurrent open streams").AppendLine();
            if (p.TryGetProperty("check", out var slowCheck) && slowCheck.GetProperty("mismatched").GetInt64() is > 0 and var bad)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"**failed**: {bad} of {slowCheck.GetProperty("checked").GetInt64()} streams did not say x-gateway-cache: bypass, x-gateway-provider: openai (first: {slowCheck.GetProperty("first_mismatch").GetString()}); no numbers reported.").AppendLine();
            }
            else
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"slow-streams against a freshly started gateway: every stream gets its first token at once, then one chunk every {meta.Str("slow_chunk_delay_ms")} ms; all are held open for {p.GetProperty("hold_s").GetDouble().ToString("0", s_inv)} s while the gateway's VmRSS is sampled.").AppendLine();
                md.AppendLine("| streams asked | open at once | time to open all | still open at end | RSS before MB | RSS while open (max) MB | per open stream KB |");
                md.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {p.GetProperty("requested").GetInt32()} | {opened} | {F0(p.GetProperty("open_ms").GetDouble())} ms | {p.GetProperty("still_open_at_end_of_hold").GetInt32()} | {F1(before)} | {F1(max)} | {(opened > 0 ? F1((max - before) * 1024 / opened) : "—")} |");
                md.AppendLine();
            }
        }

        if (r.Ready.Count > 0)
        {
            md.AppendLine("## Ready time").AppendLine();
            md.AppendLine("From launching the Release build to the first 200 from `/health/ready` (polled with curl every 5 ms, so the figures are good to about 10 ms).").AppendLine();
            md.AppendLine("| process | ms |").AppendLine("| --- | ---: |");
            foreach (var (process, ms) in r.Ready) md.AppendLine(CultureInfo.InvariantCulture, $"| {process} | {F0(ms)} |");
            md.AppendLine();
        }

        if (r.SoakSamples.Count > 0 && SoakFailure(r) is { } soakFailed)
        {
            md.AppendLine("## Soak").AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"**failed**: {soakFailed}. Its RSS and CPU are withheld: they would not be the miss path's.").AppendLine();
        }
        else if (r.SoakSamples.Count > 0)
        {
            var first = r.SoakSamples[0].RssKb;
            var last = r.SoakSamples[^1].RssKb;
            md.AppendLine("## Soak").AppendLine();
            var soakWrk = r.Soak?.GetProperty("wrk");
            md.AppendLine(CultureInfo.InvariantCulture,
                $"{meta.Str("soak_seconds")} s of non-streaming load at {meta.Str("soak_conns")} connections on the gateway (embedded store); VmRSS every {meta.Str("soak_interval_s")} s. {(soakWrk is { } sw ? $"{F0(sw.GetProperty("rps").GetDouble())} req/s, p50 {F3(sw.GetProperty("p50_us").GetDouble() / 1000)} ms, p99 {F3(sw.GetProperty("p99_us").GetDouble() / 1000)} ms, {ErrorCount(sw)} errors." : "")}").AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture, $"RSS first sample {F1(first / 1024.0)} MB, last {F1(last / 1024.0)} MB, max {F1(r.SoakSamples.Max(s => s.RssKb) / 1024.0)} MB: growth {F1(Growth(first, last))} %.").AppendLine();
            // A cost that grows with the process's history (a scan of what it has accumulated) shows as CPU per request
            // rising through the soak: the first and the last sixth of it, each a median of its intervals.
            var cpu = r.SoakSamples.Select(s => s.CpuUsPerRequest(r.ClockTicks)).Where(v => !double.IsNaN(v)).ToList();
            if (cpu.Count >= 6)
            {
                var part = cpu.Count / 6;
                var early = Stats.Median(cpu.Take(part));
                var late = Stats.Median(cpu.Skip(cpu.Count - part));
                md.AppendLine(CultureInfo.InvariantCulture, $"CPU per request (gateway CPU over upstream calls, each interval): first sixth {F1(early)} µs, last sixth {F1(late)} µs: {F1(Growth(early, late))} %. The machine's own drift is in this too: compare with the rounds above.").AppendLine();
            }
            // A 10-minute soak has 60 samples: show at most 13 of them, evenly spaced, first and last included.
            var step = Math.Max(1, (int)Math.Ceiling((r.SoakSamples.Count - 1) / 12.0));
            var shown = r.SoakSamples.Where((_, i) => i % step == 0 || i == r.SoakSamples.Count - 1).ToList();
            md.AppendLine("| t s | " + string.Join(" | ", shown.Select(s => s.T.ToString(s_inv))) + " |");
            md.AppendLine("| --- | " + string.Join(" | ", shown.Select(_ => "---:")) + " |");
            md.AppendLine("| RSS MB | " + string.Join(" | ", shown.Select(s => F0(s.RssKb / 1024.0))) + " |");
            if (r.SoakSamples.Any(s => !double.IsNaN(s.CpuUsPerRequest(r.ClockTicks))))
            {
                md.AppendLine("| CPU µs/req | " + string.Join(" | ", shown.Select(s => F1(s.CpuUsPerRequest(r.ClockTicks)))) + " |");
            }
            md.AppendLine();
        }

        if (r.Skips.Count > 0 || r.Notes.Count > 0)
        {
            md.AppendLine("## Skipped and noted").AppendLine();
            foreach (var (label, reason) in r.Skips) md.AppendLine(CultureInfo.InvariantCulture, $"- {label}: skipped: {reason}");
            foreach (var note in r.Notes) md.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
            md.AppendLine();
        }

        foreach (var file in r.MicroFiles)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"## Micro-benchmarks: {Path.GetFileNameWithoutExtension(file).Replace("-report-github", "", StringComparison.Ordinal)}").AppendLine();
            md.AppendLine(File.ReadAllText(file).Trim()).AppendLine();
        }

        md.AppendLine("## How to read this").AppendLine();
        md.AppendLine("- **added**: per round, the target's percentile minus the direct-to-mock percentile of the same round; the median of those over rounds. The direct row is the mock alone, so everything above it is the proxy hop.");
        md.AppendLine("- **CPU µs/req**: the process's utime + stime from `/proc/<pid>/stat` across the round, divided by the requests wrk completed (nginx: master and worker summed; direct: the mock itself). Clock ticks are 10 ms, so short rounds are coarse.");
        md.AppendLine("- **peak RSS**: VmHWM from `/proc/<pid>/status` after the load rounds (the cache-hit rows share their gateway's process).");
        md.AppendLine("- **x-gateway-cache**: what every answer of the row had to say (and did, or the row is marked failed); `bypass` is the gateway's word for a request it may not cache (temperature above 0), so it neither looks the cache up nor stores: the miss path.");
        md.AppendLine("- **answers checked**: answers the wrk script checked over the reported rounds; **upstream calls / answer**: calls the mock counted over those rounds divided by the answers (1 for a miss: wrk may leave a few requests in flight at the end of a round, so it can be a hair above 1; 0 for a cache hit).");
        md.AppendLine("- **load (1 min, max)**: the highest 1-minute load average read at the start of the row's rounds. It counts the bench's own processes too (wrk, the mock, nginx, the gateways: about 3 to 6 while rounds run on a machine that does nothing else); the load at the start, before anything was started, says whether other work was running.");
        md.AppendLine("- **the floor**: the bare .NET proxy row, checked like nginx's (the mock's header on every answer, one upstream call each); it is what a plain Kestrel + HttpClient proxy costs on this path with the gateway's runtime settings, so the gateway over it is the cost of the gateway's own layers, and it over nginx the platform's.");
        md.AppendLine("- **Embeddings, Pass-through**: the same measurements on another path; each kind's targets run back to back in every round, and its added latency is over its own direct row.");
        return md.ToString();
    }

    /// <summary>One load table (the shape of the chat tables): a row per target of one endpoint kind at one connection count.</summary>
    private static void RenderLoadTable(StringBuilder md, Results r, EndpointKind kind, List<TargetInfo> targets, Dictionary<string, Row> rows)
    {
        md.AppendLine("| target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU µs/req | peak RSS MB | added p50 ÷ nginx | added p99 ÷ nginx | CPU ÷ nginx | x-gateway-cache | answers checked | upstream calls / answer | errors | load (1 min, max) |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
        rows.TryGetValue(kind.Nginx, out var nginx);
        if (nginx?.Failure is not null) nginx = null;
        var failures = new List<string>();
        foreach (var t in targets)
        {
            if (!rows.TryGetValue(t.Name, out var row)) continue;
            if (row.Failure is not null)
            {
                // The row does not measure what its label says: no numbers, the reason below the table.
                failures.Add($"{t.Label}: {row.Failure}");
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {t.Label} | **failed** (see below) | — | — | — | — | — | — | — | — | — | {t.Cache} | {F0(row.Checked)} | {F3(row.CallsPerAnswer)} | {row.Errors} | {F2(row.LoadMax)} |");
                continue;
            }
            var isDirect = t.Name == kind.Direct;
            var isNginx = t.Name == kind.Nginx;
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {t.Label} | {F0(row.Rps)} | {F3(row.P50)} | {F3(row.P99)} | {(isDirect ? "—" : F3(row.AddedP50))} | {(isDirect ? "—" : F3(row.AddedP99))} | {F1(row.CpuUs)} | {F1(r.PeakRssMb(t.Process))} | {(isDirect || isNginx ? "—" : Ratio(row.AddedP50, nginx?.AddedP50))} | {(isDirect || isNginx ? "—" : Ratio(row.AddedP99, nginx?.AddedP99))} | {(isDirect || isNginx ? "—" : Ratio(row.CpuUs, nginx?.CpuUs))} | {t.Cache} | {F0(row.Checked)} | {F3(row.CallsPerAnswer)} | {row.Errors} | {F2(row.LoadMax)} |");
        }
        md.AppendLine();
        if (failures.Count > 0)
        {
            md.AppendLine("Failed rows (their answers did not prove what the row claims, so no numbers are reported for them):").AppendLine();
            foreach (var f in failures) md.AppendLine(CultureInfo.InvariantCulture, $"- {f}");
            md.AppendLine();
        }
    }

    /// <summary>A section for an endpoint kind other than chat: what it measured, then a load table per connection count.</summary>
    private static void RenderEndpointSection(StringBuilder md, Results r, EndpointKind kind, List<int> levels, Dictionary<int, Dictionary<string, Row>> tables, string intro)
    {
        var targets = r.TargetsOf(kind);
        if (targets.Count == 0) return;
        md.AppendLine(CultureInfo.InvariantCulture, $"## {char.ToUpperInvariant(kind.Title[0])}{kind.Title[1..]}").AppendLine();
        md.AppendLine(intro).AppendLine();
        foreach (var c in levels)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"### {c} connection{(c == 1 ? "" : "s")}").AppendLine();
            RenderLoadTable(md, r, kind, targets, tables[c]);
        }
    }

    /// <summary>
    /// What the gateway adds on each endpoint kind next to what nginx adds on the same path: the numbers
    /// an issue note quotes, from the sections below.
    /// </summary>
    private static void RenderCostPerEndpoint(StringBuilder md, Results r, List<int> levels, Dictionary<EndpointKind, Dictionary<int, Dictionary<string, Row>>> byKind)
    {
        var measured = s_kinds.Where(k => r.TargetsOf(k).Any(t => t.Name == k.Gateway)).ToList();
        if (measured.Count == 0) return;
        md.AppendLine("## Cost per endpoint").AppendLine();
        md.AppendLine("The plain gateway target of each endpoint kind (chat: embedded store, a request that is not cacheable, so `x-gateway-cache: bypass` and one upstream call each; embeddings: `no-store`, so a cache lookup that misses (`x-gateway-cache: miss`) and one upstream call each; pass-through: YARP forwarding) against nginx on the same path; added is over that kind's direct row. Details in each kind's section.").AppendLine();
        md.AppendLine("| endpoint | connections | gateway req/s | gateway added p50 ms | gateway added p99 ms | gateway CPU µs/req | nginx added p50 ms | nginx added p99 ms | nginx CPU µs/req | errors |");
        md.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var kind in measured)
        {
            foreach (var c in levels)
            {
                var rows = byKind[kind][c];
                if (!rows.TryGetValue(kind.Gateway, out var gw)) continue;
                rows.TryGetValue(kind.Nginx, out var ng);
                if (gw.Failure is not null || ng?.Failure is not null)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {kind.Title} | {c} | **failed** (see its section) | — | — | — | — | — | — | — |");
                    continue;
                }
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {kind.Title} | {c} | {F0(gw.Rps)} | {F3(gw.AddedP50)} | {F3(gw.AddedP99)} | {F1(gw.CpuUs)} | {F3(ng?.AddedP50)} | {F3(ng?.AddedP99)} | {F1(ng?.CpuUs)} | {gw.Errors + (ng?.Errors ?? 0)} |");
            }
        }
        md.AppendLine();
    }

    private static void RenderTargets(StringBuilder md, Results r, Dictionary<int, Dictionary<string, Row>> tables, Dictionary<string, StreamRow> streams)
    {
        // A failed row has no numbers: every target that reads it says so instead of judging noise.
        Row? Measured(Dictionary<string, Row>? level, string name) => level?.GetValueOrDefault(name) is { Failure: null } row ? row : null;
        string? FailedWhy(Dictionary<string, Row>? level, params string[] names) =>
            names.Select(n => level?.GetValueOrDefault(n)).FirstOrDefault(row => row?.Failure is not null) is { } failed ? "row failed its check" : null;

        md.AppendLine("## Targets from issue 19 (the miss path against nginx)").AppendLine();
        md.AppendLine("Every gateway row here is a miss (the chat body is at temperature 0.2: `x-gateway-cache: bypass`, one upstream call per answer, checked on every answer) with budgets, ledger, metrics and the per-request log line at Information (the shipped default) on.").AppendLine();
        md.AppendLine("| target | measured | limit | verdict |").AppendLine("| --- | --- | --- | --- |");
        var c16 = tables.GetValueOrDefault(16);
        var c64 = tables.GetValueOrDefault(64);
        var c1 = tables.GetValueOrDefault(1);
        var gw16 = Measured(c16, "gateway");
        var ng16 = Measured(c16, "nginx");
        var failed16 = FailedWhy(c16, "gateway", "nginx");

        // A proxy hop cannot really take time away: a negative "added" for nginx is noise, counted as 0.
        Line(md, "non-streaming, 16 connections: CPU per request", gw16?.CpuUs, ng16?.CpuUs * 2, "µs", $"2 × nginx's ({F1(ng16?.CpuUs)} µs)", failed16);
        Line(md, "non-streaming, 16 connections: added p50", gw16?.AddedP50, Floor(ng16?.AddedP50) + 0.2, "ms", $"nginx's added p50 ({F3(ng16?.AddedP50)}, at least 0) + 0.2 ms", failed16);
        Line(md, "non-streaming, 16 connections: added p99", gw16?.AddedP99, Floor(ng16?.AddedP99) + 1.0, "ms", $"nginx's added p99 ({F3(ng16?.AddedP99)}, at least 0) + 1 ms", failed16);
        var gw64 = Measured(c64, "gateway");
        var ng64 = Measured(c64, "nginx");
        LineAtLeast(md, "non-streaming, 64 connections: requests/s through the gateway", gw64?.Rps, ng64 is null ? double.NaN : ng64.Rps * 0.8, "req/s",
            $"0.8 × nginx's ({F0(ng64?.Rps)} req/s)", FailedWhy(c64, "gateway", "nginx"));
        var gw1 = Measured(c1, "gateway");
        var ng1 = Measured(c1, "nginx");
        Line(md, "non-streaming, 1 connection: CPU per request", gw1?.CpuUs, ng1?.CpuUs * 3, "µs", $"3 × nginx's ({F1(ng1?.CpuUs)} µs)", FailedWhy(c1, "gateway", "nginx"));

        var gs = streams.GetValueOrDefault("gateway") is { Failure: null } g ? g : null;
        var ns = streams.GetValueOrDefault("nginx") is { Failure: null } n ? n : null;
        var ds = streams.GetValueOrDefault("direct") is { Failure: null } d ? d : null;
        var streamFailed = new[] { "gateway", "nginx", "direct" }.Any(t => streams.GetValueOrDefault(t)?.Failure is not null) ? "row failed its check" : null;
        Line(md, "streaming: added time to first token p50", gs?.AddedTtftP50, 0.3, "ms", "0.3 ms", streamFailed);
        Line(md, "streaming: CPU per stream", gs?.CpuUsPerStream, ns?.CpuUsPerStream * 2, "µs", $"2 × nginx's ({F1(ns?.CpuUsPerStream)} µs)", streamFailed);
        md.AppendLine();
        RenderRoundByRound(md, r, tables);
        RenderFloor(md, r, tables, streams);

        md.AppendLine("## Targets from issue 9").AppendLine();
        md.AppendLine("| target | measured | limit | verdict |").AppendLine("| --- | --- | --- | --- |");
        Line(md, "non-streaming, 16 connections: CPU per request", gw16?.CpuUs, ng16?.CpuUs * 3, "µs", $"3 × nginx's ({F1(ng16?.CpuUs)} µs)", failed16);
        LineAtLeast(md, "non-streaming, 64 connections: requests/s through the gateway", gw64?.Rps, 10_000, "req/s", "10,000 req/s", FailedWhy(c64, "gateway"));
        Line(md, "streaming: added delay between chunks (inter-chunk p50 over direct)", gs is null || ds is null ? null : gs.GapP50 - ds.GapP50, 0.3, "ms",
            "no added delay (0.3 ms tolerance for scheduling noise)", streamFailed);
        var flushedMeasured = gs is null || ds is null ? null : (double?)(gs.CoalescedPct - ds.CoalescedPct);
        var flushedOk = gs is not null && gs.Incomplete == 0 && gs.Failed == 0;
        if (gs is null || ds is null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| streaming: every chunk flushed as it arrives | {(streamFailed is null ? "not measured" : "skipped: " + streamFailed)} | | not measured |");
        }
        else
        {
            var met = flushedOk && flushedMeasured <= 1.0;
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| streaming: every chunk flushed as it arrives | coalesced {F2(gs.CoalescedPct)} % (direct {F2(ds.CoalescedPct)} %), {gs.Failed} failed, {gs.Incomplete} incomplete | all chunks, coalesced within 1 point of direct | {(met ? "met" : "**missed**")} |");
        }

        var redisOverEmbedded = FailedWhy(c1, "gateway-redis", "gateway") is null ? PairedDifference(r, 1, "gateway-redis", "gateway") : null;
        Line(md, "Redis budgets + ledger: p50 over the embedded default (1 connection)", redisOverEmbedded, 0.5, "ms", "0.5 ms", r.SkipReason("gateway-redis") ?? FailedWhy(c1, "gateway-redis", "gateway"));
        Line(md, "cache hit, memory: total p50 (1 connection)", Measured(c1, "hit-memory")?.P50, 0.3, "ms", "0.3 ms", r.SkipReason("hit-memory") ?? FailedWhy(c1, "hit-memory"));
        Line(md, "cache hit, Redis: total p50 (1 connection)", Measured(c1, "hit-redis")?.P50, 0.6, "ms", "0.6 ms", r.SkipReason("hit-redis") ?? FailedWhy(c1, "hit-redis"));

        if (r.Slow is { } failedSlow && failedSlow.GetProperty("probe").TryGetProperty("check", out var sc) && sc.GetProperty("mismatched").GetInt64() > 0)
        {
            md.AppendLine("| 1,000 concurrent open streams: gateway RSS | skipped: row failed its check | < 200 MB | not measured |");
        }
        else if (r.Slow is { } slow)
        {
            var p = slow.GetProperty("probe");
            var opened = p.GetProperty("opened").GetInt32();
            var requested = p.GetProperty("requested").GetInt32();
            var mb = p.GetProperty("rss_open_max_kb").GetDouble() / 1024;
            var met = opened == requested && mb < 200;
            // The limit is for 1,000 streams; fewer (--slow-count) say nothing about it.
            var verdict = requested < 1000 ? "not measured (fewer than 1,000 streams)" : met ? "met" : "**missed**";
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {requested} concurrent open streams: gateway RSS | {F1(mb)} MB with {opened} open | < 200 MB for 1,000 | {verdict} |");
        }
        else
        {
            md.AppendLine("| 1,000 concurrent open streams: gateway RSS | not measured | < 200 MB | not measured |");
        }

        if (r.SoakSamples.Count > 1)
        {
            var growth = SoakFailure(r) is null ? Growth(r.SoakSamples[0].RssKb, r.SoakSamples[^1].RssKb) : (double?)null;
            Line(md, $"soak ({r.Meta.Str("soak_seconds")} s): RSS growth", growth, 10, "%", "10 %", SoakFailure(r) is null ? null : "the soak failed its check");
        }
        else
        {
            md.AppendLine("| soak: RSS growth | not measured (run with --soak) | < 10 % | not measured |");
        }

        var gatewayReady = r.Ready.Where(x => x.Process.StartsWith("gateway", StringComparison.Ordinal)).Select(x => x.Ms).ToList();
        if (gatewayReady.Count > 0)
        {
            var median = Stats.Median(gatewayReady);
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| ready: start to /health/ready | median {F0(median)} ms, max {F0(gatewayReady.Max())} ms of {gatewayReady.Count} starts | < 1000 ms | {(median < 1000 ? "met" : "**missed**")} |");
        }
        md.AppendLine();
    }

    /// <summary>
    /// The floor next to nginx and the gateway: a bare .NET proxy (Kestrel + one HttpClient) with the gateway's runtime
    /// settings on the same path. Between nginx and it is what the platform costs; between it and the gateway, what
    /// the gateway's own layers cost. No verdicts: issue 19's limits are on the gateway; this says whose part is whose.
    /// </summary>
    private static void RenderFloor(StringBuilder md, Results r, Dictionary<int, Dictionary<string, Row>> tables, Dictionary<string, StreamRow> streams)
    {
        var skipped = r.SkipReason(FloorTarget);
        if (skipped is null && !r.Targets.Any(t => t.Name == FloorTarget)) return;
        md.AppendLine("The floor: a bare .NET proxy (`LlmGateway.Bench bare-proxy`: Kestrel and one `HttpClient` forwarding the body to the mock and its answer back, no logging, no middleware, none of the gateway's work) with the gateway's runtime settings (server and concurrent GC, TieredPGO, thread-pool spin limit 0, inline I/O scheduling). What the platform costs is the floor over nginx; what the gateway's own layers cost is the gateway over the floor. From the medians in the chat tables below.").AppendLine();
        if (skipped is not null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"Not measured: {skipped}.").AppendLine();
            return;
        }
        if (r.Runtime.GetValueOrDefault(FloorTarget) is { } settings) md.AppendLine(CultureInfo.InvariantCulture, $"Runtime settings the floor's process read back at its start: `{settings}`.").AppendLine();
        md.AppendLine("| connections | floor CPU µs/req | floor CPU ÷ nginx | floor req/s | floor req/s ÷ nginx | floor added p50 / p99 ms | gateway CPU − floor CPU µs/req | gateway CPU ÷ floor | gateway req/s ÷ floor |");
        md.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var (c, level) in tables.OrderBy(t => t.Key))
        {
            var floorRow = level.GetValueOrDefault(FloorTarget);
            if (floorRow is null) continue;
            if (floorRow.Failure is not null)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {c} | **failed** (see its table) | — | — | — | — | — | — | — |");
                continue;
            }
            // A failed row has no numbers to compare with: its cells say so rather than show a ratio to noise.
            string Against(string name, Func<Row, string> cell) =>
                level.GetValueOrDefault(name) is { } row ? row.Failure is null ? cell(row) : "failed" : "—";
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {c} | {F1(floorRow.CpuUs)} | {Against("nginx", ng => Ratio(floorRow.CpuUs, ng.CpuUs, "0.00"))} | {F0(floorRow.Rps)} | {Against("nginx", ng => Ratio(floorRow.Rps, ng.Rps, "0.00"))} | {F3(floorRow.AddedP50)} / {F3(floorRow.AddedP99)} | {Against("gateway", gw => F1(gw.CpuUs - floorRow.CpuUs))} | {Against("gateway", gw => Ratio(gw.CpuUs, floorRow.CpuUs, "0.00"))} | {Against("gateway", gw => Ratio(gw.Rps, floorRow.Rps, "0.00"))} |");
        }
        md.AppendLine();
        // The streaming target's CPU per stream, split the same way.
        if (streams.GetValueOrDefault(FloorTarget) is { } floorStreams)
        {
            if (floorStreams.Failure is not null)
            {
                md.AppendLine("Streaming: the floor's streams **failed** their check (see the streaming table).").AppendLine();
            }
            else
            {
                string Stream(string name, Func<StreamRow, string> cell) =>
                    streams.GetValueOrDefault(name) is { } row ? row.Failure is null ? cell(row) : "failed" : "not measured";
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"Streaming: the floor's CPU per stream {F1(floorStreams.CpuUsPerStream)} µs ({Stream("nginx", ns => Ratio(floorStreams.CpuUsPerStream, ns.CpuUsPerStream, "0.00"))} nginx's); gateway CPU − floor CPU per stream: {Stream("gateway", gs => F1(gs.CpuUsPerStream - floorStreams.CpuUsPerStream) + " µs")}; its added first token p50 / p99 {F3(floorStreams.AddedTtftP50)} / {F3(floorStreams.AddedTtftP99)} ms.").AppendLine();
            }
        }
    }

    private static double? Floor(double? v) => v is null ? null : Math.Max(0, v.Value);

    private static void Line(StringBuilder md, string what, double? measured, double? limit, string unit, string limitText, string? skip = null)
    {
        if (measured is null || limit is null || double.IsNaN(measured.Value) || double.IsNaN(limit.Value))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {(skip is null ? "not measured" : "skipped: " + skip)} | {limitText} | not measured |");
            return;
        }
        var met = measured.Value <= limit.Value;
        var verdict = met ? "met" : $"**missed** by {Format(measured.Value - limit.Value, unit)}";
        md.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {Format(measured.Value, unit)} | ≤ {Format(limit.Value, unit)} ({limitText}) | {verdict} |");
    }

    private static void LineAtLeast(StringBuilder md, string what, double? measured, double limit, string unit, string limitText, string? skip = null)
    {
        if (measured is null || double.IsNaN(measured.Value) || double.IsNaN(limit))
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {(skip is null ? "not measured" : "skipped: " + skip)} | ≥ {limitText} | not measured |");
            return;
        }
        var verdict = measured.Value >= limit ? "met" : $"**missed** by {Format(limit - measured.Value, unit)}";
        md.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {Format(measured.Value, unit)} | ≥ {Format(limit, unit)} ({limitText}) | {verdict} |");
    }

    private static string Format(double v, string unit) => unit switch
    {
        "ms" => F3(v) + " ms",
        "µs" => F1(v) + " µs",
        "%" => F1(v) + " %",
        "req/s" => F0(v) + " req/s",
        _ => F2(v) + " " + unit,
    };

    /// <summary>One target at one connection count, medians over rounds.</summary>
    /// <summary>
    /// One target at one connection count, medians over rounds. <paramref name="Failure"/> says why its
    /// answers did not prove what the row claims (then its numbers are not reported); <paramref name="Checked"/>
    /// is how many answers were checked, <paramref name="CallsPerAnswer"/> the upstream calls per answer.
    /// </summary>
    internal sealed record Row(double Rps, double P50, double P99, double AddedP50, double AddedP99, double CpuUs, long Errors,
        string? Failure = null, long Checked = 0, double CallsPerAnswer = double.NaN, double LoadMax = double.NaN);

    private static Dictionary<string, Row> Summarize(Results r, int conns, EndpointKind kind)
    {
        var rows = new Dictionary<string, Row>();
        var targets = r.TargetsOf(kind).ToDictionary(t => t.Name, StringComparer.Ordinal);
        var atLevel = r.Wrk.Where(w => w.Conns == conns && w.Round > 0 && targets.ContainsKey(w.Target)).ToList();
        var direct = atLevel.Where(w => w.Target == kind.Direct).ToDictionary(w => w.Round);
        foreach (var group in atLevel.GroupBy(w => w.Target))
        {
            var list = group.ToList();
            // The warm-up's answers are checked with the rounds': a row is only as good as all of them.
            var warmup = r.Wrk.Where(w => w.Round == 0 && w.Target == group.Key);
            var failure = Check.LoadFailure(targets[group.Key], warmup.Concat(list));
            var addedP50 = list.Where(w => direct.ContainsKey(w.Round)).Select(w => w.P50Ms - direct[w.Round].P50Ms);
            var addedP99 = list.Where(w => direct.ContainsKey(w.Round)).Select(w => w.P99Ms - direct[w.Round].P99Ms);
            var requests = list.Sum(w => w.Requests);
            rows[group.Key] = new Row(
                Stats.Median(list.Select(w => w.Rps)),
                Stats.Median(list.Select(w => w.P50Ms)),
                Stats.Median(list.Select(w => w.P99Ms)),
                Stats.Median(addedP50),
                Stats.Median(addedP99),
                Stats.Median(list.Select(w => w.CpuUsPerRequest(r.ClockTicks))),
                list.Sum(w => w.Errors),
                failure,
                list.Sum(w => w.Checked ?? 0),
                requests == 0 ? double.NaN : list.Sum(w => w.UpstreamCalls ?? 0) / (double)requests,
                list.Select(w => w.LoadAvg ?? double.NaN).DefaultIfEmpty(double.NaN).Max());
        }
        return rows;
    }

    /// <summary>Per round, a's p50 minus b's at the same connection count; the median over rounds.</summary>
    /// <summary>
    /// The nginx-relative targets round by round. The machine's speed drifts between rounds (a shared VM: nginx's
    /// own numbers show by how much), and a median of the gateway's rounds over a median of nginx's can pair a
    /// fast round of one with a slow round of the other; a ratio within one round compares the two under the same
    /// minutes. The verdicts above stay on the medians, as the issue states its targets.
    /// </summary>
    private static void RenderRoundByRound(StringBuilder md, Results r, Dictionary<int, Dictionary<string, Row>> tables)
    {
        WrkRound? Round(int conns, string target, int round) =>
            r.Wrk.FirstOrDefault(w => w.Conns == conns && w.Target == target && w.Round == round);
        bool Proven(int conns, params string[] targets) =>
            targets.All(t => tables.GetValueOrDefault(conns)?.GetValueOrDefault(t) is { Failure: null });
        // Round 0 is the warm-up: checked, never reported.
        var rounds = r.Wrk.Where(w => w.Round > 0 && w.Target is "gateway" or "nginx").Select(w => w.Round).Distinct().Order().ToList();
        if (rounds.Count == 0) return;
        var cpu16 = new List<double>();
        var rps64 = new List<double>();
        var cpu1 = new List<double>();
        md.AppendLine("Round by round (gateway and nginx in the same round; the machine's speed drifts between rounds, so these ratios are the like-for-like comparison; the verdicts above are on the medians across rounds):").AppendLine();
        md.AppendLine("| round | 16 conn: nginx CPU µs/req | gateway | ratio (≤ 2) | 64 conn: nginx req/s | gateway | ratio (≥ 0.8) | 1 conn: nginx CPU µs/req | gateway | ratio (≤ 3) |");
        md.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var round in rounds)
        {
            var cells = new List<string> { round.ToString(CultureInfo.InvariantCulture) };
            foreach (var (conns, rps, list) in new[] { (16, false, cpu16), (64, true, rps64), (1, false, cpu1) })
            {
                var ng = Proven(conns, "gateway", "nginx") ? Round(conns, "nginx", round) : null;
                var gw = Proven(conns, "gateway", "nginx") ? Round(conns, "gateway", round) : null;
                if (ng is null || gw is null)
                {
                    cells.AddRange(["—", "—", "—"]);
                    continue;
                }
                var (a, b) = rps ? (ng.Rps, gw.Rps) : (ng.CpuUsPerRequest(r.ClockTicks), gw.CpuUsPerRequest(r.ClockTicks));
                var ratio = b / a;
                if (!double.IsNaN(ratio)) list.Add(ratio);
                cells.AddRange(rps ? [F0(a), F0(b), F2(ratio)] : [F1(a), F1(b), F2(ratio)]);
            }
            md.AppendLine("| " + string.Join(" | ", cells) + " |");
        }
        string Median(List<double> ratios) => ratios.Count == 0 ? "—" : F2(Stats.Median(ratios));
        md.AppendLine(CultureInfo.InvariantCulture, $"| median | | | {Median(cpu16)} | | | {Median(rps64)} | | | {Median(cpu1)} |");
        md.AppendLine();
    }

    private static double? PairedDifference(Results r, int conns, string a, string b)
    {
        var bs = r.Wrk.Where(w => w.Conns == conns && w.Target == b).ToDictionary(w => w.Round);
        var diffs = r.Wrk.Where(w => w.Conns == conns && w.Target == a && bs.ContainsKey(w.Round)).Select(w => w.P50Ms - bs[w.Round].P50Ms).ToList();
        return diffs.Count == 0 ? null : Stats.Median(diffs);
    }

    internal sealed record StreamRow(
        double HeadersP50, double HeadersP99, double TtftP50, double TtftP99, double TtltP50, double TtltP99,
        double AddedTtftP50, double AddedTtftP99, double GapP50, double GapP99, double CoalescedPct, long Failed, long Incomplete,
        string? Failure = null, double CpuUsPerStream = double.NaN, double LoadMax = double.NaN);

    private static Dictionary<string, StreamRow> SummarizeStreams(Results r)
    {
        var rows = new Dictionary<string, StreamRow>();
        var direct = r.Streams.Where(s => s.Target == "direct").ToDictionary(s => s.Round);
        var targets = r.Targets.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var group in r.Streams.GroupBy(s => s.Target))
        {
            var list = group.ToList();
            double M(string dist, string p) => Stats.Median(list.Select(s => s.Get(dist, p)));
            double Added(string p) => Stats.Median(list.Where(s => direct.ContainsKey(s.Round)).Select(s => s.Get("ttft_ms", p) - direct[s.Round].Get("ttft_ms", p)));
            rows[group.Key] = new StreamRow(
                M("headers_ms", "p50"), M("headers_ms", "p99"), M("ttft_ms", "p50"), M("ttft_ms", "p99"), M("ttlt_ms", "p50"), M("ttlt_ms", "p99"),
                Added("p50"), Added("p99"), M("gap_ms", "p50"), M("gap_ms", "p99"),
                Stats.Median(list.Select(s => s.Probe.GetProperty("coalesced_pct").GetDouble())),
                list.Sum(s => s.Probe.GetProperty("failed").GetInt64()),
                list.Sum(s => s.Probe.GetProperty("incomplete").GetInt64()),
                Check.StreamFailure(targets.GetValueOrDefault(group.Key), list),
                Stats.Median(list.Select(s => s.CpuTicks is { } t && s.Streams is > 0 ? t * 1_000_000.0 / r.ClockTicks / s.Streams.Value : double.NaN)),
                list.Select(s => s.LoadAvg ?? double.NaN).DefaultIfEmpty(double.NaN).Max());
        }
        return rows;
    }

    /// <summary>
    /// Why the soak does not measure the miss path it names, or null: its wrk script checks every answer (a miss from
    /// provider openai) like the load rows', and a soak whose wrk said nothing proves nothing either.
    /// </summary>
    private static string? SoakFailure(Results r)
    {
        if (r.Soak?.GetProperty("wrk") is not { } wrk) return "wrk reported no result for it";
        if (!wrk.TryGetProperty("check", out var check)) return "its answers were not checked";
        var mismatched = check.GetProperty("mismatched").GetInt64();
        if (mismatched == 0) return null;
        var firstMismatch = check.TryGetProperty("first_mismatch", out var fm) ? fm.GetString() : null;
        return string.Create(CultureInfo.InvariantCulture, $"{mismatched} of {check.GetProperty("checked").GetInt64()} answers were not what a miss must say (first: {firstMismatch})");
    }

    private static long ErrorCount(JsonElement wrk)
    {
        long n = 0;
        foreach (var e in wrk.GetProperty("errors").EnumerateObject()) n += e.Value.GetInt64();
        return n;
    }

    private static double Growth(double first, double last) => first <= 0 ? double.NaN : (last - first) * 100.0 / first;

    private static string Ratio(double a, double? b, string format = "0.0") =>
        b is null || double.IsNaN(a) || double.IsNaN(b.Value) || b.Value <= 0 ? "—" : (a / b.Value).ToString(format, s_inv) + "×";

    private static string F0(double? v) => v is null || double.IsNaN(v.Value) ? "—" : v.Value.ToString("#,0", s_inv);
    private static string F1(double? v) => v is null || double.IsNaN(v.Value) ? "—" : v.Value.ToString("0.0", s_inv);
    private static string F2(double? v) => v is null || double.IsNaN(v.Value) ? "—" : v.Value.ToString("0.00", s_inv);
    private static string F3(double? v) => v is null || double.IsNaN(v.Value) ? "—" : v.Value.ToString("0.000", s_inv);

    internal sealed record WrkRound(string Target, int Conns, int Round, double Rps, double P50Ms, double P99Ms, long Requests, long CpuTicks, long Errors,
        long? Checked, long? Mismatched, string FirstMismatch, long? UpstreamCalls, double? LoadAvg)
    {
        public double CpuUsPerRequest(int clockTicks) => Requests <= 0 || CpuTicks < 0 ? double.NaN : CpuTicks * 1_000_000.0 / clockTicks / Requests;
    }

    internal sealed record StreamRound(string Target, int Round, JsonElement Probe, long? Streams, long? CpuTicks, long? UpstreamCalls, double? LoadAvg)
    {
        public double Get(string dist, string p) => Probe.GetProperty(dist).GetProperty(p).GetDouble() is var v && v >= 0 ? v : double.NaN;
    }

    /// <summary>A measured target; <paramref name="Endpoint"/> is its endpoint kind (chat when run.sh wrote none).</summary>
    internal sealed record TargetInfo(string Name, string Label, string Process, string Cache, string Endpoint,
        string Provider = "", string Upstream = "", string Calls = "", string Body = "", string Header = "");

    internal sealed record SoakSample(int T, long RssKb, long? CpuTicks = null, long? UpstreamCalls = null)
    {
        public double CpuUsPerRequest(int clockTicks) => CpuTicks is { } t && UpstreamCalls is > 0 ? t * 1_000_000.0 / clockTicks / UpstreamCalls.Value : double.NaN;
    }

    /// <summary>Everything run.sh wrote, one JSON object per line, grouped by kind.</summary>
    internal sealed class Results
    {
        public Meta Meta { get; private set; } = new(default);
        /// <summary>The "end" line: the date and load average when the measurements were over.</summary>
        public Meta End { get; private set; } = new(default);
        public List<TargetInfo> Targets { get; } = [];
        public List<(string Label, string Reason)> Skips { get; } = [];
        private readonly Dictionary<string, string> _skipByName = [];
        public List<WrkRound> Wrk { get; } = [];
        public List<StreamRound> Streams { get; } = [];
        public Dictionary<string, long> HwmKb { get; } = [];
        public List<(string Process, double Ms)> Ready { get; } = [];
        /// <summary>The runtime settings a process read back at its start, by process (the floor's).</summary>
        public Dictionary<string, string> Runtime { get; } = [];
        public JsonElement? Slow { get; private set; }
        public JsonElement? Soak { get; private set; }
        public List<SoakSample> SoakSamples { get; } = [];
        public List<string> Notes { get; } = [];
        public List<string> MicroFiles { get; } = [];
        public int ClockTicks => int.TryParse(Meta.Str("clk_tck"), out var t) && t > 0 ? t : 100;

        public double PeakRssMb(string process) => HwmKb.TryGetValue(process, out var kb) ? kb / 1024.0 : double.NaN;

        public string? SkipReason(string name) => _skipByName.GetValueOrDefault(name);

        public List<TargetInfo> TargetsOf(EndpointKind kind) => Targets.Where(t => t.Endpoint == kind.Name).ToList();

        public static Results Load(string path)
        {
            var r = new Results();
            var lineNumber = 0;
            foreach (var line in File.ReadLines(path))
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonElement e;
                try
                {
                    e = JsonDocument.Parse(line).RootElement;
                }
                catch (JsonException ex)
                {
                    r.Notes.Add($"results line {lineNumber} is not JSON and was ignored ({ex.Message})");
                    continue;
                }
                switch (e.GetProperty("kind").GetString())
                {
                    case "meta":
                        r.Meta = new Meta(e);
                        break;
                    case "target":
                        r.Targets.Add(new TargetInfo(S(e, "name"), S(e, "label"), S(e, "process"), S(e, "cache"),
                            S(e, "endpoint") is { Length: > 0 } endpoint ? endpoint : Chat.Name,
                            S(e, "provider"), S(e, "upstream"), S(e, "calls"), S(e, "body"), S(e, "header")));
                        break;
                    case "skip":
                        r.Skips.Add((S(e, "label"), S(e, "reason")));
                        r._skipByName[S(e, "name")] = S(e, "reason");
                        break;
                    case "wrk":
                        var w = e.GetProperty("wrk");
                        var check = w.TryGetProperty("check", out var c) ? c : (JsonElement?)null;
                        r.Wrk.Add(new WrkRound(S(e, "target"), e.GetProperty("conns").GetInt32(), e.GetProperty("round").GetInt32(),
                            w.GetProperty("rps").GetDouble(), w.GetProperty("p50_us").GetDouble() / 1000, w.GetProperty("p99_us").GetDouble() / 1000,
                            w.GetProperty("requests").GetInt64(), e.GetProperty("cpu_ticks").GetInt64(), ErrorCount(w),
                            Long(check, "checked"), Long(check, "mismatched"), check is { } ch && ch.TryGetProperty("first_mismatch", out var fm) ? fm.GetString() ?? "" : "",
                            Long(e, "upstream_calls"), Double(e, "loadavg")));
                        break;
                    case "stream":
                        r.Streams.Add(new StreamRound(S(e, "target"), e.GetProperty("round").GetInt32(), e.GetProperty("probe"),
                            Long(e, "streams"), Long(e, "cpu_ticks"), Long(e, "upstream_calls"), Double(e, "loadavg")));
                        break;
                    case "proc":
                        r.HwmKb[S(e, "process")] = e.GetProperty("hwm_kb").GetInt64();
                        break;
                    case "ready":
                        r.Ready.Add((S(e, "process"), e.GetProperty("ms").GetDouble()));
                        break;
                    case "runtime":
                        r.Runtime[S(e, "process")] = S(e, "settings");
                        break;
                    case "slow":
                        r.Slow = e;
                        break;
                    case "soak":
                        r.Soak = e;
                        break;
                    case "soak-sample":
                        r.SoakSamples.Add(new SoakSample(e.GetProperty("t_s").GetInt32(), e.GetProperty("rss_kb").GetInt64(),
                            e.TryGetProperty("cpu_ticks", out var st) ? st.GetInt64() : null,
                            e.TryGetProperty("upstream_calls", out var su) ? su.GetInt64() : null));
                        break;
                    case "note":
                        r.Notes.Add(S(e, "text"));
                        break;
                    case "end":
                        r.End = new Meta(e);
                        break;
                    case "micro":
                        var dir = S(e, "dir");
                        if (Directory.Exists(dir)) r.MicroFiles.AddRange(Directory.GetFiles(dir, "*-report-github.md").Order(StringComparer.Ordinal));
                        break;
                }
            }
            return r;
        }

        private static string S(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : "";

        private static long? Long(JsonElement? e, string name) =>
            e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;

        private static double? Double(JsonElement? e, string name) =>
            e is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
    }

    internal sealed class Meta(JsonElement element)
    {
        public string Str(string name) =>
            element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var v) ? v.ToString() : "?";
    }
}
