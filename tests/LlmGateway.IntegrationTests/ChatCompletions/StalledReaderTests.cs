using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using LlmGateway.IntegrationTests.Telemetry;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.ChatCompletions;

/// <summary>
/// Streaming clients that stop reading, on real sockets end to end: the built gateway as a child process
/// (real Kestrel, so back-pressure and its write timeout are real), a real Kestrel fake provider streaming
/// faster than the client reads, and raw TCP clients that send a request, read a little and then stall.
/// A stalled reader is the client's outcome (499, cancelled): it is cut off at the write timeout, its
/// upstream call is cancelled, and the provider's circuit and health never move.
/// </summary>
public sealed class StalledReaderTests : IAsyncLifetime
{
    private const string AdminKey = "stalled-tests-admin-key-0123456789";
    private const int Clients = 10;
    private static readonly string Chunk = new('x', 8 * 1024);
    private FakeUpstream _upstream = null!;
    private int _upstreamAborted;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, _) =>
        {
            try
            {
                OpenAiWire.StartSse(http);
                await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
                // A healthy provider that keeps sending (8 KB a chunk) until the gateway hangs up: far more than
                // the socket buffers between the gateway and a client that stopped reading can hold.
                for (var i = 0; i < 100_000; i++)
                {
                    await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: Chunk));
                    await Task.Delay(10, http.RequestAborted);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
                Interlocked.Increment(ref _upstreamAborted);
            }
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    /// <summary>Every dialect's streaming ingress: a cut-off client is the client's outcome in each.</summary>
    public static TheoryData<string, string> StreamingRequests => new()
    {
        { "/v1/chat/completions", """{"model":"test-model","stream":true,"messages":[{"role":"user","content":"tell me everything"}]}""" },
        { "/v1/responses", """{"model":"test-model","stream":true,"input":"tell me everything"}""" },
        { "/v1/messages", """{"model":"test-model","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"tell me everything"}]}""" },
    };

    [Theory]
    [MemberData(nameof(StreamingRequests))]
    public async Task Ten_clients_that_stop_reading_are_cut_off_as_499s_and_never_move_the_providers_circuit_or_health(string path, string body)
    {
        // A write blocked on the client waits up to 6 s, twice the provider's idle timeout: time spent waiting on
        // the client must never count as the provider going quiet.
        var environment = Environment(writeTimeoutSeconds: 6, idleTimeoutSeconds: 3);
        environment["Gateway__Auth__AdminKeyEnv"] = "STALLED_TESTS_ADMIN_KEY";
        environment["STALLED_TESTS_ADMIN_KEY"] = AdminKey;
        environment["Gateway__Resilience__CircuitBreaker__MinimumThroughput"] = "2";
        environment["Gateway__Resilience__CircuitBreaker__FailureRatio"] = "0.1";
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using var gateway = GatewayProcess.Start(environment, "--urls", url);
        await gateway.WaitLiveAsync(url);
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        var port = new Uri(url).Port;

        var stalled = await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => StallAsync(port, path, body)));

        // Every stalled client was disconnected by the gateway (not by the test), and every upstream call behind one cancelled.
        Assert.All(stalled, closedByGateway => Assert.True(closedByGateway, "a stalled client was still connected after 30 s"));
        await StoreTestKit.EventuallyAsync(() => Task.FromResult(Volatile.Read(ref _upstreamAborted) == Clients), "every upstream call to be cancelled");

        MetricsText metrics = null!;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            metrics = await MetricsText.ScrapeAsync(http);
            var cancelled = Count(metrics, "499");
            return (cancelled == Clients, string.Join("; ", metrics.Find("llm_gateway_requests_total").Select(x => $"{string.Join(",", x.Labels.Select(l => l.Key + "=" + l.Value))} {x.Value}")) + "\n" + gateway.Log);
        }, "ten 499s in the request counter");
        Assert.Equal(Clients, metrics.Find("llm_gateway_requests_total").Sum(s => s.Value)); // nothing recorded as broken, 502 or 504
        Assert.Equal(0, metrics.Value("llm_gateway_circuit_state", ("provider", "up")));

        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/providers");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var providers = await http.SendAsync(request);
        var up = JsonDocument.Parse(await providers.Content.ReadAsStringAsync()).RootElement.GetProperty("data").EnumerateArray()
            .Single(p => p.GetProperty("name").GetString() == "up");
        Assert.Equal("closed", up.GetProperty("circuit").GetString());
        Assert.Equal(0, up.GetProperty("recent").GetProperty("errors").GetInt32());
        Assert.Equal(JsonValueKind.Null, up.GetProperty("last_error").ValueKind);

        // And the provider still answers the next client in full.
        _upstream.Handler = (h, _) => OpenAiWire.WriteJsonAsync(h, OpenAiWire.Completion("still healthy"));
        using var next = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"test-model","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task A_client_that_stops_reading_a_large_complete_answer_is_cut_off_as_a_499()
    {
        // 16 MB of answer: its write waits on the client, so the write timeout (made only for a write that
        // did not complete at once) must be armed and must fire.
        var answer = OpenAiWire.Completion(new string('y', 16 * 1024 * 1024));
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, answer);
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using var gateway = GatewayProcess.Start(Environment(writeTimeoutSeconds: 2, idleTimeoutSeconds: 30), "--urls", url);
        await gateway.WaitLiveAsync(url);

        var closedByGateway = await StallAsync(new Uri(url).Port, "/v1/chat/completions", """{"model":"test-model","messages":[{"role":"user","content":"tell me everything"}]}""");

        Assert.True(closedByGateway, "the stalled client was still connected after 30 s:\n" + gateway.Log);
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        await StoreTestKit.EventuallyAsync(async () =>
        {
            var metrics = await MetricsText.ScrapeAsync(http);
            return (Count(metrics, "499") == 1, string.Join("; ", metrics.Find("llm_gateway_requests_total").Select(x => $"{string.Join(",", x.Labels.Select(l => l.Key + "=" + l.Value))} {x.Value}")));
        }, "the answer recorded as the client's 499");
    }

    [Fact]
    public async Task A_client_that_pauses_longer_than_the_providers_idle_timeout_still_gets_the_whole_answer_and_the_provider_no_blame()
    {
        const int Chunks = 400; // 3.2 MB: far more than the socket buffers hold while the client pauses
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            for (var i = 0; i < Chunks; i++) await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: Chunk));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        // The pause (4 s) is longer than the provider's idle timeout (2 s) and shorter than the write timeout.
        await using var gateway = GatewayProcess.Start(Environment(writeTimeoutSeconds: 30, idleTimeoutSeconds: 2), "--urls", url);
        await gateway.WaitLiveAsync(url);
        var port = new Uri(url).Port;

        using var client = new TcpClient();
        client.ReceiveBufferSize = 4096;
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(RequestHead(port, "/v1/chat/completions", ChatStream)));
        var buffer = new byte[64 * 1024];
        var read = await stream.ReadAsync(buffer);
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(buffer, 0, read));

        await Task.Delay(TimeSpan.FromSeconds(4)); // the pause: the gateway's writes wait on this client meanwhile

        var tail = "";
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!tail.Contains("data: [DONE]", StringComparison.Ordinal))
        {
            read = await stream.ReadAsync(buffer, bound.Token);
            Assert.True(read > 0, "the gateway ended the stream before [DONE]:\n" + gateway.Log);
            tail = (tail + Encoding.ASCII.GetString(buffer, 0, read))[^Math.Min(tail.Length + read, 256)..];
        }
        Assert.DoesNotContain("\"error\"", tail);

        using var http = new HttpClient { BaseAddress = new Uri(url) };
        MetricsText metrics = null!;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            metrics = await MetricsText.ScrapeAsync(http);
            return (Count(metrics, "200") == 1, Count(metrics, "200"));
        }, "the stream recorded as a 200");
        Assert.Equal(1, metrics.Find("llm_gateway_requests_total").Sum(s => s.Value));
        Assert.Equal(0, metrics.Value("llm_gateway_circuit_state", ("provider", "up")));
    }

    /// <summary>The fake as provider "up" serving "test-model", with the two timeouts these tests set against each other.</summary>
    private Dictionary<string, string?> Environment(int writeTimeoutSeconds, int idleTimeoutSeconds) => new()
    {
        ["Gateway__Limits__ResponseWriteTimeoutSeconds"] = writeTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Gateway__Resilience__StreamIdleTimeoutSeconds"] = idleTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Gateway__Resilience__MaxRetries"] = "0",
        ["Gateway__Providers__up__Type"] = "openai",
        ["Gateway__Providers__up__BaseUrl"] = _upstream.BaseUrl + "/v1",
        ["Gateway__Models__test-model__Provider"] = "up",
        ["Gateway__Models__test-model__UpstreamModel"] = "upstream-model",
        ["Serilog__MinimumLevel__Default"] = "Warning",
    };

    private const string ChatStream = """{"model":"test-model","stream":true,"messages":[{"role":"user","content":"tell me everything"}]}""";

    private static string RequestHead(int port, string path, string body)
    {
        return $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
    }

    private static double Count(MetricsText metrics, string status) =>
        metrics.Find("llm_gateway_requests_total").Where(s => s.Labels.GetValueOrDefault("status") == status).Sum(s => s.Value);

    /// <summary>Sends a streaming request on a raw socket, reads its first bytes, then stops reading; true when the gateway closed the connection.</summary>
    private static async Task<bool> StallAsync(int port, string path, string body)
    {
        using var client = new TcpClient();
        client.ReceiveBufferSize = 4096; // a small window, so the stall reaches the gateway quickly
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(RequestHead(port, path, body)));
        var first = new byte[64];
        var read = await stream.ReadAsync(first);
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(first, 0, read));

        // Stop reading: the gateway fills the socket buffers, its write waits, and past the write timeout it hangs up.
        // The connection is watched through the kernel's TCP table, never by reading (which would drain it).
        var local = (IPEndPoint)client.Client.LocalEndPoint!;
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(500);
            var state = System.Net.NetworkInformation.IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpConnections()
                .Where(c => c.LocalEndPoint.Port == local.Port && c.RemoteEndPoint.Port == port)
                .Select(c => (System.Net.NetworkInformation.TcpState?)c.State).FirstOrDefault();
            // CloseWait: the gateway sent its FIN; gone: it reset the connection.
            if (state is null or System.Net.NetworkInformation.TcpState.CloseWait or System.Net.NetworkInformation.TcpState.Closed) return true;
        }
        return false;
    }
}
