using System.Text;
using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;

namespace LlmGateway.Telemetry;

/// <summary>
/// The opt-in content log (Gateway:Logging:IncludeContent = true): after a chat request answered 200,
/// one line with its request id, the prompt (the request's <c>messages</c> as JSON) and the completion
/// text, each cut at <see cref="MaxChars"/> and scrubbed of key-shaped strings. It watches the request
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

    private static async Task<string> ReadPromptAsync(HttpRequest request)
    {
        try
        {
            request.Body.Position = 0;
            using var doc = await JsonDocument.ParseAsync(request.Body).ConfigureAwait(false);
            return doc.RootElement.TryGetProperty("messages"u8, out var messages) ? messages.GetRawText() : "";
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return "";
        }
    }

    /// <summary>The text of every choice's message in a chat.completion.</summary>
    internal static string CompletionFromBody(ReadOnlySpan<byte> body)
    {
        var text = new StringBuilder();
        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            AppendChoices(doc.RootElement, "message"u8, text);
        }
        catch (JsonException)
        {
            // Cut off at the capture limit: what was read so far is all there is.
        }
        return text.ToString();
    }

    /// <summary>The text of the content deltas of an SSE stream of chat.completion.chunk events.</summary>
    internal static string CompletionFromStream(ReadOnlySpan<byte> sse)
    {
        var text = new StringBuilder();
        foreach (var line in Encoding.UTF8.GetString(sse).Split('\n'))
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            try
            {
                using var doc = JsonDocument.Parse(line["data: ".Length..]);
                AppendChoices(doc.RootElement, "delta"u8, text);
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
