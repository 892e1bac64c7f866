using System.Text;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Budgets;
using LlmGateway.Caching;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Http;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Usage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LlmGateway.Tests.Pipeline;

/// <summary>
/// The pipeline run as a library: no HttpContext, no Kestrel, no headers. Requests, callers and hints
/// go in as values; answers, streams and errors come out as values, and the request record is left
/// once, when the outcome is completed.
/// </summary>
public sealed class GatewayPipelineTests : IAsyncDisposable
{
    private readonly ScriptedProvider _provider = new();
    private readonly Records _records = new();
    private ServiceProvider? _services;

    private GatewayPipeline Pipeline(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gateway:Providers:scripted:Type"] = "mock",
            ["Gateway:Models:m1:Provider"] = "scripted",
            ["Gateway:Models:m1:CostPer1kInput"] = "1",
            ["Gateway:Models:m1:CostPer1kOutput"] = "2",
            ["Gateway:Models:m1:MaxOutputTokens"] = "100",
            ["Gateway:Models:e1:Provider"] = "scripted",
            ["Gateway:Models:e1:CostPer1kInput"] = "1",
            ["Gateway:Models:e1:Capabilities:0"] = "embeddings",
            ["Gateway:Routing:Strategy"] = "priority",
            ["Gateway:Resilience:MaxRetries"] = "0",
            ["Gateway:Cache:Enabled"] = "true",
        };
        foreach (var (key, value) in extra) settings[key] = value;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSingleton(TimeProvider.System);
        services.AddGatewayOptions();
        services.AddGatewayPipeline();
        services.AddSingleton<IRequestObserver>(_records);
        services.AddSingleton<IChatProviderFactory>(new ScriptedFactory(_provider));
        services.AddSingleton<ProviderRegistry>();
        services.AddModelRouting();
        services.AddResilience();
        services.AddStorage();
        services.AddResponseCache();
        services.AddBudgets();
        services.AddConversations();
        services.AddGatewayAuth();
        _services = services.BuildServiceProvider();
        return _services.GetRequiredService<GatewayPipeline>();
    }

    public async ValueTask DisposeAsync()
    {
        if (_services is not null) await _services.DisposeAsync();
    }

    private static ChatRequest Chat(string json)
    {
        var request = ChatRequest.TryParse(Encoding.UTF8.GetBytes(json), out var error);
        Assert.Null(error);
        return request!;
    }

    private static ChatRequest Ask(string model = "m1", string text = "hello", string extra = "") =>
        Chat($$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{text}}"}]{{extra}}}""");

    [Fact]
    public async Task A_complete_answer_is_a_value_with_what_the_headers_need_and_is_recorded_once_completed()
    {
        var pipeline = Pipeline();
        _provider.Answer = "hi there";

        var outcome = await pipeline.ExecuteAsync(Ask(), caller: null, RequestHints.None, CancellationToken.None);

        Assert.Equal(OutcomeKind.Answer, outcome.Kind);
        using (var body = JsonDocument.Parse(outcome.Body))
        {
            Assert.Equal("chat.completion", body.RootElement.GetProperty("object").GetString());
            Assert.Equal("hi there", body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }
        Assert.StartsWith("req_", outcome.RequestId, StringComparison.Ordinal);
        Assert.Equal("scripted", outcome.Provider);
        Assert.Equal("m1", outcome.Model);
        Assert.Equal(1, outcome.Attempts);
        Assert.Equal(CacheResults.Bypass, outcome.CacheResult); // temperature unset: not reproducible
        Assert.Equal(new TokenUsage(10, 4), outcome.Usage);
        Assert.Equal(0.018m, outcome.CostUsd); // 10 in at $1/1k + 4 out at $2/1k
        Assert.False(string.IsNullOrEmpty(outcome.TaskType));
        Assert.Empty(_records.All); // step 7 waits for the ingress

        await outcome.CompleteAsync(Delivery.Delivered);
        await outcome.CompleteAsync(Delivery.ClientGone);
        await outcome.DisposeAsync();

        var record = Assert.Single(_records.All);
        Assert.Equal(outcome.RequestId, record.RequestId);
        Assert.Equal(RequestOutcomes.Ok, record.Outcome);
        Assert.Equal(200, record.Status);
        Assert.Equal(0.018m, record.CostUsd);
    }

    [Fact]
    public async Task An_embeddings_request_runs_the_same_pipeline_to_a_complete_answer()
    {
        var pipeline = Pipeline();
        var request = LlmGateway.Embeddings.EmbeddingsRequest.TryParse(Encoding.UTF8.GetBytes("""{"model":"e1","input":"hello"}"""), out var error);
        Assert.Null(error);

        var outcome = await pipeline.ExecuteAsync(request!, null, RequestHints.None, CancellationToken.None);
        await outcome.CompleteAsync(Delivery.Delivered);

        Assert.Equal(OutcomeKind.Answer, outcome.Kind);
        Assert.Equal("embeddings", outcome.TaskType);
        Assert.Equal("e1", outcome.Model);
        Assert.Equal(0.002m, outcome.CostUsd); // 2 tokens in at $1/1k
        var record = Assert.Single(_records.All);
        Assert.Equal((RequestOutcomes.Ok, 200, 2), (record.Outcome, record.Status, record.Usage.Prompt));
    }

    [Fact]
    public async Task A_stream_yields_the_events_read_before_the_commit_first_then_the_rest_with_usage_always_marked()
    {
        var pipeline = Pipeline();
        _provider.StreamChunks = ["one", "two", "three"];

        var outcome = await pipeline.ExecuteAsync(Ask(extra: ""","stream":true"""), null, RequestHints.None, CancellationToken.None);

        Assert.Equal(OutcomeKind.Stream, outcome.Kind);
        Assert.Null(outcome.CostUsd);
        Assert.False(outcome.Stream!.ClientWantsUsage);
        var kinds = new List<StreamEventKind>();
        var text = new StringBuilder();
        while (true)
        {
            var ev = await outcome.Stream.ReadAsync();
            kinds.Add(ev.Kind);
            if (ev.Kind is StreamEventKind.End or StreamEventKind.Failed) break;
            using var chunk = JsonDocument.Parse(ev.Data);
            Assert.Equal("chat.completion.chunk", chunk.RootElement.GetProperty("object").GetString());
            var choices = chunk.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() > 0 && choices[0].GetProperty("delta").TryGetProperty("content", out var c)) text.Append(c.GetString());
        }

        Assert.Equal([StreamEventKind.Chunk, StreamEventKind.Content, StreamEventKind.Content, StreamEventKind.Content, StreamEventKind.Usage, StreamEventKind.End], kinds);
        Assert.Equal("onetwothree", text.ToString());
        Assert.Equal(StreamEventKind.End, (await outcome.Stream.ReadAsync()).Kind); // ended stays ended

        await outcome.CompleteAsync(Delivery.Delivered);
        var record = Assert.Single(_records.All);
        Assert.Equal(RequestOutcomes.Ok, record.Outcome);
        Assert.Equal(new TokenUsage(10, 3), record.Usage);
        Assert.NotNull(record.TimeToFirstToken);
    }

    /// <summary>
    /// An answer stream's read that waits on the upstream is finished when the ingress resumes (AnswerStream.ReadAsync is
    /// no async level of its own): the chunk that comes is the event, and silence past the idle timeout is one failed
    /// event, the request recorded broken, with or without ConfigureAwait.
    /// </summary>
    [Fact]
    public async Task A_stream_read_that_waits_gets_its_chunk_when_it_comes_and_silence_past_the_idle_timeout_is_one_failed_event()
    {
        var pipeline = Pipeline(("Gateway:Resilience:StreamIdleTimeoutSeconds", "1"));
        _provider.StreamChunks = ["one", "two", "three"];
        using var gate = _provider.ReadGate = new SemaphoreSlim(0);

        var outcome = await pipeline.ExecuteAsync(Ask(extra: ""","stream":true"""), null, RequestHints.None, CancellationToken.None);
        var stream = outcome.Stream!;
        Assert.Equal(StreamEventKind.Chunk, (await stream.ReadAsync()).Kind); // read before the commit
        Assert.Equal(StreamEventKind.Content, (await stream.ReadAsync().ConfigureAwait(false)).Kind);

        var read = stream.ReadAsync();
        Assert.False(read.GetAwaiter().IsCompleted); // the next chunk has not come
        gate.Release();
        var two = await read.ConfigureAwait(false);
        Assert.Equal(StreamEventKind.Content, two.Kind);
        Assert.Contains("\"two\"", Encoding.UTF8.GetString(two.Data.Span));

        var quiet = await stream.ReadAsync(); // nothing comes: the idle timeout
        Assert.Equal(StreamEventKind.Failed, quiet.Kind);
        Assert.Equal(504, quiet.Error!.Status);
        Assert.Equal(StreamEventKind.Failed, (await stream.ReadAsync()).Kind);
        await outcome.CompleteAsync(Delivery.Delivered);
        Assert.Equal(RequestOutcomes.Broken, Assert.Single(_records.All).Outcome);
    }

    [Fact]
    public async Task A_stream_that_fails_after_the_commit_ends_with_one_failed_event_carrying_the_error_and_is_recorded_broken()
    {
        var pipeline = Pipeline();
        _provider.StreamChunks = ["one", "two"];
        _provider.FailStreamAfter = 2;

        var outcome = await pipeline.ExecuteAsync(Ask(extra: ""","stream":true"""), null, RequestHints.None, CancellationToken.None);
        AnswerEvent ev;
        do ev = await outcome.Stream!.ReadAsync();
        while (ev.Kind is not (StreamEventKind.End or StreamEventKind.Failed));

        Assert.Equal(StreamEventKind.Failed, ev.Kind);
        Assert.Equal(502, ev.Error!.Status);
        Assert.Equal(StreamEventKind.Failed, (await outcome.Stream!.ReadAsync()).Kind); // never an end after a failure
        await outcome.CompleteAsync(Delivery.Delivered);
        var record = Assert.Single(_records.All);
        Assert.Equal(RequestOutcomes.Broken, record.Outcome);
        Assert.Equal(200, record.Status);
    }

    [Fact]
    public async Task An_unknown_model_is_an_error_value_with_the_task_type_and_no_provider()
    {
        var pipeline = Pipeline();

        await using var outcome = await pipeline.ExecuteAsync(Ask("nope"), null, RequestHints.None, CancellationToken.None);

        Assert.Equal(OutcomeKind.Error, outcome.Kind);
        Assert.Equal(404, outcome.Error!.Status);
        Assert.Equal("model_not_found", outcome.Error.Code);
        Assert.Equal("", outcome.Provider);
        Assert.Equal(0, outcome.Attempts);
        Assert.Null(outcome.CacheResult);
        Assert.False(string.IsNullOrEmpty(outcome.TaskType));
        Assert.Equal(0, _provider.Calls);
    }

    [Fact]
    public async Task Every_candidate_failing_is_a_502_value_that_still_names_the_provider_tried()
    {
        var pipeline = Pipeline();
        _provider.Fail = true;

        await using var outcome = await pipeline.ExecuteAsync(Ask(), null, RequestHints.None, CancellationToken.None);

        Assert.Equal(OutcomeKind.Error, outcome.Kind);
        Assert.Equal(502, outcome.Error!.Status);
        Assert.Equal("scripted", outcome.Provider);
        Assert.Equal("m1", outcome.Model);
        Assert.Equal(1, outcome.Attempts);
        Assert.Equal(CacheResults.Bypass, outcome.CacheResult);
    }

    [Fact]
    public async Task A_max_cost_hint_is_a_value_the_router_holds_the_candidates_to()
    {
        var pipeline = Pipeline();

        await using var outcome = await pipeline.ExecuteAsync(Ask(), null, new RequestHints { MaxCostUsd = 0.000001m }, CancellationToken.None);

        Assert.Equal(400, outcome.Error!.Status);
        Assert.Equal(RoutingErrorCodes.MaxCostExceeded, outcome.Error.Code);
        Assert.Equal(0, _provider.Calls);
    }

    [Fact]
    public async Task A_routing_hint_that_could_not_be_read_is_refused_at_the_routing_step()
    {
        var pipeline = Pipeline();
        var unreadable = ApiError.InvalidRequest("The X-Local-Only header must be true or false.");

        await using var outcome = await pipeline.ExecuteAsync(Ask(), null, new RequestHints { RoutingError = unreadable }, CancellationToken.None);

        Assert.Same(unreadable, outcome.Error);
        Assert.False(string.IsNullOrEmpty(outcome.TaskType));
        Assert.Equal(0, _provider.Calls);
    }

    [Fact]
    public async Task How_delivery_ended_is_what_is_recorded()
    {
        var pipeline = Pipeline();

        var gone = await pipeline.ExecuteAsync(Ask(), null, RequestHints.None, CancellationToken.None);
        await gone.CompleteAsync(Delivery.ClientGone);
        var failed = await pipeline.ExecuteAsync(Ask(), null, RequestHints.None, CancellationToken.None);
        await failed.DisposeAsync(); // never completed: the write failed

        Assert.Equal(2, _records.All.Count);
        Assert.Equal((RequestOutcomes.Cancelled, 499), (_records.All[0].Outcome, _records.All[0].Status));
        Assert.Equal((RequestOutcomes.Cancelled, 200), (_records.All[1].Outcome, _records.All[1].Status));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_request_is_recorded_once_its_budget_ticket_has_settled_at_once_or_later(bool later)
    {
        var pipeline = Pipeline();
        var run = new RequestRun(pipeline, pipeline.Start(), request: null);
        var ticket = new HeldTicket(later);
        run.Context = new GatewayContext(Chat("""{"model":"m1","messages":[{"role":"user","content":"hi"}]}"""), run.Record, run.StartTimestamp, TimeProvider.System) { Admission = ticket };
        run.Record.Model = "m1";
        run.Record.Usage = new TokenUsage(1000, 500);

        var settling = pipeline.SettleAsync(run);
        Assert.Equal(2m, ticket.Settled); // priced (1 + 2 × 0.5) before the ticket is settled
        Assert.Equal(!later, settling.IsCompletedSuccessfully);
        Assert.Equal(later ? 0 : 1, _records.All.Count);

        ticket.Complete();
        await settling;
        Assert.Same(run.Record, Assert.Single(_records.All));
        Assert.Equal(2m, run.Record.CostUsd);
    }

    [Fact]
    public async Task The_committed_candidate_is_the_options_model_entry_and_a_configuration_reload_leaves_both_as_read_at_start()
    {
        // Step 7 prices from the committed candidate's options without looking the model up by name: that is sound only
        // while the router's candidates are the options' own entries, named by their keys, and neither side reloads.
        var pipeline = Pipeline();
        var options = _services!.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatewayOptions>>().Value;
        var router = _services!.GetRequiredService<IModelRouter>();
        using (var routed = Ask())
        {
            var candidate = router.Route(routed, new RoutingContext(RequestHints.None)).Candidates[0];
            Assert.Same(options.Models["m1"], candidate.Model);
            Assert.Same(options.Models.Keys.Single(k => k == "m1"), candidate.ModelName);
        }

        var configuration = (IConfigurationRoot)_services!.GetRequiredService<IConfiguration>();
        configuration["Gateway:Models:m1:CostPer1kInput"] = "5";
        configuration.Reload();
        Assert.Equal("5", configuration["Gateway:Models:m1:CostPer1kInput"]);

        Assert.Same(options, _services!.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatewayOptions>>().Value);
        var outcome = await pipeline.ExecuteAsync(Ask(), null, RequestHints.None, CancellationToken.None);
        await outcome.CompleteAsync(Delivery.Delivered);
        var record = Assert.Single(_records.All);
        Assert.Same(options.Models.Keys.Single(k => k == "m1"), record.Model); // the executor names the candidate: step 7 recognises it by reference
        Assert.Equal(0.018m, outcome.CostUsd); // 10 in at $1/1k + 4 out at $2/1k, as configured at start
        Assert.Equal(0.018m, record.CostUsd);
    }

    /// <summary>A budget ticket whose settle completes at once, or when the test says.</summary>
    private sealed class HeldTicket(bool later) : IAdmissionTicket
    {
        private readonly TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public decimal? Settled { get; private set; }

        public ValueTask SettleAsync(decimal actualCostUsd)
        {
            Settled = actualCostUsd;
            return later ? new ValueTask(_settled.Task) : ValueTask.CompletedTask;
        }

        public ValueTask ReleaseAsync() => ValueTask.CompletedTask;

        public void Complete() => _settled.TrySetResult();
    }

    [Fact]
    public async Task A_cancelled_caller_gets_an_OperationCanceledException_and_the_request_is_recorded_as_cancelled()
    {
        var pipeline = Pipeline();
        _provider.Hold = new TaskCompletionSource();
        using var cts = new CancellationTokenSource();

        var running = pipeline.ExecuteAsync(Ask(), null, RequestHints.None, cts.Token);
        await _provider.Called.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.AsTask());
        var record = Assert.Single(_records.All);
        Assert.Equal((RequestOutcomes.Cancelled, 499), (record.Outcome, record.Status));
    }

    [Fact]
    public async Task A_refusal_before_the_request_could_run_is_recorded_like_any_error()
    {
        var pipeline = Pipeline();
        var start = pipeline.Start();

        var outcome = pipeline.Refuse(ApiError.RequestTooLarge(10), start);
        await outcome.CompleteAsync(Delivery.Delivered);

        Assert.Equal(start.RequestId, outcome.RequestId);
        Assert.Equal(413, outcome.Error!.Status);
        var record = Assert.Single(_records.All);
        Assert.Equal((RequestOutcomes.Error, 413, "request_too_large"), (record.Outcome, record.Status, record.ErrorCode));
    }

    [Fact]
    public async Task A_cached_answer_to_a_streamed_request_is_replayed_as_chunk_events_with_no_call()
    {
        var pipeline = Pipeline();
        _provider.Answer = "cached words";
        var first = await pipeline.ExecuteAsync(Ask(extra: ""","temperature":0"""), null, RequestHints.None, CancellationToken.None);
        await first.CompleteAsync(Delivery.Delivered);

        var second = await pipeline.ExecuteAsync(Ask(extra: ""","temperature":0,"stream":true"""), null, RequestHints.None, CancellationToken.None);
        var text = new StringBuilder();
        var sawUsage = false;
        AnswerEvent ev;
        while ((ev = await second.Stream!.ReadAsync()).Kind != StreamEventKind.End)
        {
            sawUsage |= ev.Kind == StreamEventKind.Usage;
            using var chunk = JsonDocument.Parse(ev.Data);
            var choices = chunk.RootElement.GetProperty("choices");
            if (choices.GetArrayLength() > 0 && choices[0].GetProperty("delta").TryGetProperty("content", out var c)) text.Append(c.GetString());
        }
        await second.CompleteAsync(Delivery.Delivered);

        Assert.Equal("cached words", text.ToString());
        Assert.True(sawUsage);
        Assert.Equal(CacheResults.Hit, second.CacheResult);
        Assert.Equal(CacheResults.Provider, second.Provider);
        Assert.Equal(1, _provider.Calls);
    }

    [Fact]
    public async Task A_conversation_id_hint_puts_the_stored_turns_in_front_of_the_next_request()
    {
        var pipeline = Pipeline();
        var hints = new RequestHints { ConversationId = "c-1" };

        var first = await pipeline.ExecuteAsync(Ask(text: "first"), null, hints, CancellationToken.None);
        Assert.Equal(ConversationStates.New, first.ConversationState);
        await first.CompleteAsync(Delivery.Delivered);
        var second = await pipeline.ExecuteAsync(Ask(text: "second"), null, hints, CancellationToken.None);
        await second.CompleteAsync(Delivery.Delivered);

        Assert.Equal(ConversationStates.Continued, second.ConversationState);
        Assert.Equal(3, _provider.LastMessageCount); // first, its answer, second

        var bad = await pipeline.ExecuteAsync(Ask(), null, new RequestHints { ConversationId = "a,b" }, CancellationToken.None);
        Assert.Equal("invalid_conversation_id", bad.Error!.Code);
        await bad.CompleteAsync(Delivery.Delivered);
    }

    [Fact]
    public async Task The_callers_key_is_a_value_its_limits_are_held_to_and_reported_back()
    {
        var pipeline = Pipeline();
        var caller = new CallerIdentity("team-a", ModelPatterns.All, localOnly: false, rpm: 1, tpm: 0, dailyUsd: 0, monthlyUsd: 0);

        var first = await pipeline.ExecuteAsync(Ask(), caller, RequestHints.None, CancellationToken.None);
        await first.CompleteAsync(Delivery.Delivered);
        var second = await pipeline.ExecuteAsync(Ask(), caller, RequestHints.None, CancellationToken.None);
        await second.CompleteAsync(Delivery.Delivered);

        Assert.Equal(OutcomeKind.Answer, first.Kind);
        Assert.Equal(0, first.RequestsLimit!.Value.Remaining);
        Assert.Equal(429, second.Error!.Status);
        Assert.NotNull(second.Error.RetryAfterSeconds);
        Assert.Equal("team-a", _records.All[0].KeyId);

        var other = new CallerIdentity("team-b", new ModelPatterns(["other-*"]), false, 0, 0, 0, 0);
        var refused = await pipeline.ExecuteAsync(Ask(), other, RequestHints.None, CancellationToken.None);
        Assert.Equal(403, refused.Error!.Status);
        await refused.CompleteAsync(Delivery.Delivered);
    }

    /// <summary>Collects the records step 7 leaves.</summary>
    private sealed class Records : IRequestObserver
    {
        private readonly List<RequestRecord> _all = [];

        public List<RequestRecord> All
        {
            get { lock (_all) return [.. _all]; }
        }

        public void OnRequestCompleted(RequestRecord record)
        {
            lock (_all) _all.Add(record);
        }
    }

    private sealed class ScriptedFactory(ScriptedProvider provider) : IChatProviderFactory
    {
        public string Type => ProviderTypes.Mock;

        public IChatProvider Create(string name, ProviderOptions options)
        {
            provider.Options = options;
            return provider;
        }
    }

    /// <summary>An upstream whose answers each test sets; it counts what it was asked.</summary>
    private sealed class ScriptedProvider : IChatProvider
    {
        public string Name => "scripted";
        public ProviderOptions Options { get; set; } = new();
        public bool IsUsable => true;
        public string? UnusableReason => null;

        public string Answer { get; set; } = "answer";
        public string[]? StreamChunks { get; set; }
        public int? FailStreamAfter { get; set; }
        public bool Fail { get; set; }
        public TaskCompletionSource? Hold { get; set; }
        public TaskCompletionSource Called { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Calls;
        public int LastMessageCount;

        public async ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            if (request.Operation == RequestOperation.Embeddings)
            {
                var vectors = """{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5]}],"model":"e1","usage":{"prompt_tokens":2,"total_tokens":2}}"""u8.ToArray();
                return ProviderResponse.Completed(vectors, new TokenUsage(2, 0), null);
            }
            LastMessageCount = request.Chat.MessageCount;
            Called.TrySetResult();
            if (Hold is not null) await Hold.Task.WaitAsync(cancellationToken);
            if (Fail) return ProviderResponse.Failed(ProviderHttp.Classify(Name, 500, "boom", null, null, null));
            var usage = new TokenUsage(10, 4);
            if (!request.Stream)
            {
                var body = OpenAiJson.Completion("chatcmpl-1", 1, request.UpstreamModel, Answer, "stop", usage);
                return ProviderResponse.Completed(body, usage, "stop");
            }
            return ProviderResponse.Streaming(new ScriptedStream(StreamChunks ?? [Answer], FailStreamAfter, ReadGate));
        }

        /// <summary>When set, every read after the first two (the ones before the commit) waits for one release of it, as a chunk that has not arrived.</summary>
        public SemaphoreSlim? ReadGate { get; set; }
    }

    private sealed class ScriptedStream(string[] chunks, int? failAfter, SemaphoreSlim? gate = null) : ChatStream
    {
        private int _read;

        public override ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
        {
            var i = _read++;
            return gate is not null && i >= 2 ? GatedAsync(i, cancellationToken) : new(Next(i));
        }

        private async ValueTask<StreamEvent> GatedAsync(int i, CancellationToken cancellationToken)
        {
            await gate!.WaitAsync(cancellationToken);
            return Next(i);
        }

        private StreamEvent Next(int i)
        {
            if (i == 0) return new StreamEvent(StreamEventKind.Chunk, Chunk("\"role\":\"assistant\",\"content\":\"\""));
            var content = i - 1;
            if (failAfter is { } n && content == n)
            {
                return StreamEvent.Fail(ProviderFailure.Connection("scripted", "cut"));
            }
            if (content < chunks.Length)
            {
                Usage = new TokenUsage(10, content + 1);
                return new StreamEvent(StreamEventKind.Content, Chunk($"\"content\":\"{chunks[content]}\""));
            }
            if (content == chunks.Length)
            {
                var usage = Encoding.UTF8.GetBytes($$$"""{"id":"c","object":"chat.completion.chunk","created":1,"model":"m1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":{{{chunks.Length}}},"total_tokens":{{{10 + chunks.Length}}}}}""");
                Usage = new TokenUsage(10, chunks.Length);
                return new StreamEvent(StreamEventKind.Usage, usage);
            }
            return StreamEvent.EndOfStream;
        }

        private static byte[] Chunk(string delta) =>
            Encoding.UTF8.GetBytes("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m1\",\"choices\":[{\"index\":0,\"delta\":{" + delta + "},\"finish_reason\":null}]}");

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
