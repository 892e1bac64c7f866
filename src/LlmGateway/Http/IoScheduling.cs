using LlmGateway.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace LlmGateway.Http;

/// <summary>Gateway:Server: how the process runs its network I/O.</summary>
public sealed class ServerOptions
{
    public const string Inline = "inline";
    public const string ThreadPool = "thread-pool";

    /// <summary>
    /// <c>inline</c> (the default): a request runs on the socket engine's event threads, one per core, from
    /// the client's bytes through the upstream call to the answer, as nginx or Node.js run theirs.
    /// <c>thread-pool</c>: .NET's default, every socket completion is handed to a thread-pool worker.
    /// See <see cref="IoScheduling"/> for what each costs.
    /// </summary>
    public string IoScheduling { get; set; } = Inline;

    public static void Validate(ServerOptions o, List<string> errors)
    {
        if (o.IoScheduling is not (Inline or ThreadPool))
        {
            errors.Add($"Gateway:Server:IoScheduling must be '{Inline}' or '{ThreadPool}', not '{o.IoScheduling}'.");
        }
    }
}

/// <summary>
/// Where socket completions and the request code after them run.
/// <para>
/// Why inline is the default: with .NET's default every completion is a hand-off: the event thread that
/// saw the socket ready queues a work item, and a parked thread-pool worker is woken to run it. A proxied
/// request has four of them (the client's request, the upstream's answer, and Kestrel's own scheduling of
/// each), and on a small VM a wake-up and the context switch behind it cost more than the gateway's own
/// steps together: perf on the 2-core bench machine (2026-12-02, 16 connections) put the kernel's
/// task-switch and wake-up paths at about a quarter of the gateway's CPU, and the thread-pool mode made
/// 2.3 context switches per request at 16 connections and 14.9 at one connection, against 0.8 and 2.2
/// inline. The bench (bench/RESULTS.md) has both modes as rows: on 2026-12-02, CPU per request at one
/// connection 195.7 µs (thread pool) against 107.7 µs (inline), at 16 connections 77.2 against 74.4 µs;
/// the price there was the tail, added p99 at 16 connections 2.7 against 5.1 ms, because on 2 cores shared
/// with the load generator and the upstream an event thread preempted by them holds up all its connections.
/// </para>
/// <para>
/// The price: code after an await of a socket runs on an event thread, so one request doing long CPU work
/// there delays the other connections of that thread (by at most what the work takes, the same trade as
/// any event loop), and a synchronous wait on a socket there would never finish. The gateway's request
/// path has neither: every socket, store and upstream call is awaited, and what blocks (the log writer,
/// the ledger's file) runs on threads of its own. An operator running code of their own in the process, who
/// cares more for the tail under saturation than for CPU, or who measures the other mode better on their
/// hardware, sets <c>thread-pool</c>.
/// </para>
/// </summary>
public static class IoScheduling
{
    /// <summary>The runtime's own switch for socket completions; read once, when the first socket is used.</summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Applies Gateway:Server:IoScheduling. The socket half is a process-wide runtime switch read when the
    /// first socket operation starts, so it is set here, before the host opens any socket; an operator's
    /// own value of the environment variable is left as it is. The Kestrel half follows the validated option.
    /// </summary>
    public static WebApplicationBuilder UseIoScheduling(this WebApplicationBuilder builder)
    {
        var mode = builder.Configuration[$"{GatewayOptions.SectionName}:Server:IoScheduling"] ?? ServerOptions.Inline;
        if (mode == ServerOptions.Inline && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
        builder.Services.AddOptions<SocketTransportOptions>().Configure<IOptions<GatewayOptions>>((transport, gateway) =>
            // Kestrel continues on the thread that completed the socket read instead of queueing the request to
            // the thread pool; with inline completions that is the event thread.
            transport.UnsafePreferInlineScheduling = gateway.Value.Server.IoScheduling == ServerOptions.Inline);
        return builder;
    }
}
