using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LlmGateway.Bench;

/// <summary>
/// Reads a dotnet-trace thread-time profile (the EventPipe sample profiler, exported as speedscope
/// JSON) of the gateway under load and says where its busy time goes, by the parts of the request path
/// the issue names: Kestrel, body read, parse, routing, cache, budgets, ledger, metrics, logs, provider
/// code, HttpClient, response write, the thread pool, unresolved native code.
/// <para>
/// Each sample is one thread at one moment: <c>CPU_TIME</c> (running managed code) or
/// <c>UNMANAGED_CODE_TIME</c> (in native code: a syscall, the runtime, or blocked). Native time whose
/// innermost managed frame is a wait (a parked thread-pool worker, a sleeping timer, the epoll thread)
/// is idle and left out; the rest counts as busy. A busy sample goes to the first part whose frame
/// appears walking from the leaf to the root, so JSON parsing under the request parser counts as
/// parse and socket sends under HttpClient as HttpClient.
/// </para>
/// </summary>
internal static class ProfileReport
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    /// <summary>The parts, in the order a frame is tested (a frame matching two patterns takes the first).</summary>
    private static readonly (string Part, string[] Patterns)[] s_parts =
    [
        ("logs (per-request log line, Serilog)", ["Serilog", "LlmGateway.Usage.RequestLog", "Microsoft.Extensions.Logging"]),
        ("metrics and tracing", ["LlmGateway.Telemetry", "OpenTelemetry", "System.Diagnostics.Metrics", "System.Diagnostics.DiagnosticSource", "System.Diagnostics.Activity", "HostingMetrics", "HostingApplicationDiagnostics"]),
        ("ledger", ["LlmGateway.Usage.UsageLedger", "LlmGateway.Usage.LedgerEntry"]),
        ("budgets", ["LlmGateway.Budgets"]),
        ("cache", ["LlmGateway.Caching"]),
        ("routing", ["LlmGateway.Routing"]),
        ("parse (request JSON)", ["LlmGateway.Pipeline.ChatRequest", "LlmGateway.Pipeline.RequestJson", "LlmGateway.Pipeline.JsonScanner", "LlmGateway.Pipeline.TokenEstimator",
            "LlmGateway.ChatCompletions.ChatRequest", "LlmGateway.ChatCompletions.RequestJson", "LlmGateway.ChatCompletions.TokenEstimator", "LlmGateway.Embeddings.EmbeddingsRequest"]),
        ("body read", ["LlmGateway.Http.RequestBody", "ChatCompletionsHandler+<ReadBodyAsync>", "ChatCompletionsHandler.ReadBodyAsync"]),
        ("response write (headers, body)", ["LlmGateway.Http.GatewayHeaders.Write", "ChatCompletionsHandler+<WriteAsync>", "ChatCompletionsHandler.WriteAsync",
            "ChatCompletionsHandler+<StreamAsync>", "ChatCompletionsHandler+<CompleteAsync>", "LlmGateway.Streaming.SseResponseWriter"]),
        ("provider (upstream request body, answer read)", ["LlmGateway.Providers"]),
        ("HttpClient (upstream call)", ["System.Net.Http"]),
        ("resilience (candidate executor)", ["LlmGateway.Resilience"]),
        ("auth, keys, conversations", ["LlmGateway.Auth", "LlmGateway.Conversations"]),
        ("pipeline and handler (the rest of GatewayPipeline and the chat ingress)", ["LlmGateway.Pipeline", "LlmGateway.ChatCompletions", "LlmGateway.Embeddings"]),
        ("ASP.NET Core (middleware, endpoint routing, request delegate)", ["LlmGateway.Http", "Microsoft.AspNetCore.Routing", "Microsoft.AspNetCore.Http", "Microsoft.AspNetCore.Diagnostics", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Builder"]),
        ("Kestrel (connection, HTTP/1.1 parsing, socket I/O)", ["Microsoft.AspNetCore.Server.Kestrel"]),
    ];


    /// <summary>Busy samples with none of the parts' frames: the runtime's own work, by innermost frame.</summary>
    private static readonly (string Part, string[] Patterns)[] s_runtimeParts =
    [
        ("thread pool spin-waiting (idle workers looking for work)", ["LowLevelLifoSemaphore.Wait", "LowLevelSpinWaiter", "SemaphoreSlim.Wait", "WorkerThreadStart", "SpinWait", "PortableThreadPool", "Thread.Sleep"]),
        ("GC and allocation", ["PollGC", "GC.", "GCHeap", "Allocate"]),
        ("socket engine (epoll thread)", ["SocketAsyncEngine", "System.Net.Sockets"]),
        ("thread pool dispatch and async machinery", ["ThreadPoolWorkQueue", "System.Threading", "System.Runtime.CompilerServices"]),
    ];

    /// <summary>Innermost managed frames under which native time is a thread waiting, not working.</summary>
    private static readonly string[] s_waits =
    [
        "LowLevelLifoSemaphore.WaitForSignal", "LowLevelLifoSemaphore.WaitNative", "LowLevelLifoSemaphore.Wait(", "WaitHandle.WaitOneNoCheck", "WaitHandle.WaitMultiple", "Monitor.Wait(",
        "ManualResetEventSlim.Wait", "SemaphoreSlim.Wait", "Thread.Sleep", "WorkerThreadStart", "FileSystem.Watcher", "WaitForSocketEvents",
        "SocketAsyncEngine.EventLoop", "BlockingCollection", "Thread.Join", "WaitSubsystem", "TimerQueue", "Task.SpinThenBlockingWait",
        "Console", "WaitForPendingFinalizers", "Interop+Sys.Read(", "Interop+Sys.Poll",
    ];

    /// <summary>
    /// The finalizer thread blocked between batches shows as this managed frame with nothing below it, sampled as
    /// CPU time: under a 16-connection load the profile gave it 16.5 % of busy samples while /proc said the
    /// ".NET Finalizer" thread used 0 ticks in 6 s. A real finalizer at work has its Finalize frame below it.
    /// </summary>
    private const string FinalizerWait = "System.GC.RunFinalizers";

    private const string CpuTime = "CPU_TIME";
    private const string UnmanagedTime = "UNMANAGED_CODE_TIME";
    private const string Unresolved = "unresolved (native frames only, or a stack the sampler could not walk)";

    public static int Run(Args args)
    {
        var path = args.Require("speedscope");
        var output = args.Require("out");
        var cpuUs = double.Parse(args.Require("cpu-us-per-request"), s_inv);
        var requests = long.Parse(args.Require("requests"), s_inv);
        var title = args.Get("title") ?? "Profile";
        // What the CPU is counted per: "request" (wrk's answers) or "stream" (stream-probe's streams).
        var unit = args.Get("unit") ?? "request";
        var notes = args.All("note");

        var result = Analyze(path);
        var md = new StringBuilder();
        md.AppendLine(s_inv, $"## {title}").AppendLine();
        foreach (var n in notes) md.AppendLine(s_inv, $"- {n}");
        if (notes.Count > 0) md.AppendLine();
        md.AppendLine(s_inv, $"Thread-time samples: {F1(result.TotalMs / 1000)} s over {result.Threads} threads; busy {F1(result.BusyMs / 1000)} s (managed code running {F1(result.ManagedMs / 1000)} s, native code not waiting {F1(result.NativeBusyMs / 1000)} s); waiting {F1(result.WaitMs / 1000)} s, left out.");
        md.AppendLine(s_inv, $"CPU per {unit} in the traced window (from /proc, all threads): {F1(cpuUs)} µs over {requests.ToString("#,0", s_inv)} {unit}s; \"µs/{unit}\" below is that times each part's share of busy samples.").AppendLine();
        md.AppendLine(s_inv, $"| part of the request path | share of busy samples | ≈ µs/{unit} | of which in native code |");
        md.AppendLine("| --- | ---: | ---: | ---: |");
        foreach (var (part, ms, native) in result.Parts.OrderByDescending(p => p.Ms))
        {
            var share = result.BusyMs <= 0 ? 0 : ms / result.BusyMs;
            md.AppendLine(s_inv, $"| {part} | {F1(share * 100)} % | {F1(share * cpuUs)} | {F1(ms <= 0 ? 0 : native / ms * 100)} % |");
        }
        md.AppendLine();

        md.AppendLine("Hottest innermost frames of the busy samples (where the time is actually spent, whatever part it is for):").AppendLine();
        md.AppendLine("| frame | share of busy samples | part |").AppendLine("| --- | ---: | --- |");
        foreach (var (frame, part, ms) in result.TopFrames.Take(25))
        {
            md.AppendLine(s_inv, $"| `{Short(frame)}` | {F1(ms / result.BusyMs * 100)} % | {part} |");
        }
        md.AppendLine();
        File.WriteAllText(output, md.ToString());
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    internal sealed record Analysis(double TotalMs, double BusyMs, double ManagedMs, double NativeBusyMs, double WaitMs, int Threads,
        List<(string Part, double Ms, double NativeMs)> Parts, List<(string Frame, string Part, double Ms)> TopFrames);

    internal static Analysis Analyze(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var frames = doc.RootElement.GetProperty("shared").GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("name").GetString() ?? "?").ToArray();
        // Patterns are matched against the method, not its argument list (a writer taking a ChatRequest is not the parser).
        var names = frames.Select(f => f.IndexOf('(', StringComparison.Ordinal) is > 0 and var paren ? f[..paren] : f).ToArray();
        // Per distinct stack (as a string of frame ids), its classification, computed once.
        var partOfFrame = new string?[frames.Length];
        var tested = new bool[frames.Length];
        string? PartOf(int frame, (string Part, string[] Patterns)[] parts)
        {
            foreach (var (part, patterns) in parts)
            {
                foreach (var p in patterns)
                {
                    if (names[frame].Contains(p, StringComparison.Ordinal)) return part;
                }
            }
            return null;
        }

        var byPart = new Dictionary<string, (double Ms, double Native)>(StringComparer.Ordinal);
        var byFrame = new Dictionary<(string Frame, string Part), double>();
        double total = 0, busy = 0, managed = 0, nativeBusy = 0, wait = 0;
        var threads = 0;
        var stack = new List<int>();
        foreach (var profile in doc.RootElement.GetProperty("profiles").EnumerateArray())
        {
            if (profile.GetProperty("type").GetString() != "evented") continue;
            threads++;
            stack.Clear();
            double? last = null;
            foreach (var e in profile.GetProperty("events").EnumerateArray())
            {
                var at = e.GetProperty("at").GetDouble();
                if (last is { } l && stack.Count > 0)
                {
                    var dt = at - l;
                    total += dt;
                    Attribute(dt);
                }
                last = at;
                var frame = e.GetProperty("frame").GetInt32();
                if (e.GetProperty("type").GetString() == "O") stack.Add(frame);
                else if (stack.Count > 0) stack.RemoveAt(stack.Count - 1);
            }
        }

        void Attribute(double dt)
        {
            var leaf = frames[stack[^1]];
            var native = leaf == UnmanagedTime;
            var managedLeaf = leaf == CpuTime;
            // The innermost real frame: below the pseudo-frame, skipping unresolved ones.
            var inner = -1;
            for (var i = stack.Count - 1 - (native || managedLeaf ? 1 : 0); i >= 0; i--)
            {
                if (!frames[stack[i]].StartsWith("?!", StringComparison.Ordinal) && !frames[stack[i]].StartsWith("Thread (", StringComparison.Ordinal))
                {
                    inner = stack[i];
                    break;
                }
            }
            if (native && (inner < 0 || s_waits.Any(w => frames[inner].Contains(w, StringComparison.Ordinal)))
                || inner >= 0 && frames[inner].Contains(FinalizerWait, StringComparison.Ordinal))
            {
                wait += dt;
                return;
            }
            busy += dt;
            if (native) nativeBusy += dt;
            else managed += dt;

            string? part = null;
            for (var i = stack.Count - 1; i >= 0 && part is null; i--)
            {
                var f = stack[i];
                if (!tested[f])
                {
                    partOfFrame[f] = PartOf(f, s_parts);
                    tested[f] = true;
                }
                part = partOfFrame[f];
            }
            part ??= inner < 0 ? Unresolved : PartOf(inner, s_runtimeParts) ?? "other runtime and framework code";
            var (ms, nat) = byPart.GetValueOrDefault(part);
            byPart[part] = (ms + dt, nat + (native ? dt : 0));
            var key = (inner < 0 ? Unresolved : frames[inner] + (native ? " [native]" : ""), part);
            byFrame[key] = byFrame.GetValueOrDefault(key) + dt;
        }

        return new Analysis(total, busy, managed, nativeBusy, wait, threads,
            byPart.Select(p => (p.Key, p.Value.Ms, p.Value.Native)).ToList(),
            byFrame.OrderByDescending(p => p.Value).Select(p => (p.Key.Frame, p.Key.Part, p.Value)).ToList());
    }

    /// <summary>"Assembly!Namespace.Type.Method(args)" without the argument list, for a table.</summary>
    private static string Short(string frame)
    {
        var paren = frame.IndexOf('(', StringComparison.Ordinal);
        var s = paren > 0 ? frame[..paren] + (frame.EndsWith(" [native]", StringComparison.Ordinal) ? " [native]" : "") : frame;
        return s.Replace("|", "\\|", StringComparison.Ordinal).Replace("`", "'", StringComparison.Ordinal);
    }

    private static string F1(double v) => v.ToString("0.0", s_inv);
}
