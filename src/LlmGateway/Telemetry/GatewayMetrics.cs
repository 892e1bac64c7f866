using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Telemetry;

/// <summary>
/// The gateway's metrics (the llm_gateway_* names of the contract). Request metrics come from the one
/// place a request's outcome is recorded (<see cref="IRequestObserver"/>); retries, fallbacks, circuit
/// states, provider health, cache lookups and store errors from the capabilities that raise them
/// (<see cref="IGatewayEvents"/>). Both run on the request path: no LINQ, tags in a stack-only TagList.
/// <para>
/// The counters every request moves (requests, tokens, cost, cache lookups) are kept here, one cell per label set,
/// and handed to the SDK as observable counters when it collects (a scrape), rather than added to SDK counters per
/// request: each SDK measurement looks its series up by hashing and comparing every tag (AggregatorStore.Update, the
/// largest OpenTelemetry frame in the miss path's profile), and a finished request made six of them (nine with the
/// histograms and the cache lookup); here it is two dictionary lookups and interlocked adds, and the SDK still gets
/// the same cumulative values under the same names, types and labels (FirstScrapeFamiliesTests checks the names,
/// MetricsTests the values). The histograms stay SDK instruments: an observable instrument cannot be a histogram.
/// Measured (2026-12-02, loaded 2-core machine): MetricsBenchmarks, the same run, OnRequestCompleted 351 → 297 ns
/// (median) with one meter provider and 913 → 431 ns with two, a cache lookup 27 → 4.5 ns; in perf at 16 connections
/// on the bench's miss path, the gateway's metrics frames and the SDK frames under them went from 1.05 % to 0.54 % of
/// the gateway's samples, about 60 % fewer per request.
/// </para>
/// </summary>
public sealed class GatewayMetrics : IRequestObserver, IGatewayEvents
{
    public const string MeterName = "LlmGateway";

    /// <summary>The budget scope of a gateway key: <c>key:&lt;id&gt;</c>.</summary>
    private const string KeyScopePrefix = "key:";

    /// <summary>The instrument behind <c>llm_gateway_store_errors_total</c>.</summary>
    public const string StoreErrorsInstrument = "llm_gateway.store.errors";

    /// <summary>Histogram buckets (seconds) for whole requests: from a cached answer to a long generation.</summary>
    public static readonly double[] DurationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600];

    /// <summary>Buckets (seconds) for the time to the first token of a stream.</summary>
    public static readonly double[] FirstTokenBuckets = [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60];

    /// <summary>Buckets (seconds) for the gateway's own time: 100 µs to 100 ms.</summary>
    public static readonly double[] OverheadBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

    private readonly MetricLabels _labels;
    private readonly IServiceProvider _services;
    private readonly ConcurrentDictionary<RequestSeries, Count> _requests = new();
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _firstToken;
    private readonly Histogram<double> _overhead;
    private readonly ConcurrentDictionary<ModelSeries, Usage> _usage = new();
    private readonly Count[] _cacheRequests = CreateCounts(s_cacheResults.Length);
    private readonly Counter<long> _retries;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _storeErrors;
    private readonly ConcurrentDictionary<string, int> _circuitStates = new(StringComparer.Ordinal);
    private long _inflight;

    /// <summary>
    /// Takes the service provider rather than the provider registry and the budget source: those belong to
    /// capabilities that raise gateway events, i.e. depend on this class, and would make a cycle. They are
    /// looked up at the first scrape, when everything is built.
    /// </summary>
    public GatewayMetrics(IMeterFactory meterFactory, IOptions<GatewayOptions> options, IServiceProvider services, IEnumerable<KnownLabelValues> known)
    {
        _labels = new MetricLabels(options.Value);
        _services = services;

        // Every configured provider's circuit is closed at start, and shows so before any event.
        foreach (var provider in options.Value.Providers.Keys)
        {
            _circuitStates[_labels.Provider(provider)] = (int)CircuitState.Closed;
        }

        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableCounter("llm_gateway.requests", ObserveRequests, "{request}",
            "Chat completion requests by model, provider, task type and status (HTTP status code; 'broken' for a stream that failed after it started; 499 when the client left).");
        _duration = meter.CreateHistogram("llm_gateway.request.duration", "s",
            "Time from the request's arrival to the end of its answer, for requests that reached a model.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _firstToken = meter.CreateHistogram("llm_gateway.time_to_first_token", "s",
            "Time from the request's arrival to the first content sent to the client, streams only.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = FirstTokenBuckets });
        _overhead = meter.CreateHistogram("llm_gateway.overhead", "s",
            "Time spent in the gateway itself (the request's duration less the time waiting on upstreams).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = OverheadBuckets });
        meter.CreateObservableCounter("llm_gateway.tokens", ObserveTokens, "{token}",
            "Tokens by model, provider and direction (input, output, cached: the part of input served from the provider's prompt cache).");
        // The exporter appends a unit as it is spelled (there is no UCUM currency to map): usd, as the contract's names end.
        meter.CreateObservableCounter("llm_gateway.cost", ObserveCost, "usd", "Cost in US dollars by model and provider, at the configured prices.");
        meter.CreateObservableCounter("llm_gateway.cache.requests", ObserveCacheRequests, "{request}", "Response cache lookups by result: hit, miss, bypass, off.");
        _retries = meter.CreateCounter<long>("llm_gateway.retries", "{retry}", "Retries of a call to the same provider.");
        _fallbacks = meter.CreateCounter<long>("llm_gateway.fallbacks", "{fallback}", "Moves from a failed model to the next candidate.");
        _storeErrors = meter.CreateCounter<long>(StoreErrorsInstrument, "{error}", "Failed operations on the shared store (Redis or in-memory) by operation.");
        meter.CreateObservableGauge("llm_gateway.circuit_state", ObserveCircuitStates, "{state}",
            "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.");
        meter.CreateObservableGauge("llm_gateway.provider_up", () => ObserveHealth(deployments: false, state: false), null,
            "1 when GET /admin/providers shows the provider healthy or degraded; 0 when unavailable, or unknown (no call or probe in the last 5 minutes).");
        meter.CreateObservableGauge("llm_gateway.deployment_up", () => ObserveHealth(deployments: true, state: false), null,
            "Per deployment (provider and upstream model): 1 when healthy or degraded, 0 when unavailable (circuit open, cooling down) or unknown.");
        meter.CreateObservableGauge("llm_gateway.deployment_state", () => ObserveHealth(deployments: true, state: true), "{state}",
            "Per deployment: 0 closed, 1 half-open, 2 open, 3 cooling down after an upstream 429 or 529.");
        // Budget scopes name gateway keys (key:<id>), which only an authenticated scrape shows: one instrument
        // per kind of scrape, each exported by its own meter provider (MetricsExposure), same family.
        foreach (var (scrape, keys) in (ReadOnlySpan<(KeyValuePair<string, object?>, bool)>)[(MetricsExposure.PublicScrape, false), (MetricsExposure.AuthenticatedScrape, true)])
        {
            KeyValuePair<string, object?>[] tags = [scrape];
            meter.CreateObservableGauge("llm_gateway.budget.spent", () => ObserveBudgets(spent: true, keys), "usd",
                "Spent in the current window, per budget scope and window (daily, monthly).", tags);
            meter.CreateObservableGauge("llm_gateway.budget.limit", () => ObserveBudgets(spent: false, keys), "usd",
                "Limit of the current window, per budget scope and window; 0 is no limit.", tags);
        }
        meter.CreateObservableGauge("llm_gateway.inflight_requests", () => Volatile.Read(ref _inflight), "{request}",
            "Chat completion requests being handled right now.");

        StartAtZero(options.Value, known);
    }

    /// <summary>
    /// Counters start at 0 for every label set known at start-up (the contract: every family from the first
    /// scrape), so dashboards and alerts see 0 rather than "No data". Known: cache results, each provider's
    /// retries, each configured model's tokens and cost, each configured fallback pair, and what other
    /// capabilities declare (<see cref="KnownLabelValues"/>: the store operations). Request counts and the
    /// histograms have no label set that is known before traffic (a status, an observation): their families
    /// are listed with no series until the first request.
    /// </summary>
    private void StartAtZero(GatewayOptions options, IEnumerable<KnownLabelValues> known)
    {
        // The cache results hit, miss, bypass and off are always observed (ObserveCacheRequests).
        foreach (var provider in options.Providers.Keys) _retries.Add(0, new TagList { { "provider", _labels.Provider(provider) } });
        foreach (var (name, model) in options.Models)
        {
            var labelled = _labels.Model(name);
            var provider = _labels.Provider(model.Provider);
            UsageOf(labelled, provider);
            foreach (var fallback in model.Fallbacks)
            {
                _fallbacks.Add(0, new TagList { { "from_model", labelled }, { "to_model", _labels.Model(fallback) } });
            }
        }
        foreach (var values in known)
        {
            if (values.Instrument != StoreErrorsInstrument) continue;
            foreach (var value in values.Values) _storeErrors.Add(0, new TagList { { values.Label, value } });
        }
    }

    public void RequestStarted() => Interlocked.Increment(ref _inflight);

    public void RequestEnded() => Interlocked.Decrement(ref _inflight);

    public void OnRequestCompleted(RequestRecord record)
    {
        var cells = CellsOf(record);
        Interlocked.Increment(ref cells.Count!.Value);
        var model = cells.Model!;
        var provider = cells.Provider!;

        // Latency, tokens and cost only for requests that reached a model: requests turned away before
        // routing (bad JSON, unknown model) would drag every percentile toward zero.
        if (record.Model.Length == 0) return;

        var byModel = new TagList { { "model", model }, { "provider", provider } };
        _duration.Record(record.Duration.TotalSeconds, byModel);
        if (record.TimeToFirstToken is { } firstToken) _firstToken.Record(firstToken.TotalSeconds, byModel);
        _overhead.Record(record.Overhead.TotalSeconds, new TagList { { "provider", provider } });

        var usage = cells.Usage!;
        var tokens = record.Usage;
        if (tokens.Prompt != 0) Interlocked.Add(ref usage.Input, tokens.Prompt);
        if (tokens.Completion != 0) Interlocked.Add(ref usage.Output, tokens.Completion);
        if (tokens.CachedPrompt != 0) Interlocked.Add(ref usage.Cached, tokens.CachedPrompt);
        if (record.CostUsd != 0) usage.AddCost((double)record.CostUsd);
    }

    public void Retry(string provider, string deployment)
    {
        _retries.Add(1, new TagList { { "provider", _labels.Provider(provider) }, { "deployment", _labels.Deployment(deployment) } });
        GatewayTracing.RecordRetry();
    }

    public void Fallback(string fromModel, string toModel) =>
        _fallbacks.Add(1, new TagList { { "from_model", _labels.Model(fromModel) }, { "to_model", _labels.Model(toModel) } });

    public void CircuitStateChanged(string provider, CircuitState state) => _circuitStates[_labels.Provider(provider)] = (int)state;

    public void CacheLookup(string result) => Interlocked.Increment(ref _cacheRequests[CacheResultIndex(result)].Value);

    public void StoreError(string operation) => _storeErrors.Add(1, new TagList { { "operation", operation } });

    /// <summary>The cache's results, the first four observed from the start, then none and other once they happen.</summary>
    private static readonly string[] s_cacheResults = ["hit", "miss", "bypass", "off", MetricLabels.None, MetricLabels.Other];

    private static int CacheResultIndex(string? result) => MetricLabels.CacheResult(result) switch
    {
        "hit" => 0,
        "miss" => 1,
        "bypass" => 2,
        "off" => 3,
        MetricLabels.None => 4,
        _ => 5,
    };

    /// <summary>
    /// The last series this thread recorded, by the record's own strings: a request's model, provider and task type are
    /// the configured names' very strings (the route's candidates and task types), and its status one of
    /// <see cref="MetricLabels.Status"/>'s, so a thread's next request is nearly always the same series, found by four
    /// reference comparisons instead of three label lookups and two dictionary lookups that hash every label. Compared
    /// by reference only: equal text in another string is looked up as before, to the same cells.
    /// </summary>
    [ThreadStatic]
    private static SeriesCells? t_last;

    private SeriesCells CellsOf(RequestRecord record)
    {
        var status = MetricLabels.Status(record);
        var last = t_last ??= new SeriesCells();
        if (ReferenceEquals(last.Owner, this) && ReferenceEquals(last.RecordModel, record.Model) && ReferenceEquals(last.RecordProvider, record.Provider)
            && ReferenceEquals(last.RecordTaskType, record.TaskType) && ReferenceEquals(last.Status, status)) return last;

        var model = _labels.Model(record.Model);
        var provider = _labels.Provider(record.Provider);
        var series = new RequestSeries(model, provider, _labels.TaskType(record.TaskType), status);
        if (!_requests.TryGetValue(series, out var count)) count = _requests.GetOrAdd(series, static _ => new Count());
        (last.Owner, last.RecordModel, last.RecordProvider, last.RecordTaskType, last.Status) = (this, record.Model, record.Provider, record.TaskType, status);
        // Tokens and cost only for requests that reached a model (see OnRequestCompleted): no series for the others.
        (last.Model, last.Provider, last.Count, last.Usage) = (model, provider, count, record.Model.Length == 0 ? null : UsageOf(model, provider));
        return last;
    }

    /// <summary>A thread's last series: the record's strings it was found by, and its labels and cells.</summary>
    private sealed class SeriesCells
    {
        public GatewayMetrics? Owner;
        public string? RecordModel, RecordProvider, RecordTaskType, Status;
        public string? Model, Provider;
        public Count? Count;
        public Usage? Usage;
    }

    private Usage UsageOf(string model, string provider)
    {
        var series = new ModelSeries(model, provider);
        return _usage.TryGetValue(series, out var usage) ? usage : _usage.GetOrAdd(series, static _ => new Usage());
    }

    private List<Measurement<long>> ObserveRequests()
    {
        var measurements = new List<Measurement<long>>(_requests.Count);
        foreach (var (series, count) in _requests)
        {
            measurements.Add(new Measurement<long>(Interlocked.Read(ref count.Value),
                new KeyValuePair<string, object?>("model", series.Model), new KeyValuePair<string, object?>("provider", series.Provider),
                new KeyValuePair<string, object?>("task_type", series.TaskType), new KeyValuePair<string, object?>("status", series.Status)));
        }
        return measurements;
    }

    private List<Measurement<long>> ObserveTokens()
    {
        var measurements = new List<Measurement<long>>(3 * _usage.Count);
        foreach (var (series, usage) in _usage)
        {
            var model = new KeyValuePair<string, object?>("model", series.Model);
            var provider = new KeyValuePair<string, object?>("provider", series.Provider);
            measurements.Add(new Measurement<long>(Interlocked.Read(ref usage.Input), model, provider, new KeyValuePair<string, object?>("direction", "input")));
            measurements.Add(new Measurement<long>(Interlocked.Read(ref usage.Output), model, provider, new KeyValuePair<string, object?>("direction", "output")));
            measurements.Add(new Measurement<long>(Interlocked.Read(ref usage.Cached), model, provider, new KeyValuePair<string, object?>("direction", "cached")));
        }
        return measurements;
    }

    private List<Measurement<double>> ObserveCost()
    {
        var measurements = new List<Measurement<double>>(_usage.Count);
        foreach (var (series, usage) in _usage)
        {
            measurements.Add(new Measurement<double>(usage.Cost,
                new KeyValuePair<string, object?>("model", series.Model), new KeyValuePair<string, object?>("provider", series.Provider)));
        }
        return measurements;
    }

    private List<Measurement<long>> ObserveCacheRequests()
    {
        var measurements = new List<Measurement<long>>(s_cacheResults.Length);
        for (var i = 0; i < s_cacheResults.Length; i++)
        {
            var value = Interlocked.Read(ref _cacheRequests[i].Value);
            if (value == 0 && i >= 4) continue;
            measurements.Add(new Measurement<long>(value, new KeyValuePair<string, object?>("result", s_cacheResults[i])));
        }
        return measurements;
    }

    private static Count[] CreateCounts(int length)
    {
        var counts = new Count[length];
        for (var i = 0; i < length; i++) counts[i] = new Count();
        return counts;
    }

    /// <summary>The labels of llm_gateway_requests_total; the values are MetricLabels', so few and mostly the same instances.</summary>
    private readonly record struct RequestSeries(string Model, string Provider, string TaskType, string Status);

    /// <summary>The labels tokens and cost are counted by.</summary>
    private readonly record struct ModelSeries(string Model, string Provider);

    /// <summary>One counter's cell; a class so that the dictionary hands out a reference to add to.</summary>
    private sealed class Count
    {
        public long Value;
    }

    /// <summary>Tokens and cost of one model and provider.</summary>
    private sealed class Usage
    {
        public long Input;
        public long Output;
        public long Cached;
        private double _cost;

        public double Cost => Volatile.Read(ref _cost);

        public void AddCost(double value)
        {
            double before, after;
            do
            {
                before = Volatile.Read(ref _cost);
                after = before + value;
            }
            while (Interlocked.CompareExchange(ref _cost, after, before) != before);
        }
    }

    private List<Measurement<int>> ObserveCircuitStates() => Observe(_circuitStates);

    /// <summary>
    /// Provider and deployment health, read at the scrape from the same state <c>GET /admin/providers</c>
    /// shows, so the two agree: a provider nothing has called or probed lately is unknown there and 0 here.
    /// </summary>
    private List<Measurement<int>> ObserveHealth(bool deployments, bool state)
    {
        if (_services.GetService<IProviderHealthSource>() is not { } source) return [];
        var samples = source.SampleHealth();
        var measurements = new List<Measurement<int>>(samples.Count);
        foreach (var s in samples)
        {
            if ((s.Deployment is not null) != deployments) continue;
            var provider = new KeyValuePair<string, object?>("provider", _labels.Provider(s.Provider));
            var value = state ? s.State : s.Up ? 1 : 0;
            measurements.Add(deployments
                ? new Measurement<int>(value, provider, new KeyValuePair<string, object?>("deployment", _labels.Deployment(s.Deployment)))
                : new Measurement<int>(value, provider));
        }
        return measurements;
    }

    private static List<Measurement<int>> Observe(ConcurrentDictionary<string, int> byProvider)
    {
        var measurements = new List<Measurement<int>>(byProvider.Count);
        foreach (var (provider, value) in byProvider)
        {
            measurements.Add(new Measurement<int>(value, new KeyValuePair<string, object?>("provider", provider)));
        }
        return measurements;
    }

    /// <summary>The budgets' gauges; scopes that name a gateway key only with <paramref name="keys"/>.</summary>
    private List<Measurement<double>> ObserveBudgets(bool spent, bool keys)
    {
        if (_services.GetService<IBudgetMetricsSource>() is not { } source) return [];
        var budgets = source.GetBudgets();
        var measurements = new List<Measurement<double>>(budgets.Count);
        foreach (var b in budgets)
        {
            if (!keys && b.Scope.StartsWith(KeyScopePrefix, StringComparison.Ordinal)) continue;
            measurements.Add(new Measurement<double>(spent ? b.SpentUsd : b.LimitUsd,
                new KeyValuePair<string, object?>("scope", b.Scope), new KeyValuePair<string, object?>("window", b.Window)));
        }
        return measurements;
    }
}
