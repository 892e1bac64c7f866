using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace LlmGateway.Bench;

/// <summary>
/// Where a miss's allocated bytes go: the runtime's allocation sampling (one GCAllocationTick event about every
/// 100 KB allocated, with its type and call stack) from a dotnet-trace of the gateway under load, summed by type and
/// by the innermost method of the gateway's own code on the stack (or the first frame when there is none: what
/// Kestrel and HttpClient allocate without being asked by a gateway method). Divided by the requests of the same
/// window, the bytes per request are an estimate with the sampling's grain; the shares are the reliable part.
/// bench/diagnose.sh alloc runs it.
/// </summary>
internal static class AllocReport
{
    public static int Run(Args args)
    {
        var trace = args.Require("trace");
        var requests = args.Int("requests", 0);
        var top = args.Int("top", 20);
        if (requests <= 0) throw new ArgumentException("--requests must be the number of requests in the traced window.");

        var byType = new Dictionary<string, long>();
        var byOwner = new Dictionary<string, long>();
        long total = 0, ticks = 0;
        using (var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(trace)))
        {
            foreach (var ev in log.Events)
            {
                if (ev is not GCAllocationTickTraceData tick) continue;
                var bytes = tick.AllocationAmount64;
                total += bytes;
                ticks++;
                byType[tick.TypeName] = byType.GetValueOrDefault(tick.TypeName) + bytes;
                var owner = Owner(ev.CallStack());
                byOwner[owner] = byOwner.GetValueOrDefault(owner) + bytes;
            }
        }
        if (ticks == 0)
        {
            Console.Error.WriteLine("no allocation events in the trace (was the GC keyword 0x1 collected at verbose level?)");
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{total / 1e6:F1} MB sampled in {ticks} allocation ticks over {requests} requests: about {total / 1024.0 / requests:F2} KB per request"));
        Print("by type", byType, total, requests, top);
        Print("by the innermost gateway method on the stack (\"(framework)\": none; its first frame)", byOwner, total, requests, top);
        return 0;
    }

    private static string Owner(TraceCallStack? stack)
    {
        string? first = null;
        for (var frame = stack; frame is not null; frame = frame.Caller)
        {
            var name = frame.CodeAddress.FullMethodName;
            if (string.IsNullOrEmpty(name)) continue;
            first ??= name;
            if (name.StartsWith("LlmGateway.", StringComparison.Ordinal)) return Short(name);
        }
        return "(framework) " + Short(first ?? "unknown");
    }

    /// <summary>The method without its parameter list: the name says where, the signature only makes the line long.</summary>
    private static string Short(string method)
    {
        var paren = method.IndexOf('(', StringComparison.Ordinal);
        return paren > 0 ? method[..paren] : method;
    }

    private static void Print(string title, Dictionary<string, long> bytes, long total, int requests, int top)
    {
        Console.WriteLine($"\n{title}:");
        foreach (var (name, b) in bytes.OrderByDescending(kv => kv.Value).Take(top))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {100.0 * b / total,5:F1} %  {b / (double)requests,7:F0} B/req  {name}"));
        }
    }
}
