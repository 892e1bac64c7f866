using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using OpenAI.Chat;
using ManualClock = LlmGateway.IntegrationTests.Storage.ManualClock;

namespace LlmGateway.IntegrationTests.Conversations;

/// <summary>
/// X-Conversation-Id against the in-memory store: the history the upstream receives, what is kept and
/// what is not, expiry, trimming, and the scope of each gateway key.
/// </summary>
public sealed class ConversationTests : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_CONVERSATIONS";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        StoreTestKit.AdminKey(AdminEnv);
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
    public async Task Three_turns_one_of_them_streamed_send_the_whole_history_in_order_with_the_system_prompt_first()
    {
        await using var gateway = Gateway();
        var sdk = gateway.Sdk("trip-planning");

        ChatCompletion first = await sdk.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("one")]);
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in sdk.CompleteChatStreamingAsync([new UserChatMessage("two")]))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        }
        ChatCompletion third = await sdk.CompleteChatAsync([new UserChatMessage("three")]);

        Assert.Equal("answer 1", first.Content[0].Text);
        Assert.Equal("answer 2", streamed.ToString());
        Assert.Equal("answer 3", third.Content[0].Text);
        Assert.Equal(["system: Be brief.", "user: one"], _upstream.Received(0));
        Assert.Equal(["system: Be brief.", "user: one", "assistant: answer 1", "user: two"], _upstream.Received(1));
        Assert.Equal(["system: Be brief.", "user: one", "assistant: answer 1", "user: two", "assistant: answer 2", "user: three"], _upstream.Received(2));
        Assert.True(_upstream.Requests.ElementAt(1).Json.GetProperty("stream").GetBoolean(), "the rest of the body is the client's own");

        var (status, conversation) = await gateway.CreateClient().SendAsync(HttpMethod.Get, "trip-planning");
        Assert.Equal(200, status);
        Assert.Equal("conversation", conversation.GetProperty("object").GetString());
        Assert.Equal("trip-planning", conversation.GetProperty("id").GetString());
        Assert.Equal(3, conversation.GetProperty("turns").GetInt32());
        Assert.Equal(["system: Be brief.", "user: one", "assistant: answer 1", "user: two", "assistant: answer 2", "user: three", "assistant: answer 3"],
            ConversationKit.Lines(conversation.GetProperty("messages")));
    }

    [Fact]
    public async Task A_new_system_message_replaces_the_stored_one_and_is_kept_for_later_turns()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var a = await client.TurnAsync("persona", ConversationKit.Body("hi", system: "You are a pirate."));
        using var b = await client.TurnAsync("persona", ConversationKit.Body("again", system: "You are a poet."));
        using var c = await client.TurnAsync("persona", ConversationKit.Body("last"));

        Assert.Equal(["system: You are a poet.", "user: hi", "assistant: answer 1", "user: again"], _upstream.Received(1));
        Assert.Equal(["system: You are a poet.", "user: hi", "assistant: answer 1", "user: again", "assistant: answer 2", "user: last"], _upstream.Received(2));
        Assert.Equal(["new", "continued", "continued"], new[] { a, b, c }.Select(r => r.Header("x-gateway-conversation")));
    }

    [Fact]
    public async Task Requests_without_the_header_are_left_alone_and_store_nothing()
    {
        // The model name is the only field the provider itself rewrites: keep it the same.
        await using var gateway = Gateway(s => s["Gateway:Models:test-model:UpstreamModel"] = "test-model");
        var client = gateway.CreateClient();
        const string body = """{"model":"test-model","temperature":0.5,"messages":[{"role":"user","content":"plain"}]}""";

        using var first = await client.TurnAsync(null, body);
        using var second = await client.TurnAsync(null, body);

        Assert.Null(first.Header("x-gateway-conversation"));
        Assert.Equal(body, System.Text.Encoding.UTF8.GetString(_upstream.Requests.ElementAt(1).Body));
    }

    [Fact]
    public async Task Every_field_outside_the_messages_reaches_the_upstream_unchanged()
    {
        // The splice itself is byte-for-byte (see the unit tests); the OpenAI writer then re-emits the JSON.
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        const string before = """{ "model" : "test-model", "temperature":0.5, "metadata":{"team":"x"},"messages" : """;
        const string after = """ , "user":"u-1" , "max_tokens": 40, "logit_bias": {"50256": -100}}""";

        using var _ = await client.TurnAsync("fields", before + """[{"role":"user","content":"first"}]""" + after);
        using var __ = await client.TurnAsync("fields", before + """[ {"content":"second", "role":"user"} ]""" + after);

        var sent = _upstream.Requests.ElementAt(1).Json;
        Assert.Equal(["user: first", "assistant: answer 1", "user: second"], _upstream.Received(1));
        Assert.Equal(0.5, sent.GetProperty("temperature").GetDouble());
        Assert.Equal("u-1", sent.GetProperty("user").GetString());
        Assert.Equal(40, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal(-100, sent.GetProperty("logit_bias").GetProperty("50256").GetInt32());
    }

    [Fact]
    public async Task A_conversation_expires_TtlSeconds_after_its_last_turn_and_every_turn_refreshes_it()
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.Zero));
        await using var factory = Gateway(s => s["Gateway:Conversations:TtlSeconds"] = "60");
        await using var gateway = factory.WithClock(clock);
        var client = gateway.CreateClient();

        using var t1 = await client.TurnAsync("short-lived", ConversationKit.Body("one"));
        clock.Advance(TimeSpan.FromSeconds(40));
        using var t2 = await client.TurnAsync("short-lived", ConversationKit.Body("two"));
        clock.Advance(TimeSpan.FromSeconds(40)); // 80 s after the first turn, 40 after the last
        var (aliveStatus, alive) = await client.SendAsync(HttpMethod.Get, "short-lived");
        clock.Advance(TimeSpan.FromSeconds(21)); // 61 s after the last turn
        var (expiredStatus, expired) = await client.SendAsync(HttpMethod.Get, "short-lived");
        using var t3 = await client.TurnAsync("short-lived", ConversationKit.Body("three"));

        Assert.Equal(200, aliveStatus);
        Assert.Equal(clock.GetUtcNow().AddSeconds(-61).ToUnixTimeSeconds() + 60, alive.GetProperty("expires_at").GetInt64());
        Assert.Equal(404, expiredStatus);
        Assert.Equal("conversation_not_found", expired.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(["user: three"], _upstream.Received(2));
        Assert.Equal("new", t3.Header("x-gateway-conversation"));
    }

    [Fact]
    public async Task Over_MaxHistoryTokens_the_oldest_turns_go_first_and_the_system_prompt_stays()
    {
        // Estimates: the 40-character system prompt is 10 + 4 tokens; each turn (a 40-character question,
        // "answer N") is 12 + 2 * 4 = 20. 54 holds the system prompt and two turns, not three.
        await using var gateway = Gateway(s => s["Gateway:Conversations:MaxHistoryTokens"] = "54");
        var client = gateway.CreateClient();
        var system = new string('s', 40);
        string Question(int n) => n + new string('q', 39);

        using var t1 = await client.TurnAsync("long", ConversationKit.Body(Question(1), system));
        using var t2 = await client.TurnAsync("long", ConversationKit.Body(Question(2)));
        using var t3 = await client.TurnAsync("long", ConversationKit.Body(Question(3)));
        using var t4 = await client.TurnAsync("long", ConversationKit.Body(Question(4)));

        Assert.Equal([$"system: {system}", $"user: {Question(1)}", "assistant: answer 1", $"user: {Question(2)}", "assistant: answer 2", $"user: {Question(3)}"], _upstream.Received(2));
        Assert.Equal([$"system: {system}", $"user: {Question(2)}", "assistant: answer 2", $"user: {Question(3)}", "assistant: answer 3", $"user: {Question(4)}"], _upstream.Received(3));
        var (_, stored) = await client.SendAsync(HttpMethod.Get, "long");
        Assert.Equal(2, stored.GetProperty("turns").GetInt32());
        Assert.Equal($"system: {system}", ConversationKit.Lines(stored.GetProperty("messages"))[0]);
    }

    [Fact]
    public async Task MaxTurns_keeps_only_the_latest_turns()
    {
        await using var gateway = Gateway(s => s["Gateway:Conversations:MaxTurns"] = "1");
        var client = gateway.CreateClient();

        for (var i = 1; i <= 3; i++) (await client.TurnAsync("brief", ConversationKit.Body("q" + i))).Dispose();

        Assert.Equal(["user: q2", "assistant: answer 2", "user: q3"], _upstream.Received(2));
    }

    [Fact]
    public async Task A_key_can_not_read_delete_or_continue_another_keys_conversation()
    {
        var settings = Auth.AuthKit.WithKeys(StoreTestKit.Settings(_upstream, AdminEnv), new Auth.AuthKit.Key("team-a", "secret-key-a"), new Auth.AuthKit.Key("team-b", "secret-key-b"));
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using var a1 = await client.TurnAsync("shared-name", ConversationKit.Body("a's secret plan"), "secret-key-a");
        var (bGet, bGetBody) = await client.SendAsync(HttpMethod.Get, "shared-name", "secret-key-b");
        var (bDelete, _) = await client.SendAsync(HttpMethod.Delete, "shared-name", "secret-key-b");
        using var b1 = await client.TurnAsync("shared-name", ConversationKit.Body("b's question"), "secret-key-b");
        var (aGet, aConversation) = await client.SendAsync(HttpMethod.Get, "shared-name", "secret-key-a");
        var (bGetAfter, bConversation) = await client.SendAsync(HttpMethod.Get, "shared-name", "secret-key-b");
        var (anonymous, _) = await client.SendAsync(HttpMethod.Get, "shared-name");

        Assert.Equal(200, (int)a1.StatusCode);
        Assert.Equal(404, bGet);
        Assert.DoesNotContain("secret plan", bGetBody.ToString());
        Assert.Equal(404, bDelete);
        Assert.Equal("new", b1.Header("x-gateway-conversation"));
        Assert.Equal(["user: b's question"], _upstream.Received(1));
        Assert.Equal(200, aGet);
        Assert.Equal(["user: a's secret plan", "assistant: answer 1"], ConversationKit.Lines(aConversation.GetProperty("messages")));
        Assert.Equal(200, bGetAfter);
        Assert.Equal(["user: b's question", "assistant: answer 2"], ConversationKit.Lines(bConversation.GetProperty("messages")));
        Assert.Equal(401, anonymous);
    }

    [Fact]
    public async Task Delete_forgets_the_conversation_and_the_next_turn_starts_afresh()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var t1 = await client.TurnAsync("to-forget", ConversationKit.Body("remember this"));
        var (deleted, deletedBody) = await client.SendAsync(HttpMethod.Delete, "to-forget");
        var (afterGet, _) = await client.SendAsync(HttpMethod.Get, "to-forget");
        var (again, againBody) = await client.SendAsync(HttpMethod.Delete, "to-forget");
        using var t2 = await client.TurnAsync("to-forget", ConversationKit.Body("fresh start"));

        Assert.Equal(200, deleted);
        Assert.Equal("""{"id":"to-forget","object":"conversation.deleted","deleted":true}""", deletedBody.GetRawText());
        Assert.Equal(404, afterGet);
        Assert.Equal(404, again);
        Assert.Equal("invalid_request_error", againBody.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(["user: fresh start"], _upstream.Received(1));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("colon:inside")]
    [InlineData("slash/inside")]
    [InlineData("ünïcode")]
    public async Task A_bad_conversation_id_is_a_400_and_no_provider_is_called(string id)
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var response = await client.TurnAsync(id, ConversationKit.Body("hi"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("invalid_conversation_id", error.GetProperty("code").GetString());
        Assert.Equal("X-Conversation-Id", error.GetProperty("param").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_id_over_128_characters_or_sent_twice_is_refused_and_a_bad_id_in_the_path_too()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var tooLong = await client.TurnAsync(new string('a', 129), ConversationKit.Body("hi"));
        using var twice = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(ConversationKit.Body("hi"), System.Text.Encoding.UTF8, "application/json") };
        twice.Headers.TryAddWithoutValidation("X-Conversation-Id", ["one", "two"]);
        using var twiceResponse = await client.SendAsync(twice);
        var (pathStatus, _) = await client.SendAsync(HttpMethod.Get, "bad%20id");
        using var longest = await client.TurnAsync(new string('a', 128), ConversationKit.Body("hi"));

        Assert.Equal(400, (int)tooLong.StatusCode);
        Assert.Equal(400, (int)twiceResponse.StatusCode);
        Assert.Equal(400, pathStatus);
        Assert.Equal(200, (int)longest.StatusCode);
    }

    [Fact]
    public async Task A_failed_answer_or_a_broken_stream_leaves_the_history_as_it_was()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        using var ok = await client.TurnAsync("fragile", ConversationKit.Body("one"));

        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), 500);
        using var failed = await client.TurnAsync("fragile", ConversationKit.Body("lost question"));
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(role: "assistant", content: ""));
            await OpenAiWire.WriteEventAsync(http, OpenAiWire.Chunk(content: "half an ans"));
            http.Abort();
        };
        using var broken = await client.TurnAsync("fragile", ConversationKit.Body("cut question", stream: true));
        var read = await SseClient.ReadAllAsync(broken);
        var (_, conversation) = await client.SendAsync(HttpMethod.Get, "fragile");

        Assert.Equal(502, (int)failed.StatusCode);
        Assert.False(read.SawDone);
        Assert.Equal(["user: one", "assistant: answer 1"], ConversationKit.Lines(conversation.GetProperty("messages")));
        Assert.Equal(["user: one", "assistant: answer 1", "user: cut question"], _upstream.Received(2));
    }

    [Fact]
    public async Task A_cache_hit_is_a_complete_answer_and_its_turn_is_kept()
    {
        await using var gateway = Gateway();
        var client = gateway.CreateClient();
        var deterministic = ConversationKit.Body("What is 2+2?", extra: "\"temperature\":0");

        using var miss = await client.TurnAsync("first-asker", deterministic);
        using var hit = await client.TurnAsync("second-asker", deterministic);
        var (_, conversation) = await client.SendAsync(HttpMethod.Get, "second-asker");

        Assert.Equal("hit", hit.Header("x-gateway-cache"));
        Assert.Equal(1, _upstream.Calls);
        Assert.Equal(["user: What is 2+2?", "assistant: answer 1"], ConversationKit.Lines(conversation.GetProperty("messages")));
    }

    [Fact]
    public async Task Streamed_tool_calls_are_kept_and_the_tool_result_turn_follows_them()
    {
        _upstream.Handler = async (http, request) =>
        {
            if (_upstream.Calls > 1)
            {
                await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("It is sunny."));
                return;
            }
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":""}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}""");
            await OpenAiWire.WriteEventAsync(http, """{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""");
            await OpenAiWire.WriteEventAsync(http, "[DONE]");
        };
        await using var gateway = Gateway();
        var client = gateway.CreateClient();

        using var call = await client.TurnAsync("tools", ConversationKit.Body("weather in Oslo?", stream: true));
        await SseClient.ReadAllAsync(call);
        using var result = await client.TurnAsync("tools", """{"model":"test-model","messages":[{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}""");

        var sent = _upstream.Requests.ElementAt(1).Json.GetProperty("messages");
        Assert.Equal(3, sent.GetArrayLength());
        var assistant = sent[1];
        Assert.Equal("assistant", assistant.GetProperty("role").GetString());
        var toolCall = assistant.GetProperty("tool_calls")[0];
        Assert.Equal("call_1", toolCall.GetProperty("id").GetString());
        Assert.Equal("weather", toolCall.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"Oslo"}""", toolCall.GetProperty("function").GetProperty("arguments").GetString());
        Assert.Equal("tool", sent[2].GetProperty("role").GetString());
    }
}
