using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Usage;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// Timeouts that fit streams, on the manual clock: the first token must come within
/// FirstTokenTimeoutSeconds, then no silence may last longer than StreamIdleTimeoutSeconds.
/// </summary>
public sealed class TimeoutTests : IAsyncLifetime
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;
    private readonly ManualTimeProvider _time = new();

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync();
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteStreamAsync(http, ["fallback ", "answer"]));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    private static Dictionary<string, string?> Settings(FakeUpstream primary, FakeUpstream fallback) =>
        ResilienceSettings.Chain(primary, fallback)
            .With("Gateway:Resilience:MaxRetries", "0")
            .With("Gateway:Resilience:FirstTokenTimeoutSeconds", "5")
            .With("Gateway:Resilience:StreamIdleTimeoutSeconds", "7");

    /// <summary>Set when an upstream starts to hang: only then is it the upstream the test makes the gateway wait for.</summary>
    private readonly SemaphoreSlim _hanging = new(0);

    /// <summary>Never answers: waits until the gateway gives up on it.</summary>
    private Task HangAsync(Microsoft.AspNetCore.Http.HttpContext http)
    {
        _hanging.Release();
        return Task.Delay(Timeout.Infinite, http.RequestAborted);
    }

    /// <summary>Starts a stream ("half an answer" after the role chunk), then falls silent.</summary>
    private async Task StartsThenHangsAsync(Microsoft.AspNetCore.Http.HttpContext http)
    {
        OpenAiWire.StartSse(http);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "half an "));
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "answer"));
        await HangAsync(http);
    }

    private async Task UpstreamHangsAsync() => Assert.True(await _hanging.WaitAsync(s_guard), "no upstream received the request");

    private static async Task<string> StreamTextAsync(Task<HttpResponseMessage> pending)
    {
        using var response = await pending.WaitAsync(s_guard);
        var sse = await SseClient.ReadAllAsync(response).WaitAsync(s_guard);
        Assert.Null(sse.Error);
        Assert.Equal("[DONE]", sse.Events[^1]);
        var text = new StringBuilder();
        foreach (var e in sse.Events.SkipLast(1))
        {
            var choices = JsonDocument.Parse(e).RootElement.GetProperty("choices");
            if (choices.GetArrayLength() > 0 && choices[0].GetProperty("delta").TryGetProperty("content", out var c)) text.Append(c.GetString());
        }
        return text.ToString();
    }

    [Fact]
    public async Task Slow_headers_time_out_after_FirstTokenTimeout_and_the_fallback_answers()
    {
        _primary.Handler = (http, _) => HangAsync(http);
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
        Assert.Equal(1, _primary.Calls);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal("fallback answer", await StreamTextAsync(pending));
        await _primary.RequestAborted.Task.WaitAsync(s_guard); // the slow call was cancelled, not left running
        Assert.Equal(1, _fallback.Calls);
        Assert.Equal(["fallback m1>m2"], gateway.Events.Log.Where(e => e.StartsWith("fallback", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_200_whose_first_token_never_comes_times_out_and_falls_back_invisibly()
    {
        _primary.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await HangAsync(http);
        };
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        await UpstreamHangsAsync(); // the role chunk is out; the content never comes
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
        _time.Advance(TimeSpan.FromSeconds(5));

        // Only the fallback's stream reaches the client: the first attempt's role chunk was never sent.
        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal("2", response.Headers.GetValues("x-gateway-attempts").Single());
        var sse = await SseClient.ReadAllAsync(response).WaitAsync(s_guard);
        Assert.Equal(1, sse.Events.Count(e => e.Contains("\"role\"", StringComparison.Ordinal)));
        Assert.Equal("[DONE]", sse.Events[^1]);
    }

    [Fact]
    public async Task With_the_sdk_a_slow_first_token_costs_the_user_nothing_but_the_wait()
    {
        _primary.Handler = (http, _) => HangAsync(http);
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        var text = new StringBuilder();
        var reading = Task.Run(async () =>
        {
            await foreach (var update in gateway.ChatClient("m1").CompleteChatStreamingAsync([new UserChatMessage("hi")]))
            {
                foreach (var part in update.ContentUpdate) text.Append(part.Text);
            }
        });
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), reading);
        _time.Advance(TimeSpan.FromSeconds(5));
        await reading.WaitAsync(s_guard);
        Assert.Equal("fallback answer", text.ToString());
    }

    [Fact]
    public async Task A_stream_that_stalls_after_it_started_ends_with_one_timeout_error_event()
    {
        _primary.Handler = (http, _) => StartsThenHangsAsync(http);
        var grace = new ManualTimeProvider();
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time, grace: grace);

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);
        var reading = BrokenStream.ReadAsync(response, grace);
        // The idle timer is re-armed before every read after the commit: once for the read that got
        // "answer", once for the read now waiting on the silent upstream. Then let it run out.
        await _time.WaitForArmedAsync(TimeSpan.FromSeconds(7), times: 2, reading);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.False(reading.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));
        var sse = await reading.WaitAsync(s_guard);

        Assert.Equal(4, sse.Events.Count);
        var error = JsonDocument.Parse(sse.Events[3]).RootElement.GetProperty("error");
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());
        Assert.False(sse.SawDone);
        Assert.NotNull(sse.Error);
        await _primary.RequestAborted.Task.WaitAsync(s_guard);
        Assert.Equal(0, _fallback.Calls);

        var record = await gateway.Observer.NextAsync();
        Assert.Equal(RequestOutcomes.Broken, record.Outcome);
        Assert.Equal("upstream_timeout", record.ErrorCode);
        Assert.Equal(4, record.Usage.Completion); // "half an answer": 14 characters
        // The silence was the deployment's: its history has the error (a timeout without a status says nothing of
        // the provider as a whole, whose own count stays clean).
        var deployment = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Equal(1, deployment.GetProperty("recent").GetProperty("errors").GetInt32());
        Assert.Equal(0, (await gateway.ProviderAsync("p1")).GetProperty("recent").GetProperty("errors").GetInt32());
    }

    [Fact]
    public async Task When_every_candidate_times_out_the_client_gets_504()
    {
        _primary.Handler = (http, _) => HangAsync(http);
        _fallback.Handler = (http, _) => HangAsync(http);
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        for (var i = 1; i <= 2; i++)
        {
            await UpstreamHangsAsync();
            await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
            _time.Advance(TimeSpan.FromSeconds(5));
        }

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());
        Assert.Equal("2", response.Headers.GetValues("x-gateway-attempts").Single());
    }

    [Fact]
    public async Task A_streams_retries_share_one_first_token_budget_so_the_fallback_starts_within_it()
    {
        // The first try fails after 3 s; the retry gets only the 2 s left of the 5 s budget, not 5 s of its own.
        var failFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        _primary.Handler = async (http, _) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                _hanging.Release();
                await failFirst.Task.WaitAsync(s_guard, http.RequestAborted);
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("busy", type: "server_error"), 500);
                return;
            }
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await HangAsync(http);
        };
        var settings = Settings(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "2").With("Gateway:Resilience:BaseDelayMs", "0");
        await using var gateway = new ResilienceGateway(settings, _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
        _time.Advance(TimeSpan.FromSeconds(3));
        failFirst.SetResult();

        await UpstreamHangsAsync(); // the retry: headers and a role chunk, then nothing
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(2), pending);
        _time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal("fallback answer", await StreamTextAsync(pending));
        // 5 s after the first try the fallback answered; the third try the retries allow was not spent on m1.
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(1, _fallback.Calls);
    }

    [Fact]
    public async Task A_stalled_stream_falls_back_after_one_first_token_timeout_not_one_per_retry()
    {
        _primary.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await HangAsync(http);
        };
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "2"), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(5), pending);
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal("fallback answer", await StreamTextAsync(pending));
        Assert.Equal(1, _primary.Calls);
    }

    [Fact]
    public async Task A_hung_non_streamed_call_is_abandoned_after_AttemptTimeout_and_the_fallback_answers()
    {
        _primary.Handler = (http, _) => HangAsync(http);
        _fallback.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("fallback answer"));
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback).With("Gateway:Resilience:AttemptTimeoutSeconds", "20"), _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1"));
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(20), pending);
        _time.Advance(TimeSpan.FromSeconds(20));

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("fallback answer", await response.Content.ReadAsStringAsync());
        await _primary.RequestAborted.Task.WaitAsync(s_guard);
        var m1 = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Contains("no answer in time", m1.GetProperty("last_error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task After_an_attempt_timed_out_the_next_one_still_ends_at_the_total_and_only_the_first_is_held_against_its_provider()
    {
        _primary.Handler = (http, _) => HangAsync(http);
        _fallback.Handler = (http, _) => HangAsync(http);
        var settings = Settings(_primary, _fallback)
            .With("Gateway:Resilience:AttemptTimeoutSeconds", "20")
            .With("Gateway:Resilience:TotalTimeoutSeconds", "30");
        await using var gateway = new ResilienceGateway(settings, _time);

        var pending = gateway.PostAsync(ResilienceGateway.Body("m1"));
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(TimeSpan.FromSeconds(20), pending);
        _time.Advance(TimeSpan.FromSeconds(20));

        // The fallback has what is left of the total (10 s), not an attempt's 20 s.
        await UpstreamHangsAsync();
        await _time.WaitForTimerAsync(d => d > TimeSpan.FromSeconds(9) && d <= TimeSpan.FromSeconds(10), "the rest of the total", pending);
        _time.Advance(TimeSpan.FromSeconds(10));

        using var response = await pending.WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("total time ran out", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(1, _fallback.Calls);
        var m1 = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Contains("no answer in time", m1.GetProperty("last_error").GetProperty("message").GetString());
        // The total running out says nothing about the fallback: no error of its own.
        var m2 = await gateway.DeploymentAsync("p2", "upstream-m2");
        Assert.False(m2.TryGetProperty("last_error", out var error) && error.ValueKind == JsonValueKind.Object, $"the fallback was held to the total: {m2}");
    }

    [Fact]
    public async Task A_stream_the_total_time_cuts_ends_with_one_timeout_error_event_not_held_against_the_provider()
    {
        _primary.Handler = (http, _) => StartsThenHangsAsync(http);
        // The idle timeout (7 s) is longer than the whole request may take (6 s).
        var grace = new ManualTimeProvider();
        await using var gateway = new ResilienceGateway(Settings(_primary, _fallback).With("Gateway:Resilience:TotalTimeoutSeconds", "6"), _time, grace: grace);

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);
        var reading = BrokenStream.ReadAsync(response, grace);
        // Set to the cap: when the request starts, for the read that got "answer" and after it, and for the read now waiting.
        await _time.WaitForArmedAsync(TimeSpan.FromSeconds(6), times: 4, reading);
        _time.Advance(TimeSpan.FromSeconds(6) - TimeSpan.FromMilliseconds(1));
        Assert.False(reading.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var sse = await reading.WaitAsync(s_guard);

        Assert.Equal(4, sse.Events.Count);
        var error = JsonDocument.Parse(sse.Events[3]).RootElement.GetProperty("error");
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());
        Assert.False(sse.SawDone);
        var record = await gateway.Observer.NextAsync();
        Assert.Equal(RequestOutcomes.Broken, record.Outcome);
        // The total running out is not the deployment going quiet.
        var deployment = await gateway.DeploymentAsync("p1", "upstream-m1");
        Assert.Equal(0, deployment.GetProperty("recent").GetProperty("errors").GetInt32());
    }
}
