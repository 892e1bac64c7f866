using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>A request as the fake upstream received it.</summary>
public sealed record ReceivedRequest(string Method, string Path, string Query, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;
    public string? Header(string name) => Headers.TryGetValue(name.ToLowerInvariant(), out var v) ? v : null;
}

/// <summary>
/// A real Kestrel host on 127.0.0.1 standing in for a provider: the handler writes whatever wire
/// format the test needs (status codes, SSE framing, error bodies), so flushing, cancellation and
/// broken connections are real.
/// </summary>
public sealed class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;

    private FakeUpstream(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";
    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>The behaviour; a test may swap it between requests.</summary>
    public Func<HttpContext, ReceivedRequest, Task> Handler { get; set; } = (http, _) =>
    {
        http.Response.StatusCode = 500;
        return Task.CompletedTask;
    };

    /// <summary>Set when a request's connection was aborted by the caller (the gateway cancelling upstream).</summary>
    public TaskCompletionSource RequestAborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>An OTLP/HTTP collector that accepts every export (protobuf, 200) and keeps the requests for a test to read.</summary>
    public static Task<FakeUpstream> StartOtlpCollectorAsync() => StartAsync(static (http, _) =>
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/x-protobuf";
        return Task.CompletedTask;
    });

    public static async Task<FakeUpstream> StartAsync(Func<HttpContext, ReceivedRequest, Task>? handler = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var upstream = new FakeUpstream(app);
        if (handler is not null) upstream.Handler = handler;
        app.Run(async http =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            var headers = http.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
            var received = new ReceivedRequest(http.Request.Method, http.Request.Path, http.Request.QueryString.Value ?? "", headers, body.ToArray());
            upstream.Requests.Enqueue(received);
            Interlocked.Increment(ref upstream._calls);
            http.RequestAborted.Register(() => upstream.RequestAborted.TrySetResult());
            try
            {
                await upstream.Handler(http, received);
            }
            catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
            {
            }
            catch (IOException)
            {
            }
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.BaseUrl = address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal);
        return upstream;
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
