using System.Buffers;
using System.Text;
using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;

namespace LlmGateway.Telemetry;

/// <summary>
/// The opt-in content log (Gateway:Logging:IncludeContent = true): after a model request answered 200
/// (chat completions, Responses, Messages), one line with its request id, the prompt (the request's
/// <c>messages</c>, or the Responses API's <c>input</c>, as JSON) and the completion text, each cut at <see cref="MaxChars"/> and scrubbed of key-shaped strings. It watches the request
/// from outside the pipeline (a buffered request body, a copy of what the response wrote), so with the
/// flag off nothing of this runs, and the request log line never carries content.
/// </summary>
public sealed class ContentLog(ILogger<ContentLog> logger)
{
    public const int MaxChars = 16 * 1024;
    private static readonly EventId s_event = new(2, "RequestContent");

    public async Task RunAsync(HttpContext http, RequestDelegate next)
    {
        http.Request.EnableBuffering();
        var original = http.Response.Body;
        var capture = new CapturingStream(original, MaxChars * 4);
        http.Response.Body = capture;
        try
        {
            await next(http).ConfigureAwait(false);
        }
        finally
        {
            http.Response.Body = original;
        }
        if (http.Response.StatusCode != StatusCodes.Status200OK) return;

        var prompt = await ReadPromptAsync(http.Request).ConfigureAwait(false);
        var completion = (http.Response.ContentType ?? "").StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase)
            ? CompletionFromStream(capture.Captured)
            : CompletionFromBody(capture.Captured);
        logger.LogInformation(s_event, "Content of {RequestId}: {Prompt} => {Completion}",
            http.Response.Headers[GatewayHeaders.RequestId].ToString(), Cut(SecretScrubber.Scrub(prompt)), Cut(SecretScrubber.Scrub(completion)));
    }

    /// <summary>
    /// The prompt, from the bytes the buffering stream kept while the ingress read them, and never from the connection:
    /// the request has been answered, so its client may be gone. A body with a Content-Length was read to that length
    /// and no further (<see cref="RequestBody"/> does not make the read that would only return 0), so reading on to the
    /// end of the stream went back to the transport, which once the client has left (an SSE client hangs up at [DONE],
    /// before the gateway has settled the request) may throw instead of returning 0: an OperationCanceledException,
    /// which is not a failure to parse, and the line was lost. Exactly that many bytes are all in the buffer.
    /// </summary>
    private static async Task<string> ReadPromptAsync(HttpRequest request)
    {
        byte[]? rented = null;
        try
        {
            request.Body.Position = 0;
            // The buffer's length bounds what is rented, never the length the client claimed: a body the ingress did not
            // buffer whole (it was refused) has no prompt to log.
            var known = request.ContentLength;
            if (known > request.Body.Length) return "";
            using var doc = known is > 0 and <= int.MaxValue
                ? JsonDocument.Parse(await ReadBufferedAsync(request.Body, rented = ArrayPool<byte>.Shared.Rent((int)known.Value), (int)known.Value).ConfigureAwait(false))
                // Without a Content-Length the ingress read to the stream's end, so the buffer holds all of it.
                : await JsonDocument.ParseAsync(request.Body).ConfigureAwait(false);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return "";
            return root.TryGetProperty("messages"u8, out var messages) ? messages.GetRawText()
                : root.TryGetProperty("input"u8, out var input) ? input.GetRawText()
                : "";
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return "";
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static async Task<ReadOnlyMemory<byte>> ReadBufferedAsync(Stream body, byte[] buffer, int length)
    {
        // Fewer bytes than the Content-Length (a client that sent less) end in EndOfStreamException, an IOException.
        await body.ReadExactlyAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
        return buffer.AsMemory(0, length);
    }

    /// <summary>The text of a chat.completion's choices, a Message's text blocks, or a Response's output text.</summary>
    internal static string CompletionFromBody(ReadOnlySpan<byte> body)
    {
        var text = new StringBuilder();
        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            AppendChoices(doc.RootElement, "message"u8, text);
            AppendTextBlocks(doc.RootElement, text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("output"u8, out var output) && output.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in output.EnumerateArray()) AppendTextBlocks(item, text);
            }
        }
        catch (JsonException)
        {
            // Cut off at the capture limit: what was read so far is all there is.
        }
        return text.ToString();
    }

    /// <summary>The text deltas of an SSE stream: chat.completion.chunk, Anthropic's text_delta, the Responses API's output_text.delta.</summary>
    internal static string CompletionFromStream(ReadOnlySpan<byte> sse)
    {
        var text = new StringBuilder();
        foreach (var line in Encoding.UTF8.GetString(sse).Split('\n'))
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            try
            {
                using var doc = JsonDocument.Parse(line["data: ".Length..]);
                var root = doc.RootElement;
                AppendChoices(root, "delta"u8, text);
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("delta"u8, out var delta))
                {
                    if (delta.ValueKind == JsonValueKind.String && IsType(root, "response.output_text.delta"u8)) text.Append(delta.GetString());
                    else if (delta.ValueKind == JsonValueKind.Object && IsType(delta, "text_delta"u8) && delta.TryGetProperty("text"u8, out var t) && t.ValueKind == JsonValueKind.String) text.Append(t.GetString());
                }
            }
            catch (JsonException)
            {
            }
        }
        return text.ToString();
    }

    private static void AppendChoices(JsonElement root, ReadOnlySpan<byte> part, StringBuilder text)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array) return;
        foreach (var choice in choices.EnumerateArray())
        {
            if (choice.TryGetProperty(part, out var message) && message.ValueKind == JsonValueKind.Object &&
                message.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String)
            {
                text.Append(content.GetString());
            }
        }
    }

    /// <summary>The text of a <c>content</c> array's text parts: a Message's text blocks, a Response message's output_text.</summary>
    private static void AppendTextBlocks(JsonElement root, StringBuilder text)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("content"u8, out var content) || content.ValueKind != JsonValueKind.Array) return;
        foreach (var block in content.EnumerateArray())
        {
            if (block.ValueKind == JsonValueKind.Object && (IsType(block, "text"u8) || IsType(block, "output_text"u8)) &&
                block.TryGetProperty("text"u8, out var t) && t.ValueKind == JsonValueKind.String)
            {
                text.Append(t.GetString());
            }
        }
    }

    private static bool IsType(JsonElement element, ReadOnlySpan<byte> type) =>
        element.TryGetProperty("type"u8, out var t) && t.ValueKind == JsonValueKind.String && t.ValueEquals(type);

    private static string Cut(string text) => text.Length <= MaxChars ? text : text[..MaxChars] + "…";

    /// <summary>Passes every write through and keeps a copy of the first <c>limit</c> bytes.</summary>
    private sealed class CapturingStream(Stream inner, int limit) : Stream
    {
        private readonly MemoryStream _copy = new();

        public ReadOnlySpan<byte> Captured => _copy.GetBuffer().AsSpan(0, (int)_copy.Length);

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Keep(buffer);
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Keep(buffer.Span);
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private void Keep(ReadOnlySpan<byte> buffer)
        {
            var room = limit - (int)_copy.Length;
            if (room > 0) _copy.Write(buffer[..Math.Min(room, buffer.Length)]);
        }
    }
}
