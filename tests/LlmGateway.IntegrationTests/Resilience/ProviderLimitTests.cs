using System.Net;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>A provider at its own MaxConcurrency, Rpm or Tpm is skipped to the next candidate, never queued.</summary>
public sealed class ProviderLimitTests : IAsyncLifetime
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(15);
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the primary")));
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the fallback")));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    /// <summary>A stream that holds its provider's slot until <paramref name="release"/>.</summary>
    private static Func<Microsoft.AspNetCore.Http.HttpContext, ReceivedRequest, Task> StreamUntil(TaskCompletionSource release) => async (http, _) =>
    {
        OpenAiWire.StartSse(http);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "long "));
        await release.Task.WaitAsync(s_guard, http.RequestAborted);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(finish: "stop"));
        await OpenAiWire.WriteEventAsync(http, "[DONE]");
    };

    [Fact]
    public async Task A_provider_at_its_concurrency_limit_is_skipped_until_its_stream_ends()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _primary.Handler = StreamUntil(release);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Providers:p1:MaxConcurrency", "1"));

        // The first request holds p1's only slot for as long as its stream runs.
        using var first = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);
        Assert.Equal("m1", first.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(1, (await gateway.ProviderAsync("p1")).GetProperty("limits").GetProperty("in_flight").GetInt64());

        using (var second = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
            Assert.Equal("m2", second.Headers.GetValues("x-gateway-model").Single());
            Assert.Equal("1", second.Headers.GetValues("x-gateway-attempts").Single());
        }
        Assert.Equal(1, _primary.Calls);

        release.SetResult();
        var sse = await SseClient.ReadAllAsync(first);
        Assert.True(sse.SawDone);
        await gateway.Observer.NextAsync(); // the first request is fully done: its slot is back
        await gateway.Observer.NextAsync();

        _primary.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from the primary"));
        using var third = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
        Assert.Equal("m1", third.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(2, _primary.Calls);
    }

    [Fact]
    public async Task A_provider_over_its_requests_per_minute_is_skipped()
    {
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Providers:p1:Rpm", "2"));
        var models = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
            models.Add(response.Headers.GetValues("x-gateway-model").Single());
        }
        Assert.Equal(["m1", "m1", "m2"], models);
        Assert.Equal(2, _primary.Calls);
    }

    [Fact]
    public async Task A_request_larger_than_what_is_left_of_the_tokens_per_minute_is_skipped()
    {
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Providers:p1:Tpm", "1000"));
        const string small = """{"model":"m1","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}""";
        const string large = """{"model":"m1","max_tokens":900,"messages":[{"role":"user","content":"hi"}]}""";

        using (var first = await gateway.PostAsync(small).WaitAsync(s_guard)) Assert.Equal("m1", first.Headers.GetValues("x-gateway-model").Single());
        using (var second = await gateway.PostAsync(large).WaitAsync(s_guard)) Assert.Equal("m2", second.Headers.GetValues("x-gateway-model").Single());
        using (var third = await gateway.PostAsync(small).WaitAsync(s_guard)) Assert.Equal("m1", third.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(2, _primary.Calls);
    }

    [Fact]
    public async Task With_every_candidate_at_its_limit_the_client_gets_503()
    {
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary).With("Gateway:Providers:p1:Rpm", "1"));
        using (var first = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard)) Assert.Equal(HttpStatusCode.OK, first.StatusCode);

        using var second = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        var error = JsonDocument.Parse(await second.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("no_healthy_provider", error.GetProperty("code").GetString());
        Assert.Contains("Rpm", error.GetProperty("message").GetString());
        // Until the minute's window renews.
        Assert.InRange(int.Parse(second.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        Assert.Equal(1, _primary.Calls);
    }
    [Fact]
    public async Task A_full_MaxConcurrency_everywhere_is_503_with_a_one_second_Retry_After()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _primary.Handler = StreamUntil(release);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary).With("Gateway:Providers:p1:MaxConcurrency", "1"));
        using var first = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)).WaitAsync(s_guard);

        using (var second = await gateway.PostAsync(ResilienceGateway.Body("m1")).WaitAsync(s_guard))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
            Assert.Contains("MaxConcurrency", await second.Content.ReadAsStringAsync());
            // A slot frees as soon as any answer ends; nothing was called for this request, so the client decides.
            Assert.Equal("1", second.Headers.GetValues("Retry-After").Single());
            Assert.False(second.Headers.Contains("x-should-retry"));
        }
        release.SetResult();
        Assert.True((await SseClient.ReadAllAsync(first)).SawDone);
        Assert.Equal(1, _primary.Calls);
    }

    [Fact]
    public void The_default_MaxConcurrency_takes_a_thousand_concurrent_streams()
    {
        Assert.Equal(1024, new LlmGateway.Configuration.ProviderOptions().MaxConcurrency);
    }
}
