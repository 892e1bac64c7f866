using System.ClientModel;
using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// The classification at work: what is retried on the same provider, what moves to the next
/// candidate, and what fails the request at once. Retries here wait 0 ms; the waits themselves are
/// in <see cref="RetryTimingTests"/>.
/// </summary>
public sealed class RetryAndFallbackTests : IAsyncLifetime
{
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync();
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the fallback")));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    private static Func<Microsoft.AspNetCore.Http.HttpContext, ReceivedRequest, Task> FailThenAnswer(int failures, int status, string answer)
    {
        var calls = 0;
        return (http, _) => Interlocked.Increment(ref calls) <= failures
            ? OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("The server had an error.", type: "server_error"), status)
            : OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion(answer));
    }

    private IEnumerable<string> Events(ResilienceGateway gateway) => gateway.Events.Log.Where(e => !e.StartsWith("up ", StringComparison.Ordinal));

    [Fact]
    public async Task Every_retry_and_the_fallback_send_the_whole_body_each_with_its_own_upstream_model()
    {
        // Each attempt writes its upstream body into a pooled buffer, given back once its call is over: a
        // retry or a fallback that sent a buffer already given back would send bytes that are not the client's.
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("The server had an error.", type: "server_error"), 500);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback));
        var prompt = string.Concat(Enumerable.Range(0, 4000).Select(i => $"part {i} of a long prompt, "));

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", content: prompt));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(_primary.Requests.Count > 1, $"the primary was called {_primary.Requests.Count} time(s), not retried");
        Assert.All(_primary.Requests, r => Assert.Equal(ResilienceGateway.Body("upstream-m1", content: prompt), System.Text.Encoding.UTF8.GetString(r.Body)));
        Assert.Equal(ResilienceGateway.Body("upstream-m2", content: prompt), System.Text.Encoding.UTF8.GetString(Assert.Single(_fallback.Requests).Body));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    [InlineData(529)]
    [InlineData(429)]
    public async Task A_provider_that_fails_twice_then_answers_is_retried_and_the_client_sees_only_the_answer(int status)
    {
        // A 429 or 529 is waited out only when the upstream names a wait (here 20 ms), which ends the
        // deployment's cooldown; without one the gateway moves on to the next candidate (CooldownTests).
        var answer = FailThenAnswer(2, status, "third time lucky");
        _primary.Handler = (http, received) =>
        {
            http.Response.Headers["retry-after-ms"] = "20";
            return answer(http, received);
        };
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback));

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal("third time lucky", result.Value.Content[0].Text);
        Assert.Equal(3, _primary.Calls);
        Assert.Equal(0, _fallback.Calls);
        var headers = result.GetRawResponse().Headers;
        Assert.Equal("3", headers.HeaderValue("x-gateway-attempts"));
        Assert.Equal("m1", headers.HeaderValue("x-gateway-model"));
        Assert.Equal("p1", headers.HeaderValue("x-gateway-provider"));
        Assert.Equal(["retry p1", "retry p1"], Events(gateway));
        var record = await gateway.Observer.NextAsync();
        Assert.Equal(3, record.Attempts);
        Assert.Equal(0, record.Fallbacks);
    }

    [Fact]
    public async Task A_stream_that_fails_before_its_first_token_is_retried_invisibly()
    {
        var calls = 0;
        _primary.Handler = (http, _) => Interlocked.Increment(ref calls) == 1
            ? OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("Overloaded", type: "server_error"), 503)
            : OpenAiWire.WriteStreamAsync(http, ["streamed ", "after ", "a retry"]);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback));

        var text = new System.Text.StringBuilder();
        await foreach (var update in gateway.ChatClient("m1").CompleteChatStreamingAsync([new UserChatMessage("go")]))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
        }
        Assert.Equal("streamed after a retry", text.ToString());
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(2, (await gateway.Observer.NextAsync()).Attempts);
    }

    [Fact]
    public async Task A_provider_that_always_fails_is_tried_MaxRetries_plus_one_times_then_the_fallback_answers()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "2"));

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal("from the fallback", result.Value.Content[0].Text);
        Assert.Equal(3, _primary.Calls);
        Assert.Equal(1, _fallback.Calls);
        var headers = result.GetRawResponse().Headers;
        Assert.Equal("4", headers.HeaderValue("x-gateway-attempts"));
        Assert.Equal("m2", headers.HeaderValue("x-gateway-model"));
        Assert.Equal("p2", headers.HeaderValue("x-gateway-provider"));
        Assert.Equal(["retry p1", "retry p1", "fallback m1>m2"], Events(gateway));
        var record = await gateway.Observer.NextAsync();
        Assert.Equal(4, record.Attempts);
        Assert.Equal(1, record.Fallbacks);
        Assert.Equal("m2", record.Model);
    }

    [Fact]
    public async Task A_provider_override_of_MaxRetries_applies_to_that_provider_only()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500);
        _fallback.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500);
        var settings = ResilienceSettings.Chain(_primary, _fallback)
            .With("Gateway:Resilience:MaxRetries", "1")
            .With("Gateway:Providers:p2:Resilience:MaxRetries", "3");
        await using var gateway = new ResilienceGateway(settings);

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(4, _fallback.Calls);
        Assert.Equal("6", response.Headers.GetValues("x-gateway-attempts").Single());
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.Contains("p1", error.GetProperty("message").GetString());
        Assert.Contains("p2", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_unreachable_provider_is_retried_then_the_fallback_answers()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var settings = ResilienceSettings.Chain(_primary, _fallback)
            .With("Gateway:Providers:p1:BaseUrl", $"http://127.0.0.1:{port}/v1")
            .With("Gateway:Resilience:MaxRetries", "1");
        await using var gateway = new ResilienceGateway(settings);

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal("from the fallback", result.Value.Content[0].Text);
        Assert.Equal("3", result.GetRawResponse().Headers.HeaderValue("x-gateway-attempts"));
        Assert.Equal(["retry p1", "fallback m1>m2"], Events(gateway));
    }

    [Theory]
    [InlineData(401, "invalid_api_key")]
    [InlineData(403, null)]
    [InlineData(404, "model_not_found")]
    public async Task A_provider_that_refuses_us_moves_to_the_next_candidate_without_retrying(int status, string? code)
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("No.", code: code), status);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "3"));

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal("from the fallback", result.Value.Content[0].Text);
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(1, _fallback.Calls);
        Assert.Equal("2", result.GetRawResponse().Headers.HeaderValue("x-gateway-attempts"));
        Assert.Equal(["fallback m1>m2"], Events(gateway));
    }

    [Fact]
    public async Task An_exhausted_quota_is_not_retried_but_the_fallback_answers()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http,
            OpenAiWire.Error("You exceeded your current quota.", type: "insufficient_quota", code: "insufficient_quota"), 429);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "3"));

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]);

        Assert.Equal("from the fallback", result.Value.Content[0].Text);
        Assert.Equal(1, _primary.Calls);
    }

    [Fact]
    public async Task A_400_for_a_bad_parameter_fails_at_once_without_retry_or_fallback()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http,
            OpenAiWire.Error("Invalid value for 'top_p': must be at most 1.", code: "invalid_value", param: "top_p"), 400);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "3"));

        var thrown = await Assert.ThrowsAsync<ClientResultException>(() => gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("hello")]));

        Assert.Equal(400, thrown.Status);
        Assert.Contains("top_p", thrown.Message);
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(0, _fallback.Calls);
        Assert.Empty(Events(gateway));
    }

    [Fact]
    public async Task A_context_length_error_skips_to_a_candidate_with_a_larger_context_window()
    {
        await using var large = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("I have room")));
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http,
            OpenAiWire.Error("This model's maximum context length is 8192 tokens.", code: "context_length_exceeded", param: "messages"), 400);
        var settings = ResilienceSettings.Chain(_primary, _fallback, large)
            .With("Gateway:Models:m1:ContextWindow", "8192")
            .With("Gateway:Models:m2:ContextWindow", "8192")
            .With("Gateway:Models:m3:ContextWindow", "200000");
        await using var gateway = new ResilienceGateway(settings);

        var result = await gateway.ChatClient("m1").CompleteChatAsync([new UserChatMessage("a very long prompt")]);

        Assert.Equal("I have room", result.Value.Content[0].Text);
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(0, _fallback.Calls); // no larger than the one that was too small
        Assert.Equal(1, large.Calls);
        Assert.Equal("m3", result.GetRawResponse().Headers.HeaderValue("x-gateway-model"));
    }

    [Fact]
    public async Task X_No_Fallback_keeps_the_request_on_the_model_asked_for()
    {
        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("boom", type: "server_error"), 500);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "1"));

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1"), r => r.Headers.Add("X-No-Fallback", "true"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(2, _primary.Calls);
        Assert.Equal(0, _fallback.Calls);
    }
}
