using LlmGateway.ChatCompletions;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;

namespace LlmGateway.Auth;

/// <summary>
/// A key's RPM and TPM at admission. RPM takes one unit per request; TPM takes the request's
/// estimated size (prompt estimate plus the output it may produce) and the returned
/// <see cref="KeyLimitTicket"/> corrects that to the real usage when the request ends. The state is
/// reported in OpenAI's <c>x-ratelimit-*</c> headers on every answer, refused or not.
/// </summary>
public sealed class KeyRateLimits(IRateLimiter limiter, TimeProvider time, IGatewayEvents events, ILogger<KeyRateLimits> logger)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Null error: go ahead (settle the ticket, when there is one, at the end). Otherwise the 429.
    /// <paramref name="estimatedTokens"/> is what TPM is charged now (<see cref="EstimateTokens"/>; 0 for a
    /// call whose size shows only in its answer, which then pays at settlement). The limits' state comes
    /// back as values, for each ingress to show (OpenAI's <c>x-ratelimit-*</c> headers).
    /// </summary>
    public async ValueTask<KeyAdmission> AdmitAsync(CallerIdentity caller, long estimatedTokens, CancellationToken ct)
    {
        if (caller.Rpm <= 0 && caller.Tpm <= 0) return default;
        var now = time.GetUtcNow();

        RateLimitResult? tookRequest = null;
        if (caller.Rpm > 0 && await TryAcquireAsync(caller.RequestsLimitKey, caller.Rpm, 1, now, ct).ConfigureAwait(false) is { } requests)
        {
            if (!requests.Allowed)
            {
                RateLimitResult? state = null;
                if (caller.Tpm > 0) state = await TryAcquireAsync(caller.TokensLimitKey, caller.Tpm, 0, now, ct).ConfigureAwait(false);
                return new KeyAdmission(AuthErrors.RateLimited(caller.KeyId, "requests", caller.Rpm, requests.RetryAfter), null, requests, state);
            }
            tookRequest = requests;
        }

        if (caller.Tpm <= 0) return new KeyAdmission(null, null, tookRequest, null);

        // A request bigger than the whole allowance takes the whole allowance rather than never
        // passing; its real usage is charged at the end, so the key still averages its TPM.
        var cost = (int)Math.Min(estimatedTokens, caller.Tpm);
        if (await TryAcquireAsync(caller.TokensLimitKey, caller.Tpm, cost, now, ct).ConfigureAwait(false) is not { } tokens)
        {
            return new KeyAdmission(null, null, tookRequest, null);
        }
        if (!tokens.Allowed)
        {
            if (tookRequest is { } taken)
            {
                // Refused requests don't count against RPM; the headers say so.
                await TryAdjustAsync(caller.RequestsLimitKey, caller.Rpm, -1).ConfigureAwait(false);
                tookRequest = taken with { Remaining = Math.Min(taken.Remaining + 1, taken.Limit) };
            }
            return new KeyAdmission(AuthErrors.RateLimited(caller.KeyId, "tokens", caller.Tpm, tokens.RetryAfter), null, tookRequest, tokens);
        }
        return new KeyAdmission(null, new KeyLimitTicket(this, caller, cost), tookRequest, tokens);
    }

    /// <summary>Tokens a request may use: its prompt estimate and its output allowance for every choice.</summary>
    public static long EstimateTokens(GatewayRequest request, RouteDecision route)
    {
        var output = request.MaxTokens ?? (route.Candidates.Count > 0 ? route.Candidates[0].Model.MaxOutputTokens : 0);
        return request.EstimatedPromptTokens + (long)request.N * output;
    }

    /// <summary>
    /// Corrects the key's TPM to what the request used, without the request waiting for it: this runs after the answer, and
    /// awaiting a remote limiter held the connection a store round trip before its next request (as the budget's settlement
    /// did; see SettlementBatches). The limiter's call is made before this returns (it runs here up to its first await), so on
    /// a store that keeps one connection's commands in order, as Redis does, this instance's next admission on the key comes
    /// after it. A failure is logged and counted as before: limits fail open.
    /// </summary>
    internal void Settle(CallerIdentity caller, int charged, TokenUsage usage)
    {
        var delta = (long)usage.Total - charged;
        if (delta != 0) _ = TryAdjustAsync(caller.TokensLimitKey, caller.Tpm, (int)Math.Clamp(delta, int.MinValue, int.MaxValue));
    }

    /// <summary>
    /// Null when the limiter's store failed: limits fail open (the request goes on, counted as a
    /// store error) because refusing every key while Redis blinks is worse than a minute unmetered.
    /// </summary>
    private async ValueTask<RateLimitResult?> TryAcquireAsync(string key, int limit, int cost, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            return await limiter.AcquireAsync(key, limit, Window, cost, now, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            if (e is not StoreUnavailableException) events.StoreError(StoreOperations.RateLimit);
            logger.LogWarning("Rate limiter failed ({Error}); the request goes on unmetered", e.GetType().Name);
            return null;
        }
    }

    /// <summary>Never throws (a Task, so that <see cref="Settle"/> may leave it running).</summary>
    private async Task TryAdjustAsync(string key, int limit, int delta)
    {
        try
        {
            await limiter.AdjustAsync(key, limit, Window, delta, time.GetUtcNow()).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (e is not StoreUnavailableException) events.StoreError(StoreOperations.RateLimit);
            logger.LogWarning("Rate limiter correction failed ({Error})", e.GetType().Name);
        }
    }
}

/// <summary>
/// A key's RPM/TPM verdict: the 429 when refused (null: go ahead), the ticket to settle at the end, and
/// the state of each limit that was consulted (null when it is unlimited or its store failed).
/// </summary>
public readonly record struct KeyAdmission(ApiError? Error, KeyLimitTicket? Ticket, RateLimitResult? Requests, RateLimitResult? Tokens);

/// <summary>The tokens a request was charged at admission, corrected to its real usage when it ends.</summary>
public sealed class KeyLimitTicket(KeyRateLimits limits, CallerIdentity caller, int charged)
{
    public int Charged { get; } = charged;

    /// <summary>
    /// Charges the real usage instead of the estimate, sent before this returns and not waited for (see
    /// <see cref="KeyRateLimits.Settle"/>); never throws (a failure is logged and counted).
    /// </summary>
    public void Settle(TokenUsage usage) => limits.Settle(caller, Charged, usage);
}

/// <summary>OpenAI's rate-limit headers, and its way of writing durations (<c>1s</c>, <c>6m0s</c>, <c>20ms</c>).</summary>
public static class RateLimitHeaders
{
    public const string LimitRequests = "x-ratelimit-limit-requests";
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    public const string ResetRequests = "x-ratelimit-reset-requests";
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    public const string ResetTokens = "x-ratelimit-reset-tokens";

    public static void SetRequests(IHeaderDictionary headers, RateLimitResult r) => Set(headers, r, LimitRequests, RemainingRequests, ResetRequests);

    public static void SetTokens(IHeaderDictionary headers, RateLimitResult r) => Set(headers, r, LimitTokens, RemainingTokens, ResetTokens);

    /// <summary>Both limits of a verdict, where they were consulted.</summary>
    public static void Set(IHeaderDictionary headers, RateLimitResult? requests, RateLimitResult? tokens)
    {
        if (requests is { } r) SetRequests(headers, r);
        if (tokens is { } t) SetTokens(headers, t);
    }

    private static void Set(IHeaderDictionary headers, RateLimitResult r, string limit, string remaining, string reset)
    {
        headers[limit] = r.Limit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[remaining] = r.Remaining.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[reset] = FormatDuration(r.ResetAfter);
    }

    /// <summary>Go's duration format, as OpenAI sends it: <c>0s</c>, <c>250ms</c>, <c>1.5s</c>, <c>6m0s</c>, <c>1h0m0s</c>.</summary>
    public static string FormatDuration(TimeSpan t)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (t <= TimeSpan.Zero) return "0s";
        // Whole milliseconds, rounded up: a client that waits what it is told is not early.
        var ms = (long)Math.Ceiling(t.TotalMilliseconds);
        if (ms < 1000) return ms.ToString(inv) + "ms";
        var seconds = (ms % 60_000 / 1000.0).ToString("0.###", inv) + "s";
        if (ms < 60_000) return seconds;
        var minutes = (ms / 60_000 % 60).ToString(inv) + "m";
        return ms < 3_600_000 ? minutes + seconds : (ms / 3_600_000).ToString(inv) + "h" + minutes + seconds;
    }
}
