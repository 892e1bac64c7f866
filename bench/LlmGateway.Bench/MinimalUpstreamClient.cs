using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Bench;

/// <summary>
/// A measuring stick, not a client: the least an HTTP/1.1 call to the mock can cost in .NET, for the floor's
/// <c>BENCH_FLOOR_CLIENT=minimal</c>. Pooled sockets, the request head and body in one send, the answer read into one
/// buffer, its status, Content-Type, Content-Length and the mock's mark handed on; no HttpRequestMessage,
/// HttpResponseMessage, header collections, metrics or async levels beyond this one. It reads only what the mock
/// answers (a Content-Length body that fits its 64 KB buffer) and throws on anything else. Between the floor with it
/// and the floor with HttpClient is what .NET's HTTP client costs on this path, an upper bound on what any leaner
/// upstream client in the gateway could save.
/// </summary>
internal sealed class MinimalUpstreamClient(IPEndPoint endpoint, string authority)
{
    private const int BufferBytes = 64 * 1024;
    private readonly ConcurrentStack<Connection> _idle = new();

    private sealed class Connection(Socket socket)
    {
        public Socket Socket { get; } = socket;
        public byte[] Buffer { get; } = new byte[BufferBytes];
    }

    /// <summary>Posts <paramref name="body"/> to <paramref name="path"/> and writes the answer to <paramref name="http"/>'s response.</summary>
    public async Task ForwardAsync(HttpContext http, ReadOnlyMemory<byte> body, string path, CancellationToken aborted)
    {
        if (!_idle.TryPop(out var connection))
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endpoint, aborted).ConfigureAwait(false);
            connection = new Connection(socket);
        }
        var buffer = connection.Buffer;
        var head = $"POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n";
        var sent = Encoding.ASCII.GetBytes(head, buffer);
        if (sent + body.Length > BufferBytes) throw new InvalidOperationException("The minimal client sends bodies up to 64 KB.");
        body.Span.CopyTo(buffer.AsSpan(sent));
        sent += body.Length;
        await connection.Socket.SendAsync(buffer.AsMemory(0, sent), SocketFlags.None, aborted).ConfigureAwait(false);

        // The head, then the rest of a Content-Length body, into the same buffer.
        var received = 0;
        int headEnd;
        while ((headEnd = buffer.AsSpan(0, received).IndexOf("\r\n\r\n"u8)) < 0) received += await ReceiveAsync(connection, received, aborted).ConfigureAwait(false);
        var (status, length, contentType, mark) = ReadHead(buffer.AsSpan(0, headEnd));
        var bodyStart = headEnd + 4;
        if (bodyStart + length > BufferBytes) throw new InvalidOperationException("The minimal client reads answers up to 64 KB.");
        while (received - bodyStart < length) received += await ReceiveAsync(connection, received, aborted).ConfigureAwait(false);

        var response = http.Response;
        response.StatusCode = status;
        if (contentType is not null) response.ContentType = contentType;
        response.ContentLength = length;
        if (mark is not null) response.Headers[MockUpstream.UpstreamHeader] = mark;
        try
        {
            await response.Body.WriteAsync(buffer.AsMemory(bodyStart, length), aborted).ConfigureAwait(false);
        }
        finally
        {
            // Back only once its buffer has been written out: the next call reuses it.
            _idle.Push(connection);
        }
    }

    private static async ValueTask<int> ReceiveAsync(Connection connection, int offset, CancellationToken aborted)
    {
        var read = await connection.Socket.ReceiveAsync(connection.Buffer.AsMemory(offset), SocketFlags.None, aborted).ConfigureAwait(false);
        return read > 0 ? read : throw new IOException("The upstream closed the connection.");
    }

    private static (int Status, int Length, string? ContentType, string? Mark) ReadHead(ReadOnlySpan<byte> head)
    {
        if (head.Length < 12 || !Utf8Parser.TryParse(head.Slice(9, 3), out int status, out _)) throw new InvalidDataException("Not an HTTP/1.1 answer.");
        int? length = null;
        string? contentType = null, mark = null;
        foreach (var range in head.Split("\r\n"u8))
        {
            var line = head[range];
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) continue;
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim((byte)' ');
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8) && Utf8Parser.TryParse(value, out int parsed, out _)) length = parsed;
            else if (Ascii.EqualsIgnoreCase(name, "Content-Type"u8)) contentType = Encoding.ASCII.GetString(value);
            else if (Ascii.EqualsIgnoreCase(name, MockUpstream.UpstreamHeader)) mark = Encoding.ASCII.GetString(value);
        }
        return (status, length ?? throw new InvalidDataException("The minimal client reads Content-Length answers only."), contentType, mark);
    }
}
