using System.ClientModel;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Resilience;

/// <summary>
/// Streams that fail: before their first content (invisible to the client: the next candidate
/// answers) and after it (one OpenAI-shaped error event, never a clean end).
/// </summary>
public sealed class StreamFailureTests : IAsyncLifetime
{
    private FakeUpstream _primary = null!;
    private FakeUpstream _fallback = null!;

    public async Task InitializeAsync()
    {
        _primary = await FakeUpstream.StartAsync();
        _fallback = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteStreamAsync(http, ["from ", "the ", "fallback"]));
    }

    public async Task DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    /// <summary>
    /// Role, three content chunks, then the connection is reset (no finish, no usage, no [DONE]), once
    /// <paramref name="cut"/> says so: when the client has seen the third chunk, so the gateway surely
    /// read it. Cutting at once would race the reset against the chunks still in flight.
    /// </summary>
    private static async Task CutAfterThreeChunksAsync(HttpContext http, Task cut)
    {
        OpenAiWire.StartSse(http);
        await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
        foreach (var piece in new[] { "one ", "two ", "three " }) await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: piece));
        await cut.WaitAsync(TimeSpan.FromSeconds(15), http.RequestAborted);
        http.Abort();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_cut_after_three_chunks_ends_with_one_error_event_and_a_broken_connection(bool kestrel)
    {
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _primary.Handler = (http, _) => CutAfterThreeChunksAsync(http, cut.Task);
        var grace = new ManualTimeProvider();
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback), kestrel: kestrel, grace: grace);

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        Assert.Equal(200, (int)response.StatusCode);
        var sse = await BrokenStream.ReadAsync(grace, errorRead => SseClient.ReadAllAsync(response, onEvent: e =>
        {
            if (e.Contains("three", StringComparison.Ordinal)) cut.TrySetResult();
            if (e.Contains("\"error\"", StringComparison.Ordinal)) errorRead();
        }));

        // role, one, two, three, then exactly one error event; no [DONE] and no clean end.
        Assert.Equal(5, sse.Events.Count);
        Assert.Contains("three", sse.Events[3]);
        var error = JsonDocument.Parse(sse.Events[4]).RootElement.GetProperty("error");
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Contains("p1", error.GetProperty("message").GetString());
        Assert.False(sse.SawDone);
        Assert.NotNull(sse.Error);

        // After the first byte there is no retry and no fallback.
        Assert.Equal(1, _primary.Calls);
        Assert.Equal(0, _fallback.Calls);
        Assert.Equal("1", response.Headers.GetValues("x-gateway-attempts").Single());

        // What was streamed before the cut was used, and is recorded as such.
        var record = await gateway.Observer.NextAsync();
        Assert.Equal(RequestOutcomes.Broken, record.Outcome);
        Assert.Equal("upstream_error", record.ErrorCode);
        Assert.Equal(1, record.Attempts);
        Assert.True(record.Usage.Prompt > 0);
        Assert.Equal(4, record.Usage.Completion); // "one two three " is 14 characters: 4 tokens by the estimate
        Assert.True(record.CostUsd > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_openai_sdk_raises_on_a_broken_stream_instead_of_returning_truncated_text(bool kestrel)
    {
        var cut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _primary.Handler = (http, _) => CutAfterThreeChunksAsync(http, cut.Task);
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback), kestrel: kestrel);

        var text = new StringBuilder();
        var thrown = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await foreach (var update in gateway.ChatClient("m1").CompleteChatStreamingAsync([new UserChatMessage("count to three")]))
            {
                foreach (var part in update.ContentUpdate) text.Append(part.Text);
                if (text.ToString().Contains("three", StringComparison.Ordinal)) cut.TrySetResult();
            }
        });
        Assert.True(thrown is IOException or HttpRequestException or ClientResultException, thrown.ToString());
        Assert.Equal("one two three ", text.ToString());
    }

    [Fact]
    public async Task A_200_whose_stream_fails_before_any_content_falls_back_invisibly()
    {
        // Some providers answer 200 and then send an error event: nothing reached the client yet.
        _primary.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Error("The server had an error while processing your request.", type: "server_error"));
        };
        var settings = ResilienceSettings.Chain(_primary, _fallback).With("Gateway:Resilience:MaxRetries", "1");
        await using var gateway = new ResilienceGateway(settings);

        using var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true));
        var sse = await SseClient.ReadAllAsync(response);

        Assert.Null(sse.Error);
        Assert.Equal("[DONE]", sse.Events[^1]);
        Assert.DoesNotContain(sse.Events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        Assert.Equal(1, sse.Events.Count(e => e.Contains("\"role\"", StringComparison.Ordinal))); // the failed attempt's role chunk was never sent
        var text = string.Concat(sse.Events.Where(e => e.StartsWith('{')).Select(e => JsonDocument.Parse(e).RootElement)
            .Where(e => e.GetProperty("choices").GetArrayLength() > 0)
            .Select(e => e.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var c) ? c.GetString() : ""));
        Assert.Equal("from the fallback", text);
        Assert.Equal(2, _primary.Calls); // the first try and one retry
        Assert.Equal(1, _fallback.Calls);
        Assert.Equal("3", response.Headers.GetValues("x-gateway-attempts").Single());
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-model").Single());
        Assert.Equal(["retry p1", "fallback m1>m2"], gateway.Events.Log.Where(e => !e.StartsWith("up ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_client_that_leaves_mid_stream_has_its_partial_usage_recorded()
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _primary.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "12345678"));
            await Task.Delay(TimeSpan.FromSeconds(30), http.RequestAborted);
        };
        await using var gateway = new ResilienceGateway(ResilienceSettings.Chain(_primary, _fallback));

        using (var response = await gateway.PostAsync(ResilienceGateway.Body("m1", stream: true)))
        {
            var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[4096];
            var read = new StringBuilder();
            while (!read.ToString().Contains("12345678", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer);
                Assert.True(n > 0);
                read.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }

        await _primary.RequestAborted.Task.WaitAsync(TimeSpan.FromSeconds(15));
        var record = await gateway.Observer.NextAsync();
        Assert.Equal(RequestOutcomes.Cancelled, record.Outcome);
        Assert.Equal(2, record.Usage.Completion);
        Assert.Equal(0, _fallback.Calls);
    }
}
