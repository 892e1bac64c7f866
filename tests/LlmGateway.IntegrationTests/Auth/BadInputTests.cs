using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>
/// Bad input through the real HTTP stack: the gateway on Kestrel on 127.0.0.1, with its Kestrel
/// limits, and clients on real sockets. Every bad request gets a 4xx, never a 5xx or a hang.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private const int MaxRequestBytes = 1024 * 1024;
    private GatewayFactory _gateway = null!;
    private Uri _base = null!;

    public Task InitializeAsync()
    {
        var settings = AuthKit.MockSettings();
        settings["Gateway:Limits:MaxRequestBytes"] = MaxRequestBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Gateway:Limits:RequestHeadersTimeoutSeconds"] = "1";
        _gateway = new GatewayFactory(settings);
        _base = _gateway.StartOnLoopback();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private static HttpClient Client(Uri baseAddress) => new(new SocketsHttpHandler { MaxConnectionsPerServer = 16 })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromSeconds(30),
    };

    [Fact]
    public async Task Thousands_of_malformed_bodies_all_get_an_openai_shaped_4xx_and_the_gateway_stays_healthy()
    {
        var corpus = BadInputCorpus.Generate(seed: 20250308, MaxRequestBytes);
        Assert.True(corpus.Count >= 3000, $"corpus has {corpus.Count} cases");
        using var client = Client(_base);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var gate = new SemaphoreSlim(8);
        var wrong = new ConcurrentQueue<string>();
        var statuses = new ConcurrentDictionary<int, int>();

        var tasks = corpus.Select(async c =>
        {
            await gate.WaitAsync(deadline.Token);
            try
            {
                using var content = new ByteArrayContent(c.Body);
                if (c.ContentType is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(c.ContentType);
                using var response = await client.PostAsync("/v1/chat/completions", content, deadline.Token);
                var status = (int)response.StatusCode;
                statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
                var text = await response.Content.ReadAsStringAsync(deadline.Token);
                if (status is < 400 or >= 500)
                {
                    wrong.Enqueue($"{c.Kind} #{c.Index}: {status} {text[..Math.Min(text.Length, 300)]}\n  body: {Excerpt(c.Body)}");
                    return;
                }
                try
                {
                    var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
                    if (error.GetProperty("message").ValueKind != JsonValueKind.String || error.GetProperty("type").GetString() is not { Length: > 0 })
                    {
                        wrong.Enqueue($"{c.Kind} #{c.Index}: {status} error without message or type: {text[..Math.Min(text.Length, 300)]}");
                    }
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    wrong.Enqueue($"{c.Kind} #{c.Index}: {status} body is not an OpenAI error: {text[..Math.Min(text.Length, 300)]}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                wrong.Enqueue($"{c.Kind} #{c.Index}: no answer ({e.GetType().Name}: {e.Message})");
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(tasks);

        Assert.True(wrong.IsEmpty, $"{wrong.Count} of {corpus.Count} cases went wrong (statuses {string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}):\n" + string.Join("\n", wrong.Take(30)));
        Assert.True(statuses.ContainsKey(400) && statuses.ContainsKey(413) && statuses.ContainsKey(404));

        // Healthy afterwards: alive, and a valid request is answered.
        using var live = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        using var valid = await client.PostAsync("/v1/chat/completions", new StringContent(BadInputCorpus.Valid, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, valid.StatusCode);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_refused_with_413_before_the_client_finishes_sending()
    {
        using var socket = await ConnectAsync();
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: {_base.Authority}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
        var chunk = Encoding.ASCII.GetBytes("{\"model\":\"mock-echo\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 64 * 1024));
        var sent = 0;
        // More than the limit, but never the final zero-length chunk: the body is never complete.
        while (sent <= MaxRequestBytes)
        {
            var payload = chunk.AsMemory(0, Math.Min(chunk.Length, 64 * 1024));
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{payload.Length:X}\r\n"));
            await stream.WriteAsync(payload);
            await stream.WriteAsync("\r\n"u8.ToArray());
            sent += payload.Length;
        }

        var head = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 413", head);
        Assert.Contains("Content-Type: application/json", head, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_content_length_over_the_limit_is_refused_with_413_without_reading_the_body()
    {
        using var socket = await ConnectAsync();
        var stream = socket.GetStream();
        // Announce 100 MB and send none of it: the answer must not wait for the body.
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: {_base.Authority}\r\nContent-Type: application/json\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"));
        var head = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 413", head);
    }

    [Fact]
    public async Task Too_many_request_headers_are_refused_by_kestrel_with_431()
    {
        using var client = Client(_base);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        for (var i = 0; i < 70; i++) request.Headers.TryAddWithoutValidation($"X-Filler-{i}", "x");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);

        using var fine = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
        Assert.False(fine.Headers.Contains("Server"), "the Server header is off");
    }

    [Fact]
    public async Task Request_headers_larger_than_the_limit_are_refused_with_431()
    {
        using var client = Client(_base);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        request.Headers.TryAddWithoutValidation("X-Big", new string('b', 40 * 1024));
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task A_client_that_never_finishes_its_headers_is_disconnected()
    {
        using var socket = await ConnectAsync();
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /v1/chat/completions HTTP/1.1\r\nHost: {_base.Authority}\r\nX-Slow: "));

        // RequestHeadersTimeoutSeconds is 1 here (Kestrel's own default is 30 s); the bound is generous
        // and only says the connection is not held open indefinitely.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var buffer = new byte[4096];
        var received = new StringBuilder();
        int read;
        while ((read = await stream.ReadAsync(buffer, bound.Token)) > 0) received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        // Kestrel answers 408 when it can, then closes.
        Assert.True(received.Length == 0 || received.ToString().StartsWith("HTTP/1.1 408", StringComparison.Ordinal), received.ToString());
    }

    [Fact]
    public async Task A_task_type_header_with_bytes_that_are_not_ascii_is_a_400_not_a_500()
    {
        using var socket = await ConnectAsync();
        var stream = socket.GetStream();
        var body = Encoding.UTF8.GetBytes(BadInputCorpus.Valid);
        byte[] request = [.. Encoding.ASCII.GetBytes(
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: {_base.Authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nX-Task-Type: caf"),
            0xC3, 0xA9, .. "\r\n\r\n"u8, .. body];
        await stream.WriteAsync(request);
        var head = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 400", head);
    }

    private static string Excerpt(byte[] body) => Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 400));

    private async Task<TcpClient> ConnectAsync()
    {
        var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, _base.Port);
        return socket;
    }

    /// <summary>Reads up to the end of the response headers (bounded in time and size).</summary>
    private static async Task<string> ReadHeadAsync(NetworkStream stream)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var buffer = new byte[8192];
        var head = new StringBuilder();
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && head.Length < 64 * 1024)
        {
            var read = await stream.ReadAsync(buffer, bound.Token);
            if (read == 0) break;
            head.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        return head.ToString();
    }
}
