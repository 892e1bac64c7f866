using System.Globalization;
using System.Text;
using LlmGateway.Auth;
using LlmGateway.Caching;
using LlmGateway.Conversations;
using LlmGateway.Routing;
using Microsoft.Extensions.Primitives;

namespace LlmGateway.Http;

/// <summary>
/// The gateway's response headers, and the one place that writes them for a pipeline outcome: every
/// ingress (chat completions, embeddings, the other dialects) calls <see cref="Write"/> before its
/// first byte, so every answer, error or not, carries the same headers.
/// </summary>
public static class GatewayHeaders
{
    public const string RequestId = "x-request-id";
    public const string Provider = "x-gateway-provider";
    public const string Model = "x-gateway-model";
    public const string TaskType = "x-gateway-task-type";
    public const string Cache = "x-gateway-cache";
    public const string Attempts = "x-gateway-attempts";
    public const string CostUsd = "x-gateway-cost-usd";
    public const string OverheadMs = "x-gateway-overhead-ms";

    public static string NewRequestId() => RandomIds.New("req_");

    /// <summary>
    /// x-request-id and the x-gateway-* headers of <paramref name="outcome"/> (each where it is known:
    /// no provider before one was tried), Retry-After and x-should-retry for an error that has them, the key's
    /// x-ratelimit-* and the conversation's state. x-gateway-overhead-ms is the gateway's time up to now.
    /// </summary>
    /// <param name="response">The response, before its first byte.</param>
    /// <param name="outcome">What the headers describe.</param>
    /// <param name="requestIdSet">
    /// x-request-id is on the response already, with the outcome's id (<see cref="IngressRunner{TTurn}"/> sets it before
    /// the body is read): setting it again would only validate, intern and hash its name once more, in the same place.
    /// </param>
    public static void Write(HttpResponse response, PipelineOutcome outcome, bool requestIdSet = false)
    {
        var all = response.Headers;
        var headers = new ResponseHeaders(all);
        Each(outcome, ref headers, requestIdSet);
        RateLimitHeaders.Set(all, outcome.RequestsLimit, outcome.TokensLimit);
    }

    /// <summary>The headers <see cref="Write"/> sets, as name and value (without x-ratelimit-*): what a batch item's result repeats.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Of(PipelineOutcome outcome)
    {
        var list = new HeaderList([]);
        Each(outcome, ref list, requestIdSet: false);
        return list.Headers;
    }

    /// <summary>
    /// The one list of the headers, handed to <paramref name="sink"/> one by one: a struct, so the response's
    /// headers are set without an enumerator object per request.
    /// </summary>
    private static void Each<TSink>(PipelineOutcome outcome, ref TSink sink, bool requestIdSet) where TSink : struct, IHeaderSink
    {
        if (!requestIdSet) sink.Add(RequestId, outcome.RequestId);
        if (outcome.Provider.Length > 0) sink.Add(Provider, outcome.Provider);
        if (outcome.Model.Length > 0) sink.Add(Model, outcome.Model);
        if (outcome.TaskType.Length > 0) sink.Add(TaskType, outcome.TaskType);
        sink.Add(Attempts, outcome.Attempts.ToString(CultureInfo.InvariantCulture));
        if (outcome.CacheResult is { } cache) sink.Add(Cache, cache);
        if (outcome.CostUsd is { } cost) sink.Add(CostUsd, FormatUsd(cost));
        sink.Add(OverheadMs, FormatMs(outcome.Overhead));
        if (outcome.ConversationState is { } state) sink.Add(ConversationService.StateHeader, state);
        if (outcome.Error?.RetryAfterSeconds is { } retryAfter) sink.Add("retry-after", retryAfter.ToString(CultureInfo.InvariantCulture));
        // The gateway already tried upstream (and retried, and failed over): OpenAI's and Anthropic's SDKs read this before their own retry rule.
        if (outcome.Error?.ShouldRetry is { } retry) sink.Add(ApiError.ShouldRetryHeader, retry ? "true" : "false");
    }

    private interface IHeaderSink
    {
        void Add(string name, string value);
    }

    private readonly struct ResponseHeaders(IHeaderDictionary headers) : IHeaderSink
    {
        public void Add(string name, string value) => headers[name] = value;
    }

    private readonly struct HeaderList(List<KeyValuePair<string, string>> headers) : IHeaderSink
    {
        public List<KeyValuePair<string, string>> Headers => headers;
        public void Add(string name, string value) => headers.Add(new(name, value));
    }

    /// <summary>
    /// The amount with at most ten decimals and none trailing, what the custom format "0.##########" gives, without
    /// parsing a custom format on every answer (about five times the cost). Any other amount than a cost's is rounded,
    /// written in the standard format (a decimal keeps its scale, so trailing zeros are cut).
    /// </summary>
    public static string FormatUsd(decimal usd)
    {
        // A cost as pricing makes it: not negative, a 64-bit integer of at most ten decimals, so rounding leaves it as it
        // is and its digits are written from the integer and the scale, without decimal arithmetic or the formatter.
        var parts = Usage.DecimalParts.Of(usd);
        if (parts.Fits && !parts.Negative && parts.Scale <= 10) return FormatUsd(parts.Integer, parts.Scale);
        Span<char> text = stackalloc char[40]; // a decimal's 29 digits, a sign and a point
        decimal.Round(usd, 10, MidpointRounding.AwayFromZero).TryFormat(text, out var length, default, CultureInfo.InvariantCulture);
        var written = text[..length];
        if (written.Contains('.')) written = written.TrimEnd('0').TrimEnd('.');
        return new string(written);
    }

    /// <summary><paramref name="integer"/> / 10^<paramref name="scale"/> with no trailing zeros after the point, and no point without digits after it.</summary>
    private static string FormatUsd(ulong integer, int scale)
    {
        for (; scale > 0 && integer % 10 == 0; scale--) integer /= 10;
        Span<byte> text = stackalloc byte[Usage.DecimalParts.MaxPositionalLength];
        return Encoding.ASCII.GetString(text[..Usage.DecimalParts.WritePositional(integer, scale, text)]);
    }

    /// <summary>Milliseconds with at most three decimals, as "0.###" gives them, without parsing a custom format per answer.</summary>
    public static string FormatMs(TimeSpan t)
    {
        var ms = Math.Round(t.TotalMilliseconds, 3, MidpointRounding.AwayFromZero);
        if (ms == 0) return "0";
        // A double prints its shortest round-trip form: a value rounded to three decimals prints at most three, and
        // below a billion (doubles there are far closer together than 0.001) those are exactly the digits of the
        // whole thousandths, written here as integers instead of by the shortest-round-trip search.
        if (ms is > 0 and < 1e9)
        {
            Span<byte> text = stackalloc byte[Thousandths.MaxLength];
            return System.Text.Encoding.ASCII.GetString(text[..Thousandths.Write((long)Math.Round(ms * 1000), text)]);
        }
        return ms.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The hints of an OpenAI-style request's headers (<see cref="RoutingHeaders"/>, Cache-Control,
    /// X-Conversation-Id). <paramref name="error"/> is the 400 for a header whose value would be echoed
    /// but can't be (X-Task-Type); a routing flag that can't be read travels in
    /// <see cref="RequestHints.RoutingError"/> for the routing step to refuse.
    /// </summary>
    public static RequestHints ReadHints(IHeaderDictionary headers, out ApiError? error)
    {
        // X-Task-Type is echoed in x-gateway-task-type: a value Kestrel would refuse to write is a 400. Looked up once, for
        // the check and the value.
        var sentTaskType = headers.TryGetValue(RoutingHeaders.TaskType, out var named);
        error = sentTaskType ? HeaderValues.CheckEchoed(RoutingHeaders.TaskType, named) : null;
        ApiError? routingError = null;
        var localOnly = ReadFlag(headers, RoutingHeaders.LocalOnly, ref routingError);
        var noFallback = ReadFlag(headers, RoutingHeaders.NoFallback, ref routingError);
        decimal? maxCost = null;
        if (headers.TryGetValue(RoutingHeaders.MaxCostUsd, out var value) && value.ToString() is { Length: > 0 } text)
        {
            if (decimal.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var limit)) maxCost = limit;
            else routingError ??= ApiError.InvalidRequest($"The {RoutingHeaders.MaxCostUsd} header must be a non-negative amount of US dollars, like 0.02.");
        }
        var (noCache, noStore) = ResponseCache.ReadCacheControl(headers.CacheControl);
        var taskType = sentTaskType && named.ToString() is { Length: > 0 } name ? name : null;
        // Sent twice, the values arrive joined with ',', which no conversation id may hold: refused.
        var conversationId = headers.TryGetValue(ConversationService.IdHeader, out var conversation) ? conversation.ToString() : null;
        // Most requests send none of these: the shared empty hints, not a new record each.
        if (!localOnly && !noFallback && maxCost is null && !noCache && !noStore && taskType is null && conversationId is null && routingError is null)
        {
            return RequestHints.None;
        }
        return new RequestHints
        {
            LocalOnly = localOnly,
            NoFallback = noFallback,
            MaxCostUsd = maxCost,
            TaskType = taskType,
            NoCache = noCache,
            NoStore = noStore,
            ConversationId = conversationId,
            RoutingError = routingError,
        };
    }

    /// <summary>true or false (any case); absent is false; anything else is an error.</summary>
    private static bool ReadFlag(IHeaderDictionary headers, string name, ref ApiError? error)
    {
        if (!headers.TryGetValue(name, out StringValues value)) return false;
        var text = value.ToString().Trim();
        if (string.Equals(text, "true", StringComparison.OrdinalIgnoreCase)) return true;
        if (text.Length == 0 || string.Equals(text, "false", StringComparison.OrdinalIgnoreCase)) return false;
        error ??= ApiError.InvalidRequest($"The {name} header must be true or false.");
        return false;
    }
}
