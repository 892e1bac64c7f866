using System.Net;
using System.Text;
using LlmGateway.Streaming;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>
/// Reads a stream the gateway breaks after it started: one error event, then, <see cref="SseResponseWriter.BrokenStreamGrace"/>
/// later, an aborted connection. That grace is real time (the network's), and WebApplicationFactory's in-memory client
/// throws on every read once the request is aborted, even for bytes already written: a client that had not read the
/// error event within 200 ms (a loaded machine) lost it, and whatever came just before. Here the grace runs on the test's
/// clock (<see cref="Hold"/>, registered under <see cref="SseResponseWriter.GraceClockKey"/>) and ends only once the client
/// has read the error event and the gateway is waiting: the same order every run.
/// </summary>
public static class BrokenStream
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(10);

    /// <summary>Times the gateway's abort grace on <paramref name="grace"/>: give it to the gateway's TestServices.</summary>
    public static void Hold(this IServiceCollection services, ManualTimeProvider grace) =>
        services.AddKeyedSingleton<TimeProvider>(SseResponseWriter.GraceClockKey, grace);

    /// <summary>
    /// Runs <paramref name="read"/>, which calls the action it is given once its client has read the error event; then
    /// lets the held grace run out and returns what was read. Each wait fails at its deadline; a stream that ends without
    /// an error event, or without waiting its grace, fails; one that never aborts times out. The caller checks that the
    /// read ended in an error (the abort), not cleanly.
    /// </summary>
    public static async Task<T> ReadAsync<T>(ManualTimeProvider grace, Func<Action, Task<T>> read)
    {
        var errorRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = read(() => errorRead.TrySetResult());

        await Task.WhenAny(errorRead.Task, reading, Task.Delay(s_guard));
        Assert.True(errorRead.Task.IsCompleted, reading.IsCompleted ? "the stream ended without an error event" : "no error event within 10 s");
        await grace.WaitForTimerAsync(SseResponseWriter.BrokenStreamGrace, reading);
        grace.Advance(SseResponseWriter.BrokenStreamGrace);
        return await reading.WaitAsync(s_guard);
    }

    /// <summary>
    /// POSTs the streamed chat request <paramref name="body"/> to a fresh gateway with <paramref name="settings"/> and its
    /// grace held, and reads the broken stream it must answer to its aborted end.
    /// </summary>
    public static async Task<SseClient.Result> PostAsync(Dictionary<string, string?> settings, string body)
    {
        var grace = new ManualTimeProvider();
        await using var gateway = new GatewayFactory(settings) { TestServices = s => s.Hold(grace) };
        using var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await ReadAsync(response, grace);
    }

    /// <summary>An OpenAI-format stream (its error event's data has an "error" property), read to its aborted end.</summary>
    public static async Task<SseClient.Result> ReadAsync(HttpResponseMessage response, ManualTimeProvider grace)
    {
        var result = await ReadAsync(grace, errorRead => SseClient.ReadAllAsync(response, e =>
        {
            if (e.Contains("\"error\"", StringComparison.Ordinal)) errorRead();
        }));
        Assert.NotNull(result.Error); // aborted: a clean end would pass the cut answer off as complete
        return result;
    }
}
