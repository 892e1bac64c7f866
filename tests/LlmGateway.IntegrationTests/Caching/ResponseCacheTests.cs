using System.Net;
using System.Text.Json;
using LlmGateway.Caching;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Caching;

public sealed class ResponseCacheTests : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_CACHE";
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        _upstream.Handler = StoreTestKit.NumberedAnswers(_upstream);
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Gateway(Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv);
        configure?.Invoke(settings);
        return new GatewayFactory(settings);
    }

    [Fact]
    public async Task A_repeated_deterministic_request_is_answered_from_the_cache_without_calling_the_provider()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var first = await client.PostChatAsync(StoreTestKit.Body("What is 2+2?"));
        using var second = await client.PostChatAsync(StoreTestKit.Body("What is 2+2?"));

        Assert.Equal("miss", first.Header("x-gateway-cache"));
        Assert.Equal("hit", second.Header("x-gateway-cache"));
        Assert.Equal("answer 1", await first.ContentAsync());
        Assert.Equal("answer 1", await second.ContentAsync());
        Assert.Equal(1, _upstream.Calls);
        Assert.Equal("0", second.Header("x-gateway-cost-usd"));
        Assert.NotEqual("0", first.Header("x-gateway-cost-usd"));
        Assert.Equal("cache", second.Header("x-gateway-provider"));
        Assert.Equal("test-model", second.Header("x-gateway-model"));
    }

    [Fact]
    public async Task Field_order_user_and_metadata_do_not_change_the_key_but_the_prompt_and_parameters_do()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        await client.PostChatAsync("""{"model":"test-model","temperature":0,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}""");
        using var reordered = await client.PostChatAsync("""{"messages":[{"content":"hi","role":"user"}],"user":"u-42","metadata":{"team":"x"},"max_tokens":50,"temperature":0,"model":"test-model"}""");
        using var otherPrompt = await client.PostChatAsync("""{"model":"test-model","temperature":0,"max_tokens":50,"messages":[{"role":"user","content":"hi!"}]}""");
        using var otherParameter = await client.PostChatAsync("""{"model":"test-model","temperature":0,"max_tokens":51,"messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal("hit", reordered.Header("x-gateway-cache"));
        Assert.Equal("miss", otherPrompt.Header("x-gateway-cache"));
        Assert.Equal("miss", otherParameter.Header("x-gateway-cache"));
        Assert.Equal(3, _upstream.Calls);
    }

    [Fact]
    public async Task Requests_that_are_not_deterministic_bypass_the_cache_and_a_seed_makes_them_cacheable()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var a = await client.PostChatAsync(StoreTestKit.Body("tell a story", "\"temperature\":0.7"));
        using var b = await client.PostChatAsync(StoreTestKit.Body("tell a story", "\"temperature\":0.7"));
        using var noTemperature = await client.PostChatAsync(StoreTestKit.Body("tell a story", "\"max_tokens\":10"));
        using var seeded1 = await client.PostChatAsync(StoreTestKit.Body("tell a story", "\"temperature\":0.7,\"seed\":7"));
        using var seeded2 = await client.PostChatAsync(StoreTestKit.Body("tell a story", "\"temperature\":0.7,\"seed\":7"));

        Assert.Equal(["bypass", "bypass", "bypass", "miss", "hit"],
            new[] { a, b, noTemperature, seeded1, seeded2 }.Select(r => r.Header("x-gateway-cache")));
        Assert.Equal(4, _upstream.Calls);
    }

    [Fact]
    public async Task With_the_cache_disabled_every_response_says_off()
    {
        await using var gateway = Gateway(s => s["Gateway:Cache:Enabled"] = "false");
        var client = gateway.CreateClient();

        using var first = await client.PostChatAsync(StoreTestKit.Body("q"));
        using var second = await client.PostChatAsync(StoreTestKit.Body("q"));

        Assert.Equal("off", first.Header("x-gateway-cache"));
        Assert.Equal("off", second.Header("x-gateway-cache"));
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task No_cache_skips_the_read_but_stores_the_fresh_answer_and_no_store_reads_but_never_writes()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var cached = await client.PostChatAsync(StoreTestKit.Body("refresh me"));
        using var fresh = await client.PostChatAsync(StoreTestKit.Body("refresh me"), "no-cache");
        using var afterFresh = await client.PostChatAsync(StoreTestKit.Body("refresh me"));
        using var notStored = await client.PostChatAsync(StoreTestKit.Body("private"), "no-store");
        using var stillNotStored = await client.PostChatAsync(StoreTestKit.Body("private"));
        using var readWithNoStore = await client.PostChatAsync(StoreTestKit.Body("refresh me"), "no-store");

        Assert.Equal("bypass", fresh.Header("x-gateway-cache"));
        Assert.Equal("answer 2", await fresh.ContentAsync());
        Assert.Equal("hit", afterFresh.Header("x-gateway-cache"));
        Assert.Equal("answer 2", await afterFresh.ContentAsync());
        Assert.Equal("miss", notStored.Header("x-gateway-cache"));
        Assert.Equal("miss", stillNotStored.Header("x-gateway-cache"));
        Assert.Equal("hit", readWithNoStore.Header("x-gateway-cache"));
        Assert.Equal(4, _upstream.Calls);
    }

    [Fact]
    public async Task Answers_larger_than_MaxEntryBytes_are_not_stored()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion(new string('x', 2000)));
        await using var gateway = Gateway(s => s["Gateway:Cache:MaxEntryBytes"] = "1000");
        var client = gateway.CreateClient();

        using var first = await client.PostChatAsync(StoreTestKit.Body("big"));
        using var second = await client.PostChatAsync(StoreTestKit.Body("big"));

        Assert.Equal("miss", second.Header("x-gateway-cache"));
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task Failed_answers_are_not_stored()
    {
        _upstream.Handler = async (http, _) =>
        {
            if (_upstream.Calls == 1) await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("bad thing", code: "bad"), 400);
            else await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("fine"));
        };
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var failed = await client.PostChatAsync(StoreTestKit.Body("q"));
        using var retried = await client.PostChatAsync(StoreTestKit.Body("q"));

        Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode);
        Assert.Equal("miss", retried.Header("x-gateway-cache"));
        Assert.Equal("fine", await retried.ContentAsync());
    }

    [Fact]
    public async Task A_fallback_answer_is_served_but_not_stored_as_the_answer_of_the_model_asked_for()
    {
        await using var backup = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("from backup")));
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("no key", "authentication_error"), 401);
        await using var gateway = Gateway(s =>
        {
            foreach (var (k, v) in GatewayFactory.OpenAiSettings(backup.BaseUrl, provider: "backup", model: "backup-model")) s[k] = v;
            s["Gateway:Models:test-model:Fallbacks:0"] = "backup-model";
        });
        var client = gateway.CreateClient();

        using var first = await client.PostChatAsync(StoreTestKit.Body("q"));
        using var second = await client.PostChatAsync(StoreTestKit.Body("q"));

        Assert.Equal("from backup", await first.ContentAsync());
        Assert.Equal("miss", second.Header("x-gateway-cache"));
        Assert.Equal(2, backup.Calls);
    }

    [Fact]
    public async Task DELETE_admin_cache_empties_the_cache()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        await client.PostChatAsync(StoreTestKit.Body("one"));
        await client.PostChatAsync(StoreTestKit.Body("two"));

        var cleared = await client.AdminAsync(HttpMethod.Delete, "/admin/cache", _adminKey);
        using var again = await client.PostChatAsync(StoreTestKit.Body("one"));

        Assert.Equal(2, cleared.GetProperty("entries").GetInt32());
        Assert.Equal("miss", again.Header("x-gateway-cache"));
        Assert.Equal(3, _upstream.Calls);
        await client.AdminAsync(HttpMethod.Delete, "/admin/cache", "wrong-key", expectedStatus: 401);
    }

    [Fact]
    public async Task A_streamed_answer_is_stored_and_replayed_to_streaming_and_non_streaming_clients()
    {
        await using var gateway = Gateway();
        var sdk = gateway.Sdk();
        var options = new ChatCompletionOptions { Temperature = 0 };
        ChatMessage[] prompt = [new UserChatMessage("stream me")];

        // The SDK streams with stream_options.include_usage, so the replay must end with the usage chunk.
        var firstText = await StreamTextAsync(sdk.CompleteChatStreamingAsync(prompt, options));
        var replayed = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in sdk.CompleteChatStreamingAsync(prompt, options)) replayed.Add(update);
        var whole = await sdk.CompleteChatAsync(prompt, options);

        Assert.Equal("answer 1", firstText);
        Assert.Equal("answer 1", string.Concat(replayed.SelectMany(u => u.ContentUpdate).Select(p => p.Text)));
        Assert.Equal(ChatFinishReason.Stop, replayed.Last(u => u.FinishReason is not null).FinishReason);
        Assert.Equal(7, Assert.Single(replayed, u => u.Usage is not null).Usage.OutputTokenCount);
        Assert.Equal("answer 1", whole.Value.Content[0].Text);
        Assert.Equal(7, whole.Value.Usage.OutputTokenCount);
        Assert.Equal("hit", whole.GetRawResponse().Headers.TryGetValue("x-gateway-cache", out var h) ? h : null);
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task A_replayed_stream_has_a_usage_chunk_only_when_the_client_asked_for_one()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        // Stored from a non-streaming answer, replayed as a stream.
        await client.PostChatAsync(StoreTestKit.Body("usage please"));

        using var withUsage = await client.PostChatAsync(StoreTestKit.Body("usage please", "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
        using var withoutUsage = await client.PostChatAsync(StoreTestKit.Body("usage please", "\"temperature\":0,\"stream\":true"));
        var events = Events(await withUsage.Content.ReadAsStringAsync());
        var plainEvents = Events(await withoutUsage.Content.ReadAsStringAsync());

        Assert.Equal("hit", withUsage.Header("x-gateway-cache"));
        Assert.StartsWith("text/event-stream", withUsage.Content.Headers.ContentType!.ToString());
        Assert.Equal("[DONE]", events[^1]);
        var usageChunk = JsonDocument.Parse(events[^2]).RootElement;
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(11, usageChunk.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal("[DONE]", plainEvents[^1]);
        Assert.DoesNotContain(plainEvents, e => e.Contains("\"usage\"", StringComparison.Ordinal));
        var text = string.Concat(plainEvents.SkipLast(1).Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("delta"))
            .Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()));
        Assert.Equal("answer 1", text);
        Assert.Equal(1, _upstream.Calls);
    }

    private static string[] Events(string sse) =>
        [.. sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : e)];

    [Fact]
    public async Task Tool_calls_survive_the_trip_through_the_cache_as_a_stream()
    {
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""");
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.UsageChunk(20, 9));
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };
        await using var gateway = Gateway();
        var sdk = gateway.Sdk();
        var options = new ChatCompletionOptions { Temperature = 0, Tools = { ChatTool.CreateFunctionTool("get_weather", "weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}""")) } };

        await foreach (var _ in sdk.CompleteChatStreamingAsync([new UserChatMessage("weather in Paris?")], options)) { }
        var whole = await sdk.CompleteChatAsync([new UserChatMessage("weather in Paris?")], options);
        var replayed = new List<StreamingChatCompletionUpdate>();
        await foreach (var u in sdk.CompleteChatStreamingAsync([new UserChatMessage("weather in Paris?")], options)) replayed.Add(u);

        var call = Assert.Single(whole.Value.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Paris"}""", call.FunctionArguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, whole.Value.FinishReason);
        var streamedCall = Assert.Single(replayed.SelectMany(u => u.ToolCallUpdates));
        Assert.Equal("call_1", streamedCall.ToolCallId);
        Assert.Equal("""{"city":"Paris"}""", streamedCall.FunctionArgumentsUpdate.ToString());
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task A_stream_that_breaks_is_not_stored()
    {
        _upstream.Handler = async (http, _) =>
        {
            if (_upstream.Calls > 1)
            {
                await OpenAiWire.WriteStreamAsync(http, ["whole"]);
                return;
            }
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: "half"));
            http.Abort();
        };
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        var body = StoreTestKit.Body("q", "\"temperature\":0,\"stream\":true");

        // The gateway aborts the broken stream: depending on when the abort lands, sending or reading fails.
        try
        {
            using var broken = await client.PostChatAsync(body);
            await broken.Content.ReadAsStringAsync();
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
        }
        using var next = await client.PostChatAsync(body);
        var text = await next.Content.ReadAsStringAsync();

        Assert.Equal("miss", next.Header("x-gateway-cache"));
        Assert.Contains("whole", text);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task Ten_concurrent_identical_requests_make_one_upstream_call()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            await release.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("shared answer"));
        };
        await using var gateway = Gateway();
        var cache = gateway.Services.GetRequiredService<ResponseCache>();
        var client = gateway.CreateClient();

        // Half stream, half don't: one answer serves both kinds.
        var requests = Enumerable.Range(0, 10).Select(i => client.PostChatAsync(
            StoreTestKit.Body("same question", i % 2 == 0 ? "\"temperature\":0" : "\"temperature\":0,\"stream\":true"))).ToList();
        await StoreTestKit.EventuallyAsync(() => Task.FromResult(cache.Waiting == 9 && _upstream.Calls == 1), "nine requests waiting on the first");
        release.SetResult();
        var responses = await Task.WhenAll(requests);

        Assert.Equal(1, _upstream.Calls);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(9, responses.Count(r => r.Header("x-gateway-cache") == "hit"));
        foreach (var r in responses) Assert.Contains("shared answer", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Requests_that_can_not_be_cached_are_never_coalesced()
    {
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            if (_upstream.Calls == 3) allArrived.TrySetResult();
            // Each answer waits until all three reached the provider: coalescing them would time this out.
            await allArrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("own answer"));
        };
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        var responses = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.PostChatAsync(StoreTestKit.Body("creative", "\"temperature\":1"))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(3, _upstream.Calls);
    }

    [Fact]
    public async Task When_the_first_of_identical_requests_fails_the_waiting_ones_call_the_provider_themselves()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            if (_upstream.Calls == 1)
            {
                await release.Task.WaitAsync(TimeSpan.FromSeconds(20));
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("bad parameter", code: "bad"), 400);
                return;
            }
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("second try"));
        };
        await using var gateway = Gateway();
        var cache = gateway.Services.GetRequiredService<ResponseCache>();
        var client = gateway.CreateClient();

        var requests = Enumerable.Range(0, 4).Select(_ => client.PostChatAsync(StoreTestKit.Body("fragile"))).ToList();
        await StoreTestKit.EventuallyAsync(() => Task.FromResult(cache.Waiting == 3), "three requests waiting on the first");
        release.SetResult();
        var responses = await Task.WhenAll(requests);

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.BadRequest));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.Equal(4, _upstream.Calls);
    }

    [Fact]
    public async Task With_gateway_keys_key_B_never_gets_key_As_cached_answer_and_each_key_still_hits_its_own()
    {
        await using var gateway = Gateway(s => Auth.AuthKit.WithKeys(s, new Auth.AuthKit.Key("team-a", "gw-secret-of-team-a"), new Auth.AuthKit.Key("team-b", "gw-secret-of-team-b")));
        var a = gateway.ChatClient("test-model", "gw-secret-of-team-a");
        var b = gateway.ChatClient("test-model", "gw-secret-of-team-b");
        var options = new ChatCompletionOptions { Temperature = 0 };

        ChatCompletion aFirst = await a.CompleteChatAsync([new UserChatMessage("What is our roadmap?")], options);
        ChatCompletion bFirst = await b.CompleteChatAsync([new UserChatMessage("What is our roadmap?")], options);
        ChatCompletion bAgain = await b.CompleteChatAsync([new UserChatMessage("What is our roadmap?")], options);
        ChatCompletion aAgain = await a.CompleteChatAsync([new UserChatMessage("What is our roadmap?")], options);

        Assert.Equal("answer 1", aFirst.Content[0].Text);
        Assert.Equal("answer 2", bFirst.Content[0].Text); // B paid for its own call, under its own id
        Assert.Equal("answer 2", bAgain.Content[0].Text);
        Assert.Equal("answer 1", aAgain.Content[0].Text);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task Identical_requests_of_two_keys_in_flight_at_once_are_not_coalesced()
    {
        var release = new TaskCompletionSource();
        var calls = 0;
        _upstream.Handler = async (http, _) =>
        {
            var n = Interlocked.Increment(ref calls);
            if (n == 1) await release.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer " + n));
        };
        await using var gateway = Gateway(s => Auth.AuthKit.WithKeys(s, new Auth.AuthKit.Key("team-a", "gw-secret-of-team-a"), new Auth.AuthKit.Key("team-b", "gw-secret-of-team-b")));
        var client = gateway.CreateClient();

        var first = client.SendAsync(Auth.AuthKit.Chat(StoreTestKit.Body("same question"), "gw-secret-of-team-a"));
        await StoreTestKit.EventuallyAsync(() => Task.FromResult(_upstream.Calls == 1), "key A's call reaching the upstream");
        using var second = await client.SendAsync(Auth.AuthKit.Chat(StoreTestKit.Body("same question"), "gw-secret-of-team-b"));
        release.SetResult();
        using var firstResponse = await first;

        Assert.Equal("miss", second.Header("x-gateway-cache"));
        Assert.Equal("answer 2", await second.ContentAsync());
        Assert.Equal("answer 1", await firstResponse.ContentAsync());
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task SharedAcrossKeys_lets_keys_that_trust_each_other_share_one_cache()
    {
        await using var gateway = Gateway(s =>
        {
            Auth.AuthKit.WithKeys(s, new Auth.AuthKit.Key("team-a", "gw-secret-of-team-a"), new Auth.AuthKit.Key("team-b", "gw-secret-of-team-b"));
            s["Gateway:Cache:SharedAcrossKeys"] = "true";
        });
        var client = gateway.CreateClient();

        using var a = await client.SendAsync(Auth.AuthKit.Chat(StoreTestKit.Body("shared question"), "gw-secret-of-team-a"));
        using var b = await client.SendAsync(Auth.AuthKit.Chat(StoreTestKit.Body("shared question"), "gw-secret-of-team-b"));

        Assert.Equal("hit", b.Header("x-gateway-cache"));
        Assert.Equal("answer 1", await b.ContentAsync());
        Assert.Equal(1, _upstream.Calls);
    }

    private static async Task<string> StreamTextAsync(IAsyncEnumerable<StreamingChatCompletionUpdate> updates)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var u in updates)
        {
            foreach (var part in u.ContentUpdate) text.Append(part.Text);
        }
        return text.ToString();
    }
}
