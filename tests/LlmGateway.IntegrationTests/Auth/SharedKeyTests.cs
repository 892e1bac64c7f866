using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>
/// Virtual keys and their limits on a real Redis shared by two gateway instances: what one instance
/// creates, revokes or counts, the other sees. Both instances run on one manual clock, so rate limits
/// never refill behind the test's back and the cache window is crossed exactly. Every request costs
/// exactly $0.10 (input free, $1 per 1k output tokens, 100 output tokens). The outage test stops a Redis of its own.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class SharedKeyTests(RedisServer redis) : IAsyncLifetime
{
    private const string AdminEnv = "LLMGW_TEST_ADMIN_KEY_SHARED_KEYS";
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private readonly string _prefix = $"keys-{Guid.NewGuid():N}:";
    // Real time, frozen: budget counters on Redis expire at the end of their window as the clock tells it.
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok", completion: 100)));
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private GatewayFactory Instance(string? redisConnection = null, Action<Dictionary<string, string?>>? configure = null)
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv, redisConnection ?? redis.ConnectionString, _prefix);
        settings["Gateway:Auth:Mode"] = "keys";
        settings["Gateway:Models:test-model:CostPer1kInput"] = "0";
        settings["Gateway:Models:test-model:CostPer1kOutput"] = "1";
        configure?.Invoke(settings);
        return new GatewayFactory(settings)
        {
            TestServices = services =>
            {
                services.RemoveAll<TimeProvider>();
                services.AddSingleton<TimeProvider>(_clock);
            },
        };
    }

    private const string Body = """{"model":"test-model","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}""";

    private async Task<string> CreateKeyAsync(HttpClient client, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/keys") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("key").GetString()!;
    }

    private static async Task<(HttpStatusCode Status, JsonElement? Error)> ChatAsync(HttpClient client, string key)
    {
        using var response = await client.SendChatAsync(Body, bearer: key);
        if (response.IsSuccessStatusCode) return (response.StatusCode, null);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").Clone();
        return (response.StatusCode, error);
    }

    [Fact]
    public async Task A_key_created_on_one_instance_works_on_the_other_until_revoked_there_and_its_cache_expires()
    {
        await using var first = Instance();
        await using var second = Instance();
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();

        var secret = await CreateKeyAsync(a, """{"id":"shared-carol"}""");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(b, secret)).Status);
        var listed = await b.AdminAsync(HttpMethod.Get, "/admin/keys", _adminKey);
        Assert.Contains(listed.GetProperty("data").EnumerateArray(), k => k.GetProperty("id").GetString() == "shared-carol");

        await a.AdminAsync(HttpMethod.Delete, "/admin/keys/shared-carol", _adminKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ChatAsync(a, secret)).Status);

        // The second instance trusts its cached lookup for at most KeyAuthenticator.CacheTtl.
        _clock.Advance(KeyAuthenticator.CacheTtl - TimeSpan.FromMilliseconds(1));
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(b, secret)).Status);
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        var (status, error) = await ChatAsync(b, secret);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("invalid_api_key", error!.Value.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_keys_requests_per_minute_are_counted_over_both_instances_together()
    {
        await using var first = Instance();
        await using var second = Instance();
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();
        var secret = await CreateKeyAsync(a, """{"id":"shared-rpm","rpm":3}""");

        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(a, secret)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(b, secret)).Status);
        using (var third = await a.SendChatAsync(Body, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.OK, third.StatusCode);
            Assert.Equal("0", third.Header(RateLimitHeaders.RemainingRequests));
        }

        using var refused = await b.SendChatAsync(Body, bearer: secret);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(3, _upstream.Calls);

        // A minute later the key has its whole allowance again, on either instance.
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(b, secret)).Status);
    }

    [Fact]
    public async Task A_virtual_key_with_a_daily_budget_is_refused_once_it_is_spent_on_any_instance()
    {
        await using var first = Instance();
        await using var second = Instance();
        var a = await first.ConnectedClientAsync();
        var b = await second.ConnectedClientAsync();
        var secret = await CreateKeyAsync(a, """{"id":"shared-budget","dailyUsd":0.25}""");

        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(a, secret)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(b, secret)).Status);
        var (status, error) = await ChatAsync(b, secret);

        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("insufficient_quota", error!.Value.GetProperty("type").GetString());
        Assert.Equal("budget_exceeded", error.Value.GetProperty("code").GetString());
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task While_Redis_is_down_virtual_keys_are_refused_with_503_and_rate_limits_are_not_enforced()
    {
        await using var ownRedis = new RedisServer();
        await ownRedis.InitializeAsync();
        const string configuredSecret = "configured-key-for-the-outage-test-0123";
        await using var gateway = Instance(ownRedis.ConnectionString, s =>
        {
            s["Gateway:Auth:Keys:0:Id"] = "configured";
            s["Gateway:Auth:Keys:0:Sha256"] = GatewayKeys.Sha256Hex(configuredSecret);
            s["Gateway:Auth:Keys:0:Rpm"] = "1";
        });
        var client = await gateway.ConnectedClientAsync();
        var secret = await CreateKeyAsync(client, """{"id":"outage-key"}""");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, secret)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, configuredSecret)).Status);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await ChatAsync(client, configuredSecret)).Status);

        await ownRedis.StopAsync(keepData: false);
        _clock.Advance(KeyAuthenticator.CacheTtl);

        // Fail closed for keys that can't be checked; configured keys still work, and their limits fail open.
        var (status, error) = await ChatAsync(client, secret);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("api_error", error!.Value.GetProperty("type").GetString());
        Assert.Equal(AuthErrors.StoreUnavailable, error.Value.GetProperty("code").GetString());
        Assert.DoesNotContain(secret, error.Value.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, configuredSecret)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(client, configuredSecret)).Status);
    }
}
