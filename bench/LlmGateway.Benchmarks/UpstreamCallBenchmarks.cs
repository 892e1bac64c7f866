using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using LlmGateway.Configuration;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Providers.Anthropic;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Routing;

namespace LlmGateway.Benchmarks;

/// <summary>
/// Step 5's upstream call as the OpenAI provider makes it: the request message, its headers and pooled body, the
/// handler's HTTP/1.1 over a loopback socket (its header writing and parsing, connection pooling), the answer read
/// into the pooled buffer and inspected for its usage. What <see cref="MissPathBenchmarks"/>' fake upstream leaves out.
/// The upstream (<see cref="LoopbackUpstream"/>) answers on threads of its own and allocates nothing per request, so
/// the bytes are the provider's and the handler's; times include the loopback's kernel work and are noisy.
/// The Anthropic row is the same call through a native provider (<see cref="NativeProvider"/>, which sends through
/// <see cref="ProviderHttp.SendAsync"/>) and its translation of the answer.
/// </summary>
[MemoryDiagnoser]
public class UpstreamCallBenchmarks
{
    private LoopbackUpstream _upstream = null!;
    private OpenAiProvider _provider = null!;
    private LoopbackUpstream _anthropicUpstream = null!;
    private AnthropicProvider _anthropic = null!;
    private ChatRequest _miss = null!;
    private ProviderRequest _request;

    [GlobalSetup]
    public void Setup()
    {
        _upstream = new LoopbackUpstream(Samples.Completion);
        Environment.SetEnvironmentVariable("BENCH_UPSTREAM_KEY", "bench-dummy-upstream-key");
        var options = new ProviderOptions { Type = ProviderTypes.OpenAi, BaseUrl = $"http://127.0.0.1:{_upstream.Port}/v1", ApiKeyEnv = "BENCH_UPSTREAM_KEY", MaxConcurrency = 64 };
        _provider = (OpenAiProvider)new OpenAiProviderFactory(TimeProvider.System).Create("openai", options);
        _miss = ChatRequest.TryParse(Samples.MissBody, out _) ?? throw new InvalidOperationException("the miss body does not parse");
        var model = new ModelOptions { Provider = "openai", UpstreamModel = "bench-upstream", ContextWindow = 128000, MaxOutputTokens = 4096 };
        _request = new ProviderRequest(_miss, "bench-model", model);

        // The row is checked to be the path it names: a complete answer over the socket, its usage read from the body,
        // and the request as the upstream saw it (the key, the JSON type, the renamed model).
        _upstream.KeepNextRequest = true;
        var response = _provider.SendAsync(_request, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        try
        {
            if (!response.IsSuccess || response.Stream is not null || response.Usage != new TokenUsage(236, 58) || !response.Body.Span.SequenceEqual(Samples.Completion))
                throw new InvalidOperationException($"the provider did not read the loopback's answer: {response.Failure?.Message}");
        }
        finally
        {
            response.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        var seen = _upstream.LastRequest ?? throw new InvalidOperationException("the loopback saw no request");
        if (!seen.StartsWith("POST /v1/chat/completions HTTP/1.1\r\n", StringComparison.Ordinal)
            || !seen.Contains("\r\nAuthorization: Bearer bench-dummy-upstream-key\r\n", StringComparison.Ordinal)
            || !seen.Contains("\r\nContent-Type: application/json\r\n", StringComparison.Ordinal)
            || !seen.Contains("\"model\":\"bench-upstream\"", StringComparison.Ordinal))
            throw new InvalidOperationException("the upstream request is not the one the provider should send: " + seen);

        _anthropicUpstream = new LoopbackUpstream(AnthropicCompletion);
        var anthropicOptions = new ProviderOptions { Type = ProviderTypes.Anthropic, BaseUrl = $"http://127.0.0.1:{_anthropicUpstream.Port}", ApiKeyEnv = "BENCH_UPSTREAM_KEY", MaxConcurrency = 64 };
        _anthropic = (AnthropicProvider)new AnthropicProviderFactory(TimeProvider.System).Create("anthropic", anthropicOptions);
        var translated = _anthropic.SendAsync(_request, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        try
        {
            if (!translated.IsSuccess || translated.Stream is not null || translated.Usage != new TokenUsage(236, 58) || translated.Body.IsEmpty)
                throw new InvalidOperationException($"the Anthropic provider did not read the loopback's answer: {translated.Failure?.Message}");
        }
        finally
        {
            translated.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>A complete Messages API answer, as Anthropic sends it for a non-streaming request.</summary>
    private static readonly byte[] AnthropicCompletion = Encoding.UTF8.GetBytes(
        """{"id":"msg_bench","type":"message","role":"assistant","model":"bench-upstream","content":[{"type":"text","text":"A short answer from the upstream, twenty words or so, for the translation to read and the client to get."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":236,"output_tokens":58}}""");

    [GlobalCleanup]
    public void Cleanup()
    {
        _upstream.Dispose();
        _anthropicUpstream.Dispose();
        _miss.Dispose();
    }

    /// <summary>One non-streaming chat call to the upstream and its answer let go, as step 5 and step 7 do.</summary>
    [Benchmark]
    public async Task<int> OpenAiProvider_Send_LoopbackUpstream()
    {
        var response = await _provider.SendAsync(_request, CancellationToken.None).ConfigureAwait(false);
        var length = response.Body.Length;
        await response.DisposeAsync().ConfigureAwait(false);
        return length;
    }

    /// <summary>
    /// <see cref="OpenAiProvider_Send_LoopbackUpstream"/> through the Anthropic provider: the native providers' send. Each
    /// row awaits its provider itself: a helper shared by both would be a state machine with one field more, and the
    /// OpenAI row's bytes would no longer compare with its earlier runs.
    /// </summary>
    [Benchmark]
    public async Task<int> AnthropicProvider_Send_LoopbackUpstream()
    {
        var response = await _anthropic.SendAsync(_request, CancellationToken.None).ConfigureAwait(false);
        var length = response.Body.Length;
        await response.DisposeAsync().ConfigureAwait(false);
        return length;
    }
}

/// <summary>
/// An HTTP/1.1 upstream on loopback answering every POST with one fixed JSON body: blocking sockets on a thread per
/// connection and one buffer each, so that it allocates nothing per request.
/// </summary>
internal sealed class LoopbackUpstream : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly byte[] _response;
    private readonly List<Socket> _connections = [];
    private volatile bool _stopped;

    public LoopbackUpstream(byte[] body)
    {
        _response = [.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nDate: Thu, 03 Dec 2026 06:00:00 GMT\r\n\r\n"), .. body];
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        new Thread(Accept) { IsBackground = true, Name = "loopback-accept" }.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>Set to keep the next request's bytes as text in <see cref="LastRequest"/> (the setup's check).</summary>
    public volatile bool KeepNextRequest;
    public volatile string? LastRequest;

    private void Accept()
    {
        while (!_stopped)
        {
            Socket connection;
            try
            {
                connection = _listener.Accept();
            }
            catch (SocketException)
            {
                return;
            }
            lock (_connections) _connections.Add(connection);
            new Thread(() => Serve(connection)) { IsBackground = true, Name = "loopback-connection" }.Start();
        }
    }

    private void Serve(Socket connection)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        try
        {
            while (true)
            {
                // The headers, then the body Content-Length announces; whatever follows is the next request's.
                int end;
                while ((end = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    var read = connection.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
                    if (read == 0) return;
                    length += read;
                }
                var total = end + 4 + ContentLength(buffer.AsSpan(0, end));
                while (length < total)
                {
                    var read = connection.Receive(buffer, length, buffer.Length - length, SocketFlags.None);
                    if (read == 0) return;
                    length += read;
                }
                if (KeepNextRequest)
                {
                    LastRequest = Encoding.UTF8.GetString(buffer, 0, total);
                    KeepNextRequest = false;
                }
                connection.Send(_response);
                buffer.AsSpan(total, length - total).CopyTo(buffer);
                length -= total;
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            connection.Dispose();
        }
    }

    private static int ContentLength(ReadOnlySpan<byte> headers)
    {
        var at = headers.IndexOf("\r\nContent-Length: "u8);
        if (at < 0) return 0;
        var value = headers[(at + 18)..];
        var n = 0;
        foreach (var b in value)
        {
            if (b is < (byte)'0' or > (byte)'9') break;
            n = n * 10 + (b - '0');
        }
        return n;
    }

    public void Dispose()
    {
        _stopped = true;
        _listener.Dispose();
        lock (_connections)
        {
            foreach (var c in _connections) c.Dispose();
        }
    }
}
