using BenchmarkDotNet.Attributes;
using LlmGateway.Budgets;
using LlmGateway.Caching;
using LlmGateway.Embeddings;
using LlmGateway.Http;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Benchmarks;

/// <summary>
/// The steps of a non-streaming miss, in the order the handler runs them, each on the gateway's real
/// services (<see cref="GatewayServices"/>: the embedded store, budgets on, metrics listened to, the
/// per-request log at Information). A regression shows at the step that regressed; the sum of these is
/// the gateway's own work per request, without Kestrel, sockets and HttpClient (bench/PROFILE.md has those).
/// </summary>
[MemoryDiagnoser]
public class PipelineBenchmarks
{
    private GatewayServices _services = null!;
    private GatewayPipeline _pipeline = null!;
    private IModelRouter _router = null!;
    private ResponseCache _cache = null!;
    private IAttemptAdmission _budgets = null!;
    private RequestRecorder _recorder = null!;
    private GatewayMetrics _metrics = null!;
    private UsageLedger _ledger = null!;
    private RequestLog _log = null!;
    private ChatRequest _miss = null!;
    private ChatRequest _cacheable = null!;
    private RouteDecision _route = null!;
    private Candidate _candidate = null!;
    private RequestRecord _record = null!;
    private PipelineOutcome _outcome = null!;
    private Execution _answered = null!;
    private static readonly RequestHints s_noStore = new() { NoStore = true };
    private long _requests;

    [GlobalSetup]
    public void Setup()
    {
        _services = GatewayServices.StartAsync().GetAwaiter().GetResult();
        _router = _services.Get<IModelRouter>();
        _cache = _services.Get<ResponseCache>();
        _budgets = _services.Get<IAttemptAdmission>();
        _recorder = _services.Get<RequestRecorder>();
        _metrics = _services.Get<GatewayMetrics>();
        _ledger = _services.Get<UsageLedger>();
        _log = _services.GetAll<IRequestObserver>().OfType<RequestLog>().Single();
        _miss = ChatRequest.TryParse(Samples.MissBody, out _) ?? throw new InvalidOperationException("the miss body does not parse");
        _cacheable = ChatRequest.TryParse(Samples.RequestBody, out _) ?? throw new InvalidOperationException("the cacheable body does not parse");
        _route = _router.Route(_miss, new RoutingContext(RequestHints.None));
        if (_route.Error is not null || _route.Candidates.Count == 0) throw new InvalidOperationException($"bench-model does not route: {_route.Summary}");
        _candidate = _route.Candidates[0];
        if (_route.Summary != "fallbacks: bench-model | task type by default") throw new InvalidOperationException($"bench-model's route is not its chain alone: {_route.Summary}");
        if (_services.Get<Microsoft.Extensions.Options.IOptions<Configuration.GatewayOptions>>().Value.Budgets is not { Global.DailyUsd: > 0, AlertThresholds.Count: > 0 })
            throw new InvalidOperationException("no global budget with alert thresholds: the budget row would not settle and check alerts as the bench's gateway does");
        _record = CompletedRecord("req_bench");
        // Record_Ledger names the embedded store's direct write: a record left queued would be a remote store's path.
        if (_services.Get<Storage.IGatewayStore>() is not Storage.MemoryStore) throw new InvalidOperationException("the ledger row's store is not the embedded one");
        _ledger.OnRequestCompleted(_record);
        if (_ledger.Buffered != 0) throw new InvalidOperationException("the ledger row's record was queued, not written into the store");
        // A miss's outcome as the pipeline hands it to the ingress: the record of a completed request.
        var pipeline = _pipeline = _services.Get<GatewayPipeline>();
        // The answer committed at step 5 and priced at step 6, as the settle row's run holds it (never disposed: the row does not let go of it).
        _answered = new Execution { Candidate = _candidate, Response = ProviderResponse.Completed(Samples.Completion, _record.Usage, "stop") };
        if (Pricing.CostUsd(_candidate.Model, _record.Usage) != _record.CostUsd) throw new InvalidOperationException("the settle row's record is not priced as step 6 prices its answer");
        if (Settle_Miss() is not { Duration.Ticks: > 0, CostUsd: > 0 }) throw new InvalidOperationException("the settle row did not settle a budget ticket and record the request");
        // Its own request: disposing the outcome at cleanup lets go of it (and records the request).
        var run = new RequestRun(pipeline, pipeline.Start(), ChatRequest.TryParse(Samples.MissBody, out _));
        Fill(run.Record);
        _outcome = new PipelineOutcome(run, OutcomeKind.Answer, body: Samples.Completion, costUsd: 0.0000702m);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _outcome.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _miss.Dispose();
        _cacheable.Dispose();
        _services.Dispose();
    }

    internal static RequestRecord CompletedRecord(string id)
    {
        var record = new RequestRecord { RequestId = id, StartedAt = DateTimeOffset.UtcNow };
        Fill(record);
        return record;
    }

    /// <summary>A miss answered by openai: what the bench's gateway rows record for every request.</summary>
    private static void Fill(RequestRecord record)
    {
        record.TaskType = "general";
        record.RequestedModel = "bench-model";
        record.Model = "bench-model";
        record.Provider = "openai";
        record.Status = 200;
        record.Usage = new TokenUsage(236, 58);
        record.CostUsd = 0.0000702m;
        record.Attempts = 1;
        record.CacheResult = CacheResults.Bypass;
        record.Route = "bench-model: explicit";
        record.Duration = TimeSpan.FromMilliseconds(1.2);
        record.Overhead = TimeSpan.FromMilliseconds(0.3);
    }

    private GatewayContext NewContext(ChatRequest request, RequestHints? hints = null)
    {
        var id = "req_bench" + (++_requests).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var record = new RequestRecord { RequestId = id, StartedAt = DateTimeOffset.UtcNow, RequestedModel = request.Model };
        return new GatewayContext(request, record, TimeProvider.System.GetTimestamp(), TimeProvider.System, hints: hints) { Route = _route };
    }

    /// <summary>Step 1: the request's id, taken before the body is read (RandomIds: 32 hex digits from the thread's random block).</summary>
    [Benchmark]
    public string RequestId_New() => GatewayHeaders.NewRequestId();

    /// <summary>Step 2: the chat body (temperature 0.2, the bench's miss body) to a request.</summary>
    [Benchmark]
    public int Parse_Chat()
    {
        using var chat = ChatRequest.TryParse(Samples.MissBody, out _)!;
        return chat.EstimatedPromptTokens;
    }

    /// <summary>Step 2 for /v1/embeddings: 8 inputs, base64.</summary>
    [Benchmark]
    public int Parse_Embeddings()
    {
        using var request = EmbeddingsRequest.TryParse(Samples.EmbeddingsBody, out _)!;
        return request.EstimatedPromptTokens;
    }

    /// <summary>Step 3: task type and the candidate chain for an explicit model, no routing headers.</summary>
    [Benchmark]
    public int Route_ExplicitModel() => _router.Route(_miss, new RoutingContext(RequestHints.None)).Candidates.Count;

    /// <summary>
    /// <see cref="Route_ExplicitModel"/> with the decision's summary line, which the pipeline puts in every request's
    /// record for the log line (the setup checks it is the explicit model's whole chain, nothing removed).
    /// </summary>
    [Benchmark]
    public int Route_ExplicitModel_Summary() => _router.Route(_miss, new RoutingContext(RequestHints.None)).Summary.Length;

    /// <summary>Step 4, not cacheable (temperature 0.2): the decision that skips the cache.</summary>
    [Benchmark]
    public string CacheLookup_Bypass()
    {
        var context = NewContext(_miss);
        var lookup = _cache.LookupAsync(context).AsTask().GetAwaiter().GetResult();
        lookup.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return lookup.Result;
    }

    /// <summary>The key of a cacheable request (canonical request hashed), what every lookup pays.</summary>
    [Benchmark]
    public string CacheKey_Compute() => CacheKey.Compute(_cacheable, _candidate);

    /// <summary>Step 4, cacheable but sent with no-store and never stored: key, embedded-store read, miss.</summary>
    [Benchmark]
    public string CacheLookup_Miss_EmbeddedStore()
    {
        var context = NewContext(_cacheable, s_noStore);
        var lookup = _cache.LookupAsync(context).AsTask().GetAwaiter().GetResult();
        lookup.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return lookup.Result;
    }

    /// <summary>Step 5's budget: reserve the worst case on the embedded store, then settle the real cost and check the alert thresholds (step 7).</summary>
    [Benchmark]
    public bool Budget_AdmitAndSettle_EmbeddedStore()
    {
        var context = NewContext(_miss);
        var admission = _budgets.AdmitAsync(context, _candidate, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        if (admission.Ticket is not { } ticket) return admission.Refusal is null;
        ticket.SettleAsync(0.0000702m).AsTask().GetAwaiter().GetResult();
        return true;
    }

    /// <summary>
    /// Step 5: the upstream's answer body read off its content (a stream with a Content-Length, as HttpClient
    /// hands it over) into the pooled buffer the answer owns; the content and stream are the same in both.
    /// </summary>
    [Benchmark]
    public int UpstreamAnswer_Read_Pooled()
    {
        var body = ProviderHttp.ReadPooledAsync(AnswerContent(), CancellationToken.None).GetAwaiter().GetResult();
        body.Return();
        return body.Length;
    }

    /// <summary>What <see cref="HttpContent.ReadAsByteArrayAsync()"/> costs for the same answer (its own buffer, then an exact copy).</summary>
    [Benchmark]
    public int UpstreamAnswer_Read_ByteArray() => AnswerContent().ReadAsByteArrayAsync().GetAwaiter().GetResult().Length;

    private static StreamContent AnswerContent()
    {
        var content = new StreamContent(new MemoryStream(Samples.Completion, writable: false));
        content.Headers.ContentLength = Samples.Completion.Length;
        return content;
    }

    /// <summary>Step 6: the upstream's answer read for usage and finish (the OpenAI provider does this on every non-streamed answer).</summary>
    [Benchmark]
    public int UpstreamAnswer_Inspect() => OpenAiResponseInspector.Inspect(Samples.Completion).Usage?.Total ?? 0;

    /// <summary>Step 6: x-request-id and the x-gateway-* headers of a miss's answer, by the one writer every ingress uses.</summary>
    [Benchmark]
    public int ResponseHeaders_Miss()
    {
        var http = new DefaultHttpContext();
        GatewayHeaders.Write(http.Response, _outcome);
        return http.Response.Headers.Count;
    }

    /// <summary>Step 6: x-gateway-overhead-ms's value, as a miss's headers write it (an overhead of 312.3 µs, to the tick).</summary>
    [Benchmark]
    public string OverheadMs_Format() => GatewayHeaders.FormatMs(s_overhead);

    private static readonly TimeSpan s_overhead = TimeSpan.FromTicks(3123);

    /// <summary>Step 6: x-gateway-cost-usd's value, as a miss's headers write it (the bench's answer priced: 0.0000702).</summary>
    [Benchmark]
    public string CostUsd_Format() => GatewayHeaders.FormatUsd(s_cost);

    private static readonly decimal s_cost = Pricing.CostUsd(new Configuration.ModelOptions { CostPer1kInput = 0.00015m, CostPer1kOutput = 0.0006m }, new TokenUsage(236, 58));

    /// <summary>Step 7: the cost from the usage.</summary>
    [Benchmark]
    public decimal Pricing_CostUsd() => Pricing.CostUsd(_candidate.Model, _record.Usage);

    /// <summary>
    /// Step 7 as a miss's outcome is completed (<see cref="GatewayPipeline.SettleAsync"/>): the duration and overhead,
    /// the price (the one step 6 put on the answer, kept), the budget ticket settled with the alert thresholds checked,
    /// every observer. The ticket's admission is part of the row (a ticket settles once);
    /// <see cref="Budget_AdmitAndSettle_EmbeddedStore"/> is that part. The run carries the committed answer and the
    /// record its model as the executor leaves them, so the row settles what a miss settles.
    /// </summary>
    [Benchmark]
    public RequestRecord Settle_Miss()
    {
        var run = new RequestRun(_pipeline, _pipeline.Start(), request: null);
        var context = run.Context = new GatewayContext(_miss, run.Record, run.StartTimestamp, TimeProvider.System) { Route = _route };
        Fill(run.Record);
        run.Record.Model = _candidate.ModelName;
        run.Execution = _answered;
        context.Admission = _budgets.AdmitAsync(context, _candidate, CancellationToken.None).AsTask().GetAwaiter().GetResult().Ticket
            ?? throw new InvalidOperationException("the budget refused the settle row's request");
        _pipeline.SettleAsync(run).AsTask().GetAwaiter().GetResult();
        return run.Record;
    }

    /// <summary>Step 7 whole: every observer (log line at Information, metrics, ledger, span) for one request.</summary>
    [Benchmark]
    public void Record_AllObservers() => _recorder.Record(CompletedRecord("req_bench_all"));

    /// <summary>Step 7, the per-request log line: the production JSON formatter (Serilog's JSON as UTF-8) at Information (into a discarding writer).</summary>
    [Benchmark]
    public void Record_LogLine() => _log.OnRequestCompleted(_record);

    /// <summary>Step 7, the Prometheus instruments of one request (a listener is attached, as in production).</summary>
    [Benchmark]
    public void Record_Metrics() => _metrics.OnRequestCompleted(_record);

    /// <summary>
    /// Step 7, the ledger entry: serialised and written into the embedded store's ledger (a copy under its lock; named
    /// Record_LedgerEnqueue while the entry was queued for a background writer instead).
    /// </summary>
    [Benchmark]
    public void Record_Ledger() => _ledger.OnRequestCompleted(_record);
}
