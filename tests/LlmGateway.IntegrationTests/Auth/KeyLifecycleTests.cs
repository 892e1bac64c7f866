using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>Virtual keys through the admin API: created, used, listed without secrets, revoked.</summary>
public sealed class KeyLifecycleTests : IAsyncLifetime
{
    private const string ConfiguredKey = "configured-secret-key-0123456789";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("ok")));
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Dictionary<string, string?> Settings() =>
        GatewayFactory.OpenAiSettings(_upstream.BaseUrl).WithKeys(new AuthKit.Key("team-config", ConfiguredKey, ["test-model"], Rpm: 5));

    private static async Task<JsonElement> CreateAsync(HttpClient admin, string body)
    {
        using var response = await admin.PostAsync("/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, text);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        return JsonDocument.Parse(text).RootElement;
    }

    [Fact]
    public async Task A_key_is_created_used_listed_without_its_secret_and_revoked()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        using var client = gateway.CreateClient();

        var created = await CreateAsync(admin, """{"id":"alice","models":["test-*"],"rpm":60,"tpm":100000,"dailyUsd":5,"monthlyUsd":50,"localOnly":false}""");
        var secret = created.GetProperty("key").GetString()!;
        Assert.Equal("alice", created.GetProperty("id").GetString());
        Assert.StartsWith("gw-", secret);
        Assert.Equal(46, secret.Length);
        Assert.Equal(60, created.GetProperty("rpm").GetInt32());
        Assert.Equal(5m, created.GetProperty("dailyUsd").GetDecimal());

        using (var used = await client.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.OK, used.StatusCode);
        }

        using (var list = await admin.GetAsync("/admin/keys"))
        {
            var text = await list.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, list.StatusCode);
            Assert.DoesNotContain(secret, text);
            Assert.DoesNotContain(secret[3..15], text);
            Assert.DoesNotContain(GatewayKeys.Sha256Hex(secret), text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(GatewayKeys.Sha256Hex(ConfiguredKey), text, StringComparison.OrdinalIgnoreCase);
            var data = JsonDocument.Parse(text).RootElement.GetProperty("data").EnumerateArray().ToList();
            var alice = Assert.Single(data, k => k.GetProperty("id").GetString() == "alice");
            Assert.Equal("admin", alice.GetProperty("source").GetString());
            Assert.Equal("test-*", alice.GetProperty("models")[0].GetString());
            Assert.False(alice.TryGetProperty("key", out _));
            var configured = Assert.Single(data, k => k.GetProperty("id").GetString() == "team-config");
            Assert.Equal("config", configured.GetProperty("source").GetString());
            Assert.Equal(5, configured.GetProperty("rpm").GetInt32());
        }

        using (var revoked = await admin.DeleteAsync("/admin/keys/alice"))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
            Assert.True(JsonDocument.Parse(await revoked.Content.ReadAsStringAsync()).RootElement.GetProperty("deleted").GetBoolean());
        }

        using (var refused = await client.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("invalid_api_key", (await AuthKit.ErrorAsync(refused)).GetProperty("code").GetString());
        }
        Assert.Equal(1, _upstream.Calls);

        using var again = await admin.DeleteAsync("/admin/keys/alice");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task A_virtual_keys_budget_is_listed_in_admin_budgets_and_the_budget_gauges_with_what_it_spent_and_goes_when_revoked()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        using var client = gateway.CreateClient();
        var secret = (await CreateAsync(admin, """{"id":"carol","dailyUsd":5,"monthlyUsd":50}""")).GetProperty("key").GetString()!;
        await CreateAsync(admin, """{"id":"no-limits"}""");

        using (var used = await client.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.OK, used.StatusCode);
        }
        // The budget is settled once the answer is on its way, so the client can read the answer first: wait
        // (at most 10 s, then fail) for the settlement, as an admin looking a moment later would see it.
        var settledBy = DateTime.UtcNow.AddSeconds(10);
        JsonElement budgets;
        List<JsonElement> carol;
        while (true)
        {
            budgets = await admin.GetFromJsonAsync<JsonElement>("/admin/budgets");
            carol = budgets.GetProperty("data").EnumerateArray().Where(b => b.GetProperty("scope").GetString() == "key:carol").ToList();
            if (carol.Count > 0 && carol.All(b => b.GetProperty("spent_usd").GetDecimal() > 0)) break;
            Assert.True(DateTime.UtcNow < settledBy, "carol's spend was not settled within 10 s: " + budgets);
            await Task.Delay(20);
        }

        Assert.Equal(["daily", "monthly"], carol.Select(b => b.GetProperty("window").GetString()).Order());
        Assert.Equal(5m, carol.Single(b => b.GetProperty("window").GetString() == "daily").GetProperty("limit_usd").GetDecimal());
        // The fake upstream reports 11 prompt and 7 completion tokens: 11 x 0.001 / 1000 + 7 x 0.002 / 1000.
        Assert.All(carol, b => Assert.Equal(0.000025m, b.GetProperty("spent_usd").GetDecimal()));
        Assert.DoesNotContain(budgets.GetProperty("data").EnumerateArray(), b => b.GetProperty("scope").GetString() == "key:no-limits");

        // Per-key series are for an authenticated scrape only (the admin key here).
        var anonymous = await LlmGateway.IntegrationTests.Telemetry.MetricsText.ScrapeAsync(client);
        Assert.Null(anonymous.ValueOrNull("llm_gateway_budget_limit_usd", ("scope", "key:carol"), ("window", "daily")));
        var metrics = await LlmGateway.IntegrationTests.Telemetry.MetricsText.ScrapeAsync(admin);
        Assert.Equal(5, metrics.Value("llm_gateway_budget_limit_usd", ("scope", "key:carol"), ("window", "daily")));
        Assert.Equal(50, metrics.Value("llm_gateway_budget_limit_usd", ("scope", "key:carol"), ("window", "monthly")));
        Assert.Equal(0.000025, metrics.Value("llm_gateway_budget_spent_usd", ("scope", "key:carol"), ("window", "daily")), 9);

        using (var revoked = await admin.DeleteAsync("/admin/keys/carol"))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        budgets = await admin.GetFromJsonAsync<JsonElement>("/admin/budgets");
        Assert.DoesNotContain(budgets.GetProperty("data").EnumerateArray(), b => b.GetProperty("scope").GetString() == "key:carol");
    }

    [Fact]
    public async Task A_key_created_with_no_body_gets_an_id_every_model_and_no_limits()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        using var response = await admin.PostAsync("/admin/keys", null);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.StartsWith("key-", created.GetProperty("id").GetString());
        Assert.Equal("*", created.GetProperty("models")[0].GetString());
        Assert.Equal(0, created.GetProperty("rpm").GetInt32());

        using var client = gateway.CreateClient();
        using var used = await client.SendChatAsync(AuthKit.ValidBody, bearer: created.GetProperty("key").GetString());
        Assert.Equal(HttpStatusCode.OK, used.StatusCode);
    }

    [Fact]
    public async Task Two_keys_never_share_a_secret()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        var secrets = new HashSet<string>();
        for (var i = 0; i < 20; i++)
        {
            Assert.True(secrets.Add((await CreateAsync(admin, "{}")).GetProperty("key").GetString()!));
        }
    }

    [Theory]
    [InlineData("{not json", "invalid_json")]
    [InlineData("""{"rmp":10}""", "invalid_json")]                // a typo must not make an unlimited key
    [InlineData("""{"rpm":"ten"}""", "invalid_json")]
    [InlineData("""{"rpm":1e400}""", "invalid_json")]
    [InlineData("""{"models":"gpt-4o"}""", "invalid_json")]
    [InlineData("""{"rpm":-1}""", null)]
    [InlineData("""{"dailyUsd":-0.5}""", null)]
    [InlineData("""{"models":[]}""", null)]
    [InlineData("""{"models":[""]}""", null)]
    [InlineData("""{"id":"has space"}""", null)]
    [InlineData("""{"id":"trailing-newline\n"}""", null)]
    [InlineData("""{"id":"-starts-with-dash"}""", null)]
    [InlineData("[]", "invalid_json")]
    [InlineData("null", "invalid_json")]
    public async Task A_bad_key_request_is_a_400_and_creates_nothing(string body, string? code)
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        using var response = await admin.PostAsync("/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());

        using var list = await admin.GetAsync("/admin/keys");
        var ids = JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement.GetProperty("data").EnumerateArray().Select(k => k.GetProperty("id").GetString());
        Assert.Equal(["team-config"], ids);
    }

    [Fact]
    public async Task Ids_are_unique_and_configured_keys_cannot_be_replaced_or_revoked_through_the_api()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var admin = gateway.AdminClient();
        await CreateAsync(admin, """{"id":"bob"}""");

        using var duplicate = await admin.PostAsync("/admin/keys", new StringContent("""{"id":"bob"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        using var shadow = await admin.PostAsync("/admin/keys", new StringContent("""{"id":"team-config"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, shadow.StatusCode);
        using var revokeConfigured = await admin.DeleteAsync("/admin/keys/team-config");
        Assert.Equal(HttpStatusCode.Conflict, revokeConfigured.StatusCode);
        Assert.Equal("key_exists", (await AuthKit.ErrorAsync(revokeConfigured)).GetProperty("code").GetString());

        using var client = gateway.CreateClient();
        using var stillWorks = await client.SendChatAsync(AuthKit.ValidBody, bearer: ConfiguredKey);
        Assert.Equal(HttpStatusCode.OK, stillWorks.StatusCode);
    }

    [Fact]
    public async Task The_key_endpoints_need_the_admin_key_and_a_gateway_key_is_not_one()
    {
        await using var gateway = new GatewayFactory(Settings());
        using var anonymous = gateway.CreateClient();
        using var withGatewayKey = gateway.AdminClient(ConfiguredKey);

        foreach (var client in new[] { anonymous, withGatewayKey })
        {
            using var post = await client.PostAsync("/admin/keys", new StringContent("{}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
            using var get = await client.GetAsync("/admin/keys");
            Assert.Equal(HttpStatusCode.Unauthorized, get.StatusCode);
            using var delete = await client.DeleteAsync("/admin/keys/team-config");
            Assert.Equal(HttpStatusCode.Unauthorized, delete.StatusCode);
        }
    }

    [Fact]
    public async Task Without_an_admin_key_the_key_endpoints_are_off()
    {
        var settings = Settings();
        settings["Gateway:Auth:AdminKeyEnv"] = "AUTH_TESTS_UNSET_ADMIN_KEY";
        await using var gateway = new GatewayFactory(settings);
        using var client = gateway.AdminClient("");
        using var post = await client.PostAsync("/admin/keys", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        using var get = await client.GetAsync("/admin/keys");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task A_key_revoked_on_one_instance_stops_working_on_another_once_its_cache_expires()
    {
        // Two gateways sharing one key store, as two instances share Redis; one clock for both.
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var store = new StoreKeyStore(new MemoryStore(new StoreOptions(), clock));
        void Shared(IServiceCollection services)
        {
            services.RemoveAll<IKeyStore>();
            services.AddSingleton<IKeyStore>(store);
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(clock);
        }
        await using var first = new GatewayFactory(Settings()) { TestServices = Shared };
        await using var second = new GatewayFactory(Settings()) { TestServices = Shared };
        using var firstAdmin = first.AdminClient();
        using var firstClient = first.CreateClient();
        using var secondClient = second.CreateClient();

        var secret = (await CreateAsync(firstAdmin, """{"id":"carol"}""")).GetProperty("key").GetString()!;
        using (var seen = await secondClient.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.OK, seen.StatusCode);
        }

        using (var revoked = await firstAdmin.DeleteAsync("/admin/keys/carol"))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }
        using (var onFirst = await firstClient.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, onFirst.StatusCode);
        }

        // The second instance trusts its cached lookup for at most KeyAuthenticator.CacheTtl: just
        // before that it still does (so this test does exercise the expiry), right after it does not.
        clock.Advance(KeyAuthenticator.CacheTtl - TimeSpan.FromMilliseconds(1));
        using (var cached = await secondClient.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.OK, cached.StatusCode);
        }
        clock.Advance(TimeSpan.FromMilliseconds(1));
        using (var onSecond = await secondClient.SendChatAsync(AuthKit.ValidBody, bearer: secret))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, onSecond.StatusCode);
        }
    }
}
