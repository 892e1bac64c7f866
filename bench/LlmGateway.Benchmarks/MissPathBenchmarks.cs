using BenchmarkDotNet.Attributes;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace LlmGateway.Benchmarks;

/// <summary>
/// A non-streaming miss as a whole, on the gateway's real services (<see cref="GatewayServices"/>) with an upstream
/// that answers from memory (<see cref="FakeUpstream"/>): what the gateway's own plumbing costs around the steps
/// <see cref="PipelineBenchmarks"/> measures one by one, without Kestrel, sockets and HttpClient.
/// </summary>
[MemoryDiagnoser]
public class MissPathBenchmarks
{
    private GatewayServices _services = null!;
    private ChatCompletionsHandler _handler = null!;
    private CandidateExecutor _executor = null!;
    private RouteDecision _route = null!;
    private ChatRequest _miss = null!;
    private IHttpContextFactory _contexts = null!;

    [GlobalSetup]
    public void Setup()
    {
        _services = GatewayServices.StartAsync(fakeUpstream: true).GetAwaiter().GetResult();
        _handler = _services.Get<ChatCompletionsHandler>();
        // The executor without budgets (they have their own rows): the candidates, the attempt, the provider's health.
        _executor = new CandidateExecutor(_services.Get<ProviderResilienceRegistry>(), TimeProvider.System, _services.Get<IGatewayEvents>());
        _miss = ChatRequest.TryParse(Samples.MissBody, out _) ?? throw new InvalidOperationException("the miss body does not parse");
        _route = _services.Get<IModelRouter>().Route(_miss, new RoutingContext(RequestHints.None));
        if (_route.Error is not null || _route.Candidates[0].Provider is not FakeUpstream) throw new InvalidOperationException($"bench-model does not route to the fake upstream: {_route.Summary}");

        // Each row runs once here and is checked to be the path it names: a miss answered by the provider (not the
        // cache, not an error), or the executor committing to the fake upstream.
        var http = MissContext();
        _handler.HandleAsync(http).GetAwaiter().GetResult();
        var headers = http.Response.Headers;
        if (http.Response.StatusCode != 200 || headers[GatewayHeaders.Cache] != "bypass" || headers[GatewayHeaders.Provider] != "openai")
            throw new InvalidOperationException($"the chat row is not a miss answered by the provider: {http.Response.StatusCode}, cache {headers[GatewayHeaders.Cache]}, provider {headers[GatewayHeaders.Provider]}");
        if (Executor_Miss_FakeUpstream().GetAwaiter().GetResult() != 1) throw new InvalidOperationException("the executor row did not answer at its first attempt");

        // The whole app's row: the same miss, reached through the middleware and routing to the chat endpoint. Twice: a
        // first request can take another way than the ones after it (routing's shortcut learns from it, RouteShortcut).
        _contexts = _services.Get<IHttpContextFactory>();
        for (var i = 0; i < 2; i++)
        {
            var app = AppContext();
            _services.AppPipeline(app).GetAwaiter().GetResult();
            var endpoint = app.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
            var appHeaders = app.Response.Headers;
            if (app.Response.StatusCode != 200 || endpoint != "CreateChatCompletion" || appHeaders[GatewayHeaders.Cache] != "bypass" || appHeaders[GatewayHeaders.Provider] != "openai")
                throw new InvalidOperationException($"the app row is not a miss answered by the chat endpoint: {app.Response.StatusCode}, endpoint {endpoint}, cache {appHeaders[GatewayHeaders.Cache]}, provider {appHeaders[GatewayHeaders.Provider]}");
            _contexts.Dispose(app);
        }
    }

    /// <summary>The same rows with an upstream that answers later (<see cref="FakeUpstream.Suspends"/>).</summary>
    [GlobalSetup(Targets = [nameof(ChatCompletions_Miss_SuspendingUpstream), nameof(App_ChatCompletions_Miss_SuspendingUpstream), nameof(Executor_Miss_SuspendingUpstream)])]
    public void SetupSuspending()
    {
        Setup();
        FakeUpstream.Suspends = true;
        if (ChatCompletions_Miss_SuspendingUpstream().GetAwaiter().GetResult() != 200) throw new InvalidOperationException("the suspending chat row did not answer 200");
        if (App_ChatCompletions_Miss_SuspendingUpstream().GetAwaiter().GetResult() != 200) throw new InvalidOperationException("the suspending app row did not answer 200");
        if (Executor_Miss_SuspendingUpstream().GetAwaiter().GetResult() != 1) throw new InvalidOperationException("the suspending executor row did not answer at its first attempt");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        FakeUpstream.Suspends = false;
        _miss.Dispose();
        _services.Dispose();
    }

    /// <summary>
    /// POST /v1/chat/completions, the bench's miss body, through the handler every request runs (body read, parse,
    /// pipeline, headers, the answer written, the record: log line, metrics, budgets, ledger) on a fresh context.
    /// </summary>
    [Benchmark]
    public async Task<int> ChatCompletions_Miss_FakeUpstream()
    {
        var http = MissContext();
        await _handler.HandleAsync(http).ConfigureAwait(false);
        return http.Response.StatusCode;
    }

    /// <summary>
    /// <see cref="ChatCompletions_Miss_FakeUpstream"/> through the app's request pipeline as the host built it: the
    /// middleware (errors, telemetry, the OpenAPI branch's test), routing and the endpoint in front of the handler, on a
    /// context from the host's factory as a server's request gets one. The host's hosting layer (its span, the request
    /// duration metric) is not in here.
    /// </summary>
    [Benchmark]
    public async Task<int> App_ChatCompletions_Miss_FakeUpstream()
    {
        var http = AppContext();
        await _services.AppPipeline(http).ConfigureAwait(false);
        var status = http.Response.StatusCode;
        _contexts.Dispose(http);
        return status;
    }

    private HttpContext AppContext()
    {
        var features = new FeatureCollection();
        var request = new HttpRequestFeature
        {
            Method = "POST",
            Path = "/v1/chat/completions",
            Body = new MemoryStream(Samples.MissBody, writable: false),
        };
        request.Headers.ContentType = "application/json";
        request.Headers.ContentLength = Samples.MissBody.Length;
        features.Set<IHttpRequestFeature>(request);
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(Stream.Null));
        return _contexts.Create(features);
    }

    private DefaultHttpContext MissContext() => ChatContext(_services.Services, Samples.MissBody, Stream.Null);

    /// <summary>A fresh POST /v1/chat/completions of <paramref name="body"/>, its response written to <paramref name="client"/>.</summary>
    internal static DefaultHttpContext ChatContext(IServiceProvider services, byte[] body, Stream client)
    {
        var http = new DefaultHttpContext { RequestServices = services };
        var request = http.Request;
        request.Method = "POST";
        request.Path = "/v1/chat/completions";
        request.ContentType = "application/json";
        request.ContentLength = body.Length;
        request.Body = new MemoryStream(body, writable: false);
        http.Response.Body = client;
        return http;
    }

    /// <summary>
    /// <see cref="ChatCompletions_Miss_FakeUpstream"/> with the upstream answering later, as one over a socket does:
    /// every async level between the handler and the call suspends (a box, pooled or not) and resumes, which the
    /// row whose upstream answers at once never shows. The answer comes on this thread, so the levels resume here
    /// and not after a hop to the thread pool: the row measures the levels, and their pooled boxes come from this
    /// thread's cache every time (exact bytes).
    /// </summary>
    [Benchmark]
    public async Task<int> ChatCompletions_Miss_SuspendingUpstream()
    {
        var running = ChatCompletions_Miss_FakeUpstream();
        FakeUpstream.AnswerPending();
        return await running.ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="App_ChatCompletions_Miss_FakeUpstream"/> with the upstream answering later (see
    /// <see cref="ChatCompletions_Miss_SuspendingUpstream"/>): the async levels of the middleware in front of the handler
    /// (the error handler's, the telemetry's) suspend and resume too, as they do on every request over a socket.
    /// </summary>
    [Benchmark]
    public async Task<int> App_ChatCompletions_Miss_SuspendingUpstream()
    {
        var running = App_ChatCompletions_Miss_FakeUpstream();
        FakeUpstream.AnswerPending();
        return await running.ConfigureAwait(false);
    }

    /// <summary><see cref="Executor_Miss_FakeUpstream"/> with the upstream answering later (see <see cref="ChatCompletions_Miss_SuspendingUpstream"/>).</summary>
    [Benchmark]
    public async Task<int> Executor_Miss_SuspendingUpstream()
    {
        var running = Executor_Miss_FakeUpstream();
        FakeUpstream.AnswerPending();
        return await running.ConfigureAwait(false);
    }

    private static readonly TimeSpan s_total = TimeSpan.FromSeconds(600);

    /// <summary>Step 5 alone: one candidate tried and committed (a complete body), then let go, as the pipeline does.</summary>
    [Benchmark]
    public async Task<int> Executor_Miss_FakeUpstream()
    {
        var record = new RequestRecord { RequestId = "req_bench_executor", StartedAt = DateTimeOffset.UtcNow, RequestedModel = _miss.Model };
        var context = new GatewayContext(_miss, record, TimeProvider.System.GetTimestamp(), TimeProvider.System) { Route = _route };
        using var total = TimedCancellation.ForRequest(TimeProvider.System, CancellationToken.None, s_total);
        var execution = await _executor.ExecuteAsync(context, total).ConfigureAwait(false);
        var attempts = execution.Error is null ? record.Attempts : -1;
        await execution.DisposeAsync().ConfigureAwait(false);
        return attempts;
    }
}

/// <summary>
/// The openai provider of <see cref="GatewayServices"/> answering every call at once with the bench's completion
/// (<see cref="Samples.Completion"/>), as a mock upstream on loopback would, minus the HTTP.
/// </summary>
internal sealed class FakeUpstream(string name, ProviderOptions options) : IChatProvider
{
    public string Name { get; } = name;
    public ProviderOptions Options { get; } = options;
    public bool IsUsable => true;
    public string? UnusableReason => null;

    /// <summary>Set by the suspending rows (each row runs in a process of its own): a call waits for <see cref="AnswerPending"/>.</summary>
    internal static bool Suspends { get; set; }

    private static TaskCompletionSource<ProviderResponse>? s_pending;

    /// <summary>Set by the stream rows: a streamed request is answered with this stream (see <see cref="StreamPathBenchmarks"/>).</summary>
    internal static Func<ProviderRequest, ChatStream>? Streams { get; set; }

    public ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken) =>
        request.Stream && Streams is { } streams ? ValueTask.FromResult(ProviderResponse.Streaming(streams(request)))
        : Suspends ? new((s_pending = new TaskCompletionSource<ProviderResponse>()).Task) : ValueTask.FromResult(Answer());

    /// <summary>Answers the waiting call on the caller's thread: its awaiters (all ConfigureAwait(false)) resume there.</summary>
    internal static void AnswerPending() => Interlocked.Exchange(ref s_pending, null)!.SetResult(Answer());

    private static ProviderResponse Answer() => ProviderResponse.Completed(Samples.Completion, new TokenUsage(236, 58), "stop");

    public sealed class Factory : IChatProviderFactory
    {
        public string Type => ProviderTypes.OpenAi;
        public IChatProvider Create(string name, ProviderOptions options) => new FakeUpstream(name, options);
    }
}
