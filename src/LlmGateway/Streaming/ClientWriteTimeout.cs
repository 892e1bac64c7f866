using LlmGateway.Configuration;
using Microsoft.Extensions.Options;

namespace LlmGateway.Streaming;

/// <summary>
/// Disconnects a client that stops reading: armed around each write to the response, it aborts the connection when
/// one write waits on the client longer than <c>Gateway:Limits:ResponseWriteTimeoutSeconds</c>. Kestrel's own
/// MinResponseDataRate can't do this for a stream: every write that lands in the socket buffers earns credit at
/// 240 B/s, so a fast stream banks minutes of it before the client stalls, and one large body earns days. Aborting
/// frees the upstream call behind the response too (the request's cancellation follows the connection), and the
/// request is recorded as the client's outcome (499), never the provider's.
/// </summary>
public sealed class ClientWriteTimeout : IDisposable
{
    private readonly TimeSpan _timeout;
    private readonly CancellationTokenSource _timer;
    private readonly CancellationTokenRegistration _abort;

    private ClientWriteTimeout(HttpContext http, TimeSpan timeout, TimeProvider time)
    {
        _timeout = timeout;
        _timer = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        _abort = _timer.Token.UnsafeRegister(static s => ((HttpContext)s!).Abort(), http);
    }

    /// <summary>The response's write timeout, made on first use (with the configured limit and clock) and disposed with the response.</summary>
    public static ClientWriteTimeout For(HttpContext http)
    {
        if (http.Features.Get<ClientWriteTimeout>() is { } existing) return existing;
        var services = http.RequestServices;
        var seconds = services.GetService<IOptions<GatewayOptions>>()?.Value.Limits.ResponseWriteTimeoutSeconds ?? LimitsOptions.DefaultResponseWriteTimeoutSeconds;
        var timeout = new ClientWriteTimeout(http, TimeSpan.FromSeconds(seconds), services.GetService<TimeProvider>() ?? TimeProvider.System);
        http.Features.Set(timeout);
        http.Response.RegisterForDispose(timeout);
        return timeout;
    }

    /// <summary>True once a write waited too long and the connection was aborted.</summary>
    public bool Fired => _timer.IsCancellationRequested;

    /// <summary>
    /// Runs one write or flush to <paramref name="http"/>'s response under its timeout. The time between writes is the
    /// upstream's, not the client's. A write that completed at once (an answer or a chunk that lands in the socket
    /// buffers, as nearly every one does) never waited on the client: it costs no timer, no registration and no
    /// feature lookup, and the timeout is made only for a write that waits.
    /// </summary>
    public static ValueTask RunAsync(HttpContext http, ValueTask write) => write.IsCompleted ? write : For(http).WaitAsync(write);

    /// <inheritdoc cref="RunAsync(HttpContext, ValueTask)"/>
    public static ValueTask<T> RunAsync<T>(HttpContext http, ValueTask<T> write) => write.IsCompleted ? write : For(http).WaitAsync(write);

    /// <summary>True when <paramref name="http"/>'s timeout fired: the connection was cut, the client did not get what was written.</summary>
    public static bool FiredFor(HttpContext http) => http.Features.Get<ClientWriteTimeout>() is { Fired: true };

    private async ValueTask<T> WaitAsync<T>(ValueTask<T> write)
    {
        if (!_timer.IsCancellationRequested) _timer.CancelAfter(_timeout);
        try
        {
            return await write.ConfigureAwait(false);
        }
        finally
        {
            if (!_timer.IsCancellationRequested) _timer.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    private async ValueTask WaitAsync(ValueTask write)
    {
        if (!_timer.IsCancellationRequested) _timer.CancelAfter(_timeout);
        try
        {
            await write.ConfigureAwait(false);
        }
        finally
        {
            if (!_timer.IsCancellationRequested) _timer.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _abort.Dispose();
        _timer.Dispose();
    }
}
