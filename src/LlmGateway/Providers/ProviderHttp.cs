using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Net;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers;

/// <summary>Plumbing every HTTP provider shares: one tuned handler per provider, error bodies, Retry-After.</summary>
public static class ProviderHttp
{
    /// <summary>Error bodies larger than this are cut: only the message matters.</summary>
    public const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>
    /// One long-lived invoker per provider: the handler itself, not an HttpClient around it. The gateway's own
    /// first-token, idle and total timeouts govern every call (no HttpClient.Timeout), it sets no base address or
    /// default headers, and a handler answers once the headers are in (HttpClient's ResponseHeadersRead), so
    /// HttpClient added only cost to every call: a linked CancellationTokenSource with its registrations, one
    /// more async level and its state-machine box (an allocation profile of the miss path, 2026-12-02).
    /// </summary>
    public static HttpMessageInvoker CreateInvoker(ProviderOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),    // follow DNS changes of cloud endpoints
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            MaxConnectionsPerServer = Math.Max(options.MaxConcurrency, 16),
            AutomaticDecompression = DecompressionMethods.None,    // SSE is forwarded as it arrives
            UseCookies = false,
            UseProxy = false,
            AllowAutoRedirect = false,                             // a redirect must not carry our key elsewhere
            EnableMultipleHttp2Connections = true,
        };
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    /// <summary>Classifies a provider's non-2xx answer from its status and its own error body.</summary>
    public delegate ProviderFailure ErrorReader(int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter);

    /// <summary>
    /// Sends an upstream request and returns once headers arrived: the response when it succeeded (the
    /// caller owns and disposes it), else the failure, a connection failure or the provider's error
    /// classified by <paramref name="readError"/>. Never throws for upstream trouble, only for the
    /// caller's cancellation.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<(HttpResponseMessage? Response, ProviderFailure? Failure)> SendAsync(
        HttpMessageInvoker client, HttpRequestMessage message, string provider, ErrorReader readError, TimeProvider time, CancellationToken cancellationToken)
    {
        var (response, failure) = await Send(client, message, provider, cancellationToken);
        if (response is null) return (null, failure);
        if (response.IsSuccessStatusCode) return (response, null);
        return (null, await ReadFailureAsync(response, provider, readError, time, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Sends an upstream request; awaited, gives the response once its headers are in, whatever its status (the caller
    /// owns and disposes it), or the failure when the connection failed. Never throws for upstream trouble, only for
    /// the caller's cancellation.
    /// </summary>
    /// <remarks>
    /// An awaitable, not an async method: the caller's own state machine is what suspends and resumes when the upstream
    /// answers, and the handler's exception, which comes out where the send is awaited, is classified by
    /// <see cref="UpstreamSend.GetResult"/>. So a provider that awaits this has no async level of its own between it and
    /// the handler (the OpenAI provider had inlined a copy of this catch to save that level), and every send maps
    /// transport exceptions to failures in this one place. It continues without the caller's context, as
    /// ConfigureAwait(false) does. The builder resumes a caller from an awaiter it does not know through its state
    /// machine's MoveNext delegate: a pooled async method keeps that delegate with its pooled box, a plain async Task
    /// method makes one per call. So only pooled callers await this directly; the native providers' async Task goes
    /// through <see cref="SendAsync"/>, whose state machine is pooled.
    /// </remarks>
    public static UpstreamSend Send(HttpMessageInvoker client, HttpRequestMessage message, string provider, CancellationToken cancellationToken)
    {
        Task<HttpResponseMessage> sending;
        try
        {
            sending = client.SendAsync(message, cancellationToken);
        }
        catch (Exception e)
        {
            // A handler that throws before it returns a task is classified as one whose task failed, as an await would.
            sending = Task.FromException<HttpResponseMessage>(e);
        }
        return new UpstreamSend(sending, provider, cancellationToken);
    }

    /// <summary>
    /// A non-2xx answer as the failure it is: its error body (at most <see cref="MaxErrorBodyBytes"/>) classified by
    /// <paramref name="readError"/>, or the connection's failure if the body can't be read. Disposes
    /// <paramref name="response"/>; throws only for the caller's cancellation.
    /// </summary>
    public static async Task<ProviderFailure> ReadFailureAsync(
        HttpResponseMessage response, string provider, ErrorReader readError, TimeProvider time, CancellationToken cancellationToken)
    {
        using (response)
        {
            try
            {
                var errorBody = await ReadBoundedAsync(response.Content, cancellationToken).ConfigureAwait(false);
                return readError((int)response.StatusCode, errorBody, ReadRetryAfter(response, time));
            }
            catch (Exception e) when (IsTransportFailure(e, cancellationToken))
            {
                return FromException(provider, e);
            }
        }
    }

    /// <summary>Reads at most <see cref="MaxErrorBodyBytes"/> of an error body.</summary>
    public static async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var first = content.Headers.ContentLength is { } known and >= 0 ? (int)Math.Min(known + 1, MaxErrorBodyBytes + 1) : 4096;
        var (buffer, length) = await Http.PooledRead.ToEndAsync(stream, first, MaxErrorBodyBytes, cancellationToken).ConfigureAwait(false);
        try
        {
            return buffer.AsSpan(0, Math.Min(length, MaxErrorBodyBytes)).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Content-Length sizes the first buffer up to this; a longer answer grows it as its bytes arrive.</summary>
    private const int MaxFirstBufferBytes = 1024 * 1024;

    /// <summary>
    /// A whole answer body in a buffer rented from <see cref="ArrayPool{T}.Shared"/>, instead of the copy
    /// <see cref="HttpContent.ReadAsByteArrayAsync()"/> makes of its own buffer: the caller owns the buffer
    /// (a <see cref="ProviderResponse"/> it is handed to returns it when disposed; otherwise
    /// <see cref="PooledBody.Return"/>). On an exception nothing is left rented. The buffer grows with the
    /// bytes that arrive, never by what Content-Length claims beyond <see cref="MaxFirstBufferBytes"/>.
    /// </summary>
    /// <remarks>
    /// The stream is taken synchronously: a handler's answer content has it already (no I/O, nothing to wait for), and
    /// <see cref="HttpContent.ReadAsStreamAsync(CancellationToken)"/> wrapped it in a new task on every call.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<PooledBody> ReadPooledAsync(HttpContent content, CancellationToken cancellationToken)
    {
        using var stream = content.ReadAsStream(cancellationToken);
        // One byte more than announced, so the read that finds the end needs no bigger buffer.
        var first = content.Headers.ContentLength is { } known and >= 0 ? (int)Math.Min(known + 1, MaxFirstBufferBytes) : 16 * 1024;
        var (buffer, length) = await PooledRead.ToEndAsync(stream, first, Array.MaxLength, cancellationToken).ConfigureAwait(false);
        return new PooledBody(buffer, length);
    }

    /// <summary>Retry-After (seconds or an HTTP date) or retry-after-ms, whichever the upstream sent.</summary>
    public static TimeSpan? ReadRetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var ms) &&
            double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var millis) && millis >= 0)
        {
            return TimeSpan.FromMilliseconds(millis);
        }
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta) return delta;
        if (retryAfter?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }
        return null;
    }

    /// <summary>
    /// Classifies an OpenAI-shaped (or unreadable) error response. Native translators parse their own
    /// bodies and call <see cref="Classify"/> with what they found.
    /// </summary>
    public static ProviderFailure FromOpenAiError(string provider, int status, ReadOnlySpan<byte> body, TimeSpan? retryAfter)
    {
        string? message = null, type = null, code = null, param = null;
        try
        {
            var info = OpenAiResponseInspector.Inspect(body);
            message = info.ErrorMessage;
            type = info.ErrorType;
            code = info.ErrorCode;
            param = info.ErrorParam;
        }
        catch (JsonException)
        {
            // Not JSON (an HTML error page from a proxy, say): keep a short plain-text excerpt.
            message = body.Length == 0 ? null : System.Text.Encoding.UTF8.GetString(body[..Math.Min(body.Length, 300)]);
        }
        return Classify(provider, status, message, type, code, retryAfter, param);
    }

    public static ProviderFailure Classify(string provider, int status, string? message, string? type, string? code, TimeSpan? retryAfter, string? param = null)
    {
        var kind = ProviderFailure.KindForStatus(status);
        if (status is 400 or 413 or 422 && ProviderFailure.LooksLikeContextLength(code, message))
        {
            kind = FailureKind.ContextLength;
        }
        else if (status == 429 && (code == "insufficient_quota" || type == "insufficient_quota"))
        {
            // OpenAI's "you exceeded your current quota" is billing, not load: waiting won't fix it.
            kind = FailureKind.NextCandidate;
        }
        var safe = SecretScrubber.Scrub(message);
        var text = kind == FailureKind.FailRequest && safe.Length > 0
            ? safe
            : $"Provider '{provider}' returned {status}{(safe.Length > 0 ? ": " + safe : ".")}";
        var cause = status switch
        {
            429 when kind == FailureKind.Retryable => FailureCause.RateLimited,
            529 => FailureCause.Overloaded,
            _ => FailureCause.UpstreamStatus,
        };
        return new ProviderFailure(kind, cause, provider, text, status, type, code, param) { RetryAfter = retryAfter };
    }

    /// <summary>
    /// Whether an exception from an upstream send or read is the upstream's transport failing, a failure of the provider's
    /// (<see cref="FromException"/>), rather than the caller's cancellation or a bug, which are thrown. Every catch around
    /// an upstream send or read filters on this, so which exceptions count against a provider is decided here. An
    /// InvalidDataException is a body its framing can't carry (an SSE line too long): only a stream's reader throws one.
    /// </summary>
    public static bool IsTransportFailure(Exception e, CancellationToken cancellationToken) =>
        e is HttpRequestException or IOException or InvalidDataException && !cancellationToken.IsCancellationRequested;

    /// <summary>Maps a transport exception (<see cref="IsTransportFailure"/>) to a failure.</summary>
    public static ProviderFailure FromException(string provider, Exception e) => e switch
    {
        HttpRequestException h => ProviderFailure.Connection(provider, SecretScrubber.Scrub(h.Message)) with
        {
            Unreachable = h.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
                or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError,
        },
        IOException io => ProviderFailure.Connection(provider, "the connection broke: " + SecretScrubber.Scrub(io.Message)),
        InvalidDataException d => ProviderFailure.Protocol(provider, d.Message),
        JsonException j => ProviderFailure.Protocol(provider, "invalid JSON: " + j.Message),
        _ => ProviderFailure.Protocol(provider, e.GetType().Name),
    };
}

/// <summary>An upstream send being awaited (<see cref="ProviderHttp.Send"/>): the handler's task, read without its exceptions.</summary>
public readonly struct UpstreamSend(Task<HttpResponseMessage> sending, string provider, CancellationToken cancellationToken) : ICriticalNotifyCompletion
{
    public UpstreamSend GetAwaiter() => this;

    public bool IsCompleted => sending.IsCompleted;

    public void OnCompleted(Action continuation) => sending.ConfigureAwait(false).GetAwaiter().OnCompleted(continuation);

    public void UnsafeOnCompleted(Action continuation) => sending.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(continuation);

    /// <summary>The response, or the connection's failure; the caller's cancellation and bugs are thrown.</summary>
    public (HttpResponseMessage? Response, ProviderFailure? Failure) GetResult()
    {
        try
        {
            return (sending.GetAwaiter().GetResult(), null);
        }
        catch (Exception e) when (ProviderHttp.IsTransportFailure(e, cancellationToken))
        {
            return (null, ProviderHttp.FromException(provider, e));
        }
    }
}

/// <summary>
/// A body read into a buffer rented from <see cref="ArrayPool{T}.Shared"/>: its first <see cref="Length"/>
/// bytes. Whoever holds it gives the buffer back once (<see cref="Return"/>, or by handing it to
/// <see cref="ProviderResponse.Completed(PooledBody, TokenUsage, string?)"/>) and reads it no more after.
/// </summary>
public readonly record struct PooledBody(byte[] Buffer, int Length)
{
    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);
    public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, Length);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}
