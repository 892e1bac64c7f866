using System.Collections.Frozen;
using System.Net;
using System.Text.RegularExpressions;
using LlmGateway.Auth;
using LlmGateway.Budgets;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;

namespace LlmGateway.PassThrough;

/// <summary>
/// Forwards a /v1 request the gateway doesn't translate to the pass-through provider with YARP's
/// <see cref="IHttpForwarder"/>, which copies the bytes both ways (streams and large uploads
/// included, nothing buffered), and records the call like any other request.
/// </summary>
public sealed partial class PassThroughHandler : IDisposable
{
    /// <summary>JSON answers up to this size are read for their model and usage as they pass; larger ones are recorded without.</summary>
    public const int MaxUsageBodyBytes = 1024 * 1024;

    private readonly IHttpForwarder _forwarder;
    private readonly RequestRecorder _recorder;
    private readonly KeyRateLimits _keyLimits;
    private readonly IUnreservedSpend? _budgets;
    private readonly ILogger<PassThroughHandler> _logger;
    private readonly HttpMessageInvoker _invoker;
    private readonly ForwarderRequestConfig _config;
    private readonly string _provider;
    private readonly string _baseUrl;
    private readonly long _maxRequestBytes;
    private readonly string? _missingKey;
    private readonly FrozenDictionary<string, (string Name, ModelOptions Model)> _models;

    public PassThroughHandler(IOptions<GatewayOptions> options, IHttpForwarder forwarder, RequestRecorder recorder, KeyRateLimits keyLimits,
        TimeProvider time, ILogger<PassThroughHandler> logger, IUnreservedSpend? budgets = null)
    {
        _keyLimits = keyLimits;
        _forwarder = forwarder;
        _recorder = recorder;
        _budgets = budgets;
        _logger = logger;
        Time = time;

        var o = options.Value;
        var pass = o.PassThrough;
        _provider = pass.Provider;
        _maxRequestBytes = pass.MaxRequestBytes;
        _config = new ForwarderRequestConfig { ActivityTimeout = TimeSpan.FromSeconds(pass.ActivityTimeoutSeconds) };
        _models = ModelsOf(o, pass.Provider);

        if (pass.Enabled && o.Providers.TryGetValue(pass.Provider, out var provider))
        {
            _baseUrl = provider.BaseUrl!.TrimEnd('/');
            if (provider.ApiKeyEnv is { Length: > 0 } env)
            {
                ApiKey = Environment.GetEnvironmentVariable(env);
                SecretScrubber.Register(ApiKey);
                if (string.IsNullOrEmpty(ApiKey))
                {
                    _missingKey = $"The pass-through provider '{pass.Provider}' has no API key: its key variable {env} is not set.";
                }
            }
        }
        else
        {
            _baseUrl = "";
        }

        // One connection pool for every forwarded call, built once. No proxy, cookies, redirects (a
        // redirect must not carry the key elsewhere) or decompression (bytes pass as they came); no
        // trace headers added to the provider's request.
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),    // follow DNS changes of cloud endpoints
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null,
        }, disposeHandler: true);
    }

    internal TimeProvider Time { get; }

    /// <summary>The provider's key, from its ApiKeyEnv; never logged (registered with the scrubber).</summary>
    internal string? ApiKey { get; }

    public async Task HandleAsync(HttpContext http)
    {
        PassThroughPaths.TryGetRemainder(http.Request.Path, out var remainder);
        var segment = PassThroughPaths.FirstSegment(remainder);
        if (segment.IsEmpty || PassThroughPaths.IsGatewayOwned(segment))
        {
            // The gateway's own resources are never forwarded, whatever the method: same answer as any unmapped path.
            await ApiError.NotFound($"No endpoint at {http.Request.Method} {http.Request.Path}.").WriteAsync(http.Response).ConfigureAwait(false);
            return;
        }

        var started = Time.GetTimestamp();
        var caller = CallerIdentity.Of(http);
        KeyLimitTicket? keyTicket = null;
        var record = new RequestRecord
        {
            RequestId = GatewayHeaders.NewRequestId(),
            StartedAt = Time.GetUtcNow(),
            KeyId = caller?.KeyId,
            Provider = _provider,
            TaskType = PassThroughPaths.Label(segment),
            Route = "pass-through to " + _provider,
            Attempts = 1,
        };
        http.Response.Headers[GatewayHeaders.RequestId] = record.RequestId;
        var call = new PassThroughCall(this, record, remainder);
        try
        {
            // :: Step 1: refuse what can't be forwarded, before a byte of the body is read.
            if (_missingKey is not null)
            {
                await FailAsync(http, record, new ApiError(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, PassThroughErrors.ProviderNotConfigured, _missingKey)).ConfigureAwait(false);
                return;
            }
            // The cost shows only in the answer: nothing to reserve, so a call is refused once a budget
            // it falls under (global, provider, key) is used up, and charged what it cost at the end.
            if (_budgets?.ExhaustedReason(_provider, caller) is { } spent)
            {
                await FailAsync(http, record, ApiError.BudgetExceeded($"Pass-through is refused: {spent}.")).ConfigureAwait(false);
                return;
            }
            // The key's RPM counts the call; its TPM is charged the tokens the answer reports.
            if (caller is not null)
            {
                var (limitError, ticket, requests, tokens) = await _keyLimits.AdmitAsync(caller, estimatedTokens: 0, http.RequestAborted).ConfigureAwait(false);
                RateLimitHeaders.Set(http.Response.Headers, requests, tokens);
                keyTicket = ticket;
                if (limitError is not null)
                {
                    await FailAsync(http, record, limitError).ConfigureAwait(false);
                    return;
                }
            }

            // :: Step 2: uploads may be far larger than chat bodies (Kestrel's limit is sized for those).
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            {
                size.MaxRequestBodySize = _maxRequestBytes;
            }
            if (http.Request.ContentLength > _maxRequestBytes)
            {
                await FailAsync(http, record, ApiError.RequestTooLarge(_maxRequestBytes)).ConfigureAwait(false);
                return;
            }

            // :: Step 3: YARP copies the request up and the answer down; the transforms in PassThroughCall
            // swap the credentials and, for small JSON answers, keep a copy for the record.
            var error = await _forwarder.SendAsync(http, _baseUrl, _invoker, _config, call).ConfigureAwait(false);

            // :: Step 4: what the client got.
            if (error == ForwarderError.None)
            {
                record.Status = http.Response.StatusCode;
                if (record.Status >= 400)
                {
                    // The provider's error body went to the client unchanged.
                    record.Outcome = RequestOutcomes.Error;
                    record.ErrorCode = PassThroughErrors.UpstreamStatus;
                }
            }
            else
            {
                await OnForwarderErrorAsync(http, record, error).ConfigureAwait(false);
            }
        }
        finally
        {
            // :: Step 5: record once, for the log, metrics and the ledger.
            var answer = call.Finish(http);
            record.Duration = Time.GetElapsedTime(started);
            record.Overhead = call.Sent != 0 ? Time.GetElapsedTime(started, call.Sent) : record.Duration;
            if (call.FirstByte != 0) record.TimeToFirstToken = Time.GetElapsedTime(started, call.FirstByte);
            if (call.SkippedEvents > 0) LogSkippedEvents(_logger, record.RequestId, call.SkippedEvents, SseUsageFinder.MaxLineBytes);
            if (!answer.Usage.IsEmpty) record.Usage = answer.Usage;
            if (answer.Model is { Length: > 0 } model)
            {
                if (Resolve(model) is var (name, options))
                {
                    record.Model = name;
                    record.CostUsd = Pricing.CostUsd(options, record.Usage);
                }
                else
                {
                    record.Model = model;
                }
            }
            else
            {
                record.Model = PassThroughErrors.UnknownModel;
            }
            if (_budgets is not null) await _budgets.ChargeAsync(_provider, caller, record.RequestId, record.CostUsd).ConfigureAwait(false);
            keyTicket?.Settle(record.Usage);
            _recorder.Record(record);
        }
    }

    private async Task OnForwarderErrorAsync(HttpContext http, RequestRecord record, ForwarderError error)
    {
        var exception = http.GetForwarderErrorFeature()?.Exception;
        var clientLeft = error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled
            or ForwarderError.ResponseBodyClient or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeResponseCanceled
            or ForwarderError.UpgradeRequestClient or ForwarderError.UpgradeResponseClient || http.RequestAborted.IsCancellationRequested;
        var tooLarge = exception is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge };

        if (clientLeft && !tooLarge)
        {
            record.Outcome = RequestOutcomes.Cancelled;
            record.Status = 499; // nginx's "client closed request": nobody received an answer
            return;
        }
        LogForwarderError(_logger, record.RequestId, _provider, error, SecretScrubber.Scrub(exception?.Message));

        if (http.Response.HasStarted)
        {
            // YARP has aborted the response: the client sees a broken answer, never one that looks complete.
            record.Status = http.Response.StatusCode;
            record.Outcome = RequestOutcomes.Broken;
            record.ErrorCode = ErrorCodes.UpstreamError;
            return;
        }

        var apiError = error switch
        {
            _ when tooLarge => ApiError.RequestTooLarge(_maxRequestBytes),
            ForwarderError.RequestBodyClient => ApiError.InvalidRequest("The request body could not be read: " + exception?.Message, code: null),
            ForwarderError.RequestTimedOut => ApiError.UpstreamTimeout($"The pass-through provider '{_provider}' did not answer within {_config.ActivityTimeout?.TotalSeconds:0} s."),
            _ => ApiError.UpstreamError($"The pass-through provider '{_provider}' could not be reached ({error})."),
        };
        // YARP may have set a status and headers for its own empty error response; the client gets ours.
        http.Response.Headers.Remove(Microsoft.Net.Http.Headers.HeaderNames.ContentLength);
        await FailAsync(http, record, apiError).ConfigureAwait(false);
    }

    private static Task FailAsync(HttpContext http, RequestRecord record, ApiError error)
    {
        record.Status = error.Status;
        record.Outcome = RequestOutcomes.Error;
        record.ErrorCode = error.Code;
        return error.WriteAsync(http.Response);
    }

    /// <summary>
    /// The configured model an upstream's <c>model</c> names, for the price: a model of the pass-through
    /// provider whose UpstreamModel (or name) is that, or is that without a dated suffix
    /// (<c>gpt-4o-mini-2024-07-18</c> answers for <c>gpt-4o-mini</c>).
    /// </summary>
    internal (string Name, ModelOptions Model)? Resolve(string upstreamModel)
    {
        if (_models.TryGetValue(upstreamModel, out var found)) return found;
        var dated = DatedSuffix().Match(upstreamModel);
        if (dated.Success && _models.TryGetValue(upstreamModel[..dated.Index], out found)) return found;
        return null;
    }

    private static FrozenDictionary<string, (string, ModelOptions)> ModelsOf(GatewayOptions o, string provider)
    {
        var map = new Dictionary<string, (string, ModelOptions)>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, model) in o.Models)
        {
            if (!string.Equals(model.Provider, provider, StringComparison.OrdinalIgnoreCase)) continue;
            map.TryAdd(string.IsNullOrEmpty(model.UpstreamModel) ? name : model.UpstreamModel, (name, model));
        }
        return map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    [GeneratedRegex(@"-\d{4}-\d{2}-\d{2}$")]
    private static partial Regex DatedSuffix();

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Pass-through {RequestId} to {Provider} failed: {Error} {Detail}")]
    private static partial void LogForwarderError(ILogger logger, string requestId, string provider, ForwarderError error, string? detail);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "Pass-through {RequestId}: {Count} streamed event(s) over {MaxBytes} bytes were not read for usage")]
    private static partial void LogSkippedEvents(ILogger logger, string requestId, int count, int maxBytes);

    public void Dispose() => _invoker.Dispose();
}

public static class PassThroughErrors
{
    /// <summary>503: the pass-through provider's key variable is not set.</summary>
    public const string ProviderNotConfigured = "provider_not_configured";

    /// <summary>The record's error code when the provider answered 4xx/5xx (its body reached the client unchanged).</summary>
    public const string UpstreamStatus = "upstream_status";

    /// <summary>The record's model when the answer named none (not JSON, too large, a stream without a usage event).</summary>
    public const string UnknownModel = "passthrough";
}
