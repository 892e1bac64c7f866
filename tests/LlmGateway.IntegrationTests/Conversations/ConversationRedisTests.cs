using System.Net;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;

namespace LlmGateway.IntegrationTests.Conversations;

/// <summary>Conversations on a real Redis: shared by gateway instances, and what happens while it is down.</summary>
[Collection(RedisCollection.Name)]
public sealed class ConversationRedisTests(RedisServer sharedRedis) : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_CONVERSATIONS_REDIS";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        StoreTestKit.AdminKey(AdminEnv);
        _upstream = await FakeUpstream.StartAsync();
        _upstream.Handler = StoreTestKit.NumberedAnswers(_upstream);
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Gateway(string redis, string prefix)
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv, redis, prefix);
        settings["Gateway:Store:BreakSeconds"] = "1";
        return new GatewayFactory(settings);
    }

    [Fact]
    public async Task Two_instances_on_one_Redis_continue_read_and_delete_the_same_conversation()
    {
        var prefix = $"conv-{Guid.NewGuid():N}:";
        await using var first = Gateway(sharedRedis.ConnectionString, prefix);
        await using var second = Gateway(sharedRedis.ConnectionString, prefix);
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();

        using var t1 = await a.TurnAsync("across", ConversationKit.Body("one", system: "Be brief."));
        using var t2 = await b.TurnAsync("across", ConversationKit.Body("two", stream: true));
        await SseClient.ReadAllAsync(t2);
        var (getStatus, conversation) = await a.SendAsync(HttpMethod.Get, "across");
        var ttl = await sharedRedis.CommandAsync($"TTL {prefix}conv::across");
        var (deleteStatus, _) = await b.SendAsync(HttpMethod.Delete, "across");
        var (afterStatus, _) = await a.SendAsync(HttpMethod.Get, "across");

        Assert.Equal(["system: Be brief.", "user: one", "assistant: answer 1", "user: two"], _upstream.Received(1));
        Assert.Equal(200, getStatus);
        Assert.Equal(["system: Be brief.", "user: one", "assistant: answer 1", "user: two", "assistant: answer 2"],
            ConversationKit.Lines(conversation.GetProperty("messages")));
        Assert.InRange(int.Parse(ttl!.TrimStart(':'), System.Globalization.CultureInfo.InvariantCulture), 86_000, 86_400);
        Assert.Equal(200, deleteStatus);
        Assert.Equal(404, afterStatus);
    }

    [Fact]
    public async Task Turns_racing_on_one_conversation_from_two_instances_are_all_kept()
    {
        var prefix = $"conv-race-{Guid.NewGuid():N}:";
        await using var first = Gateway(sharedRedis.ConnectionString, prefix);
        await using var second = Gateway(sharedRedis.ConnectionString, prefix);
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();

        // Each instance reads the history, asks the upstream and writes the history back: without a
        // compare-and-set, two writers that read the same history drop each other's turn.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            using var response = await (i % 2 == 0 ? a : b).TurnAsync("race", ConversationKit.Body($"q{i}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }));
        var (status, conversation) = await a.SendAsync(HttpMethod.Get, "race");

        Assert.Equal(200, status);
        var users = ConversationKit.Lines(conversation.GetProperty("messages")).Where(l => l.StartsWith("user: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, 16).Select(i => $"user: q{i}").Order(), users.Order());
        Assert.Equal(16, conversation.GetProperty("turns").GetInt32());
    }

    [Fact]
    public async Task With_Redis_down_the_request_runs_without_history_says_so_and_the_history_survives()
    {
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        await using var gateway = Gateway(redis.ConnectionString, $"conv-down-{Guid.NewGuid():N}:");
        var client = await gateway.ConnectedClientAsync();
        using var before = await client.TurnAsync("outage", ConversationKit.Body("before"));

        await redis.StopAsync(keepData: true);
        using var during = await client.TurnAsync("outage", ConversationKit.Body("during"));
        var (getStatus, getBody) = await client.SendAsync(HttpMethod.Get, "outage");
        await redis.StartAsync();
        await StoreTestKit.EventuallyAsync(async () => (await client.SendAsync(HttpMethod.Get, "outage")).Status == 200, "the store back", seconds: 30);
        using var after = await client.TurnAsync("outage", ConversationKit.Body("after"));

        Assert.Equal(200, (int)during.StatusCode);
        Assert.Equal("unavailable", during.Header("x-gateway-conversation"));
        Assert.Equal(["user: during"], _upstream.Received(1));
        Assert.Equal(503, getStatus);
        Assert.Equal("store_unavailable", getBody.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("continued", after.Header("x-gateway-conversation"));
        Assert.Equal(["user: before", "assistant: answer 1", "user: after"], _upstream.Received(2));
    }
}
