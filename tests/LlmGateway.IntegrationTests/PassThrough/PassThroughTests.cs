using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using LlmGateway.IntegrationTests.Telemetry;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.IntegrationTests.PassThrough;

/// <summary>
/// The endpoints the gateway doesn't translate, forwarded by YARP to a fake OpenAI on loopback: bytes
/// unchanged both ways, credentials swapped, streams and big uploads unbuffered, every call recorded.
/// </summary>
public sealed class PassThroughTests : IAsyncLifetime
{
    private const string ProviderKeyEnv = "PASSTHROUGH_TESTS_PROVIDER_KEY";
    private const string ProviderKey = "sk-provider-secret-passthrough-0123456789";
    private const string AdminEnv = "PASSTHROUGH_TESTS_ADMIN_KEY";
    private readonly string _adminKey = StoreTestKit.AdminKey(AdminEnv);
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable(ProviderKeyEnv, ProviderKey);
        _upstream = await FakeUpstream.StartAsync();
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private Dictionary<string, string?> Settings(string? baseUrl = null, bool passThrough = true)
    {
        var settings = StoreTestKit.Settings(_upstream, AdminEnv);
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(baseUrl ?? _upstream.BaseUrl, keyEnv: ProviderKeyEnv)) settings[k] = v;
        if (passThrough) settings["Gateway:PassThrough:Provider"] = "up";
        return settings;
    }

    private const string ModerationAnswer =
        """{"id":"modr-1","model":"omni-moderation-2024-09-26","results":[{"flagged":false,"categories":{"hate":false},"category_scores":{"hate":0.0001}}]}""";

    [Fact]
    public async Task A_moderations_call_reaches_the_provider_under_its_base_url_and_both_bodies_pass_unchanged()
    {
        _upstream.Handler = async (http, _) =>
        {
            http.Response.Headers["x-request-id"] = "req_upstream_1";
            http.Response.Headers["x-custom"] = "kept";
            await OpenAiWire.WriteJsonAsync(http, ModerationAnswer);
        };
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        const string body = """{"model":"omni-moderation-latest","input":"I want to pet a cat"}""";

        using var response = await client.PostAsync("/v1/moderations?trace=1&x=a%2Fb", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ModerationAnswer, await response.Content.ReadAsStringAsync());
        Assert.Equal("kept", AuthKit.Header(response, "x-custom"));
        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
        Assert.NotEqual("req_upstream_1", AuthKit.Header(response, "x-request-id"));
        Assert.Equal("req_upstream_1", AuthKit.Header(response, "x-gateway-upstream-request-id"));
        Assert.Equal("up", AuthKit.Header(response, "x-gateway-provider"));

        var received = Assert.Single(_upstream.Requests);
        Assert.Equal("POST", received.Method);
        Assert.Equal("/v1/moderations", received.Path);
        Assert.Equal("?trace=1&x=a%2Fb", received.Query);
        Assert.Equal(body, Encoding.UTF8.GetString(received.Body));
        Assert.StartsWith("application/json", received.Header("content-type"));
    }

    /// <summary>
    /// A path the gateway forwards, for answers shaped like the Responses API's. /v1/responses itself is
    /// the gateway's own now (Responses/: translated and routed like chat); the usage scan reads any
    /// forwarded answer the same way, whatever its path.
    /// </summary>
    private const string ForwardedPath = "/v1/completions";

    [Fact]
    public async Task A_streamed_responses_answer_reaches_the_client_event_by_event()
    {
        var clientSawFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await OpenAiWire.WriteEventAsync(http, """{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}""", "response.created");
            // The second event is only written once the client has read the first: a buffering proxy would hang here.
            await clientSawFirst.Task.WaitAsync(TimeSpan.FromSeconds(10), http.RequestAborted);
            await OpenAiWire.WriteEventAsync(http, """{"type":"response.output_text.delta","delta":"Hello"}""", "response.output_text.delta");
            await OpenAiWire.WriteEventAsync(http, """{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}}""", "response.completed");
        };
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, ForwardedPath)
        {
            Content = new StringContent("""{"model":"upstream-model","input":"hi","stream":true}""", Encoding.UTF8, "application/json"),
        };

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var result = await SseClient.ReadAllAsync(response, data =>
        {
            if (data.Contains("response.created", StringComparison.Ordinal)) clientSawFirst.TrySetResult();
        });

        Assert.Null(result.Error);
        Assert.Equal(3, result.Events.Count);
        Assert.Contains("response.created", result.Events[0]);
        Assert.Contains("\"delta\":\"Hello\"", result.Events[1]);
        Assert.Contains("response.completed", result.Events[2]);
    }

    [Fact]
    public async Task An_8_MB_multipart_upload_to_files_arrives_intact_through_a_real_kestrel_gateway()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, """{"id":"file-1","object":"file","bytes":8388608,"filename":"train.jsonl","purpose":"fine-tune"}""");
        var settings = Settings();
        // Chat bodies stay limited to 4 MB (Kestrel's limit is twice that); the upload is over both.
        settings["Gateway:Limits:MaxRequestBytes"] = (4 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var gateway = new GatewayFactory(settings);
        gateway.StartOnLoopback();
        using var client = gateway.CreateClient();

        var file = new byte[8 * 1024 * 1024];
        new Random(20250310).NextBytes(file);
        using var multipart = new MultipartFormDataContent("passthrough-test-boundary");
        multipart.Add(new StringContent("fine-tune"), "purpose");
        multipart.Add(new ByteArrayContent(file) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } }, "file", "train.jsonl");
        var sent = await multipart.ReadAsByteArrayAsync();
        Assert.True(sent.Length > 8 * 1024 * 1024);
        var content = new ByteArrayContent(sent);
        content.Headers.ContentType = multipart.Headers.ContentType;

        using var response = await client.PostAsync("/v1/files", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(_upstream.Requests);
        Assert.Equal("/v1/files", received.Path);
        Assert.Equal(multipart.Headers.ContentType!.ToString(), received.Header("content-type"));
        Assert.Equal(Convert.ToHexString(SHA256.HashData(sent)), Convert.ToHexString(SHA256.HashData(received.Body)));
    }

    [Fact]
    public async Task A_body_over_the_pass_through_limit_is_refused_with_413_before_it_is_forwarded()
    {
        var settings = Settings();
        settings["Gateway:PassThrough:MaxRequestBytes"] = "1000";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/files", new ByteArrayContent(new byte[5000]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request_too_large", (await AuthKit.ErrorAsync(response)).GetProperty("code").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task The_provider_key_replaces_every_client_credential_and_a_call_without_a_gateway_key_is_401_and_never_forwarded()
    {
        const string gatewayKey = "gw-passthrough-client-key-0123456789";
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, ModerationAnswer);
        await using var gateway = new GatewayFactory(Settings().WithKeys(new AuthKit.Key("team-a", gatewayKey)));
        var client = gateway.CreateClient();

        using (var anonymous = await client.PostAsync("/v1/moderations", new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("authentication_error", (await AuthKit.ErrorAsync(anonymous)).GetProperty("type").GetString());
        }
        Assert.Equal(0, _upstream.Calls);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/moderations") { Content = new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", gatewayKey);
        request.Headers.Add("api-key", gatewayKey);
        request.Headers.Add("x-api-key", gatewayKey);
        request.Headers.Add("Cookie", "session=client-cookie");
        request.Headers.Add("OpenAI-Organization", "org-client");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = Assert.Single(_upstream.Requests);
        Assert.Equal("Bearer " + ProviderKey, received.Header("authorization"));
        Assert.Null(received.Header("api-key"));
        Assert.Null(received.Header("x-api-key"));
        Assert.Null(received.Header("cookie"));
        Assert.Null(received.Header("openai-organization"));
        Assert.DoesNotContain(received.Headers.Values, v => v.Contains(gatewayKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_the_provider_key_pass_through_answers_503_and_forwards_nothing()
    {
        var settings = Settings();
        settings["Gateway:Providers:up:ApiKeyEnv"] = "PASSTHROUGH_TESTS_UNSET_KEY";
        Environment.SetEnvironmentVariable("PASSTHROUGH_TESTS_UNSET_KEY", null);
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/moderations", new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("provider_not_configured", error.GetProperty("code").GetString());
        Assert.Contains("PASSTHROUGH_TESTS_UNSET_KEY", error.GetProperty("message").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_unreachable_provider_is_an_openai_shaped_502()
    {
        // A port that was just listened on and closed: connecting is refused at once.
        var down = await FakeUpstream.StartAsync();
        var downUrl = down.BaseUrl;
        await down.DisposeAsync();
        await using var gateway = new GatewayFactory(Settings(baseUrl: downUrl));
        var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/images/generations", new StringContent("""{"prompt":"a cat"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
    }

    [Fact]
    public async Task An_upstream_error_body_reaches_the_client_unchanged()
    {
        var upstreamError = OpenAiWire.Error("Invalid file format.", param: "file", code: "invalid_file");
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, upstreamError, 400);
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/audio/transcriptions", new StringContent("not audio"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(upstreamError, await response.Content.ReadAsStringAsync());
        Assert.Equal("/v1/audio/transcriptions", Assert.Single(_upstream.Requests).Path);
    }

    [Fact]
    public async Task A_json_answer_with_usage_is_recorded_with_its_model_tokens_and_cost_in_the_ledger_and_metrics()
    {
        // Dated model names are how OpenAI answers for an alias: it is priced as the configured test-model.
        _upstream.Handler = (http, request) => OpenAiWire.WriteJsonAsync(http, request.Path == "/v1/moderations" ? ModerationAnswer :
            """{"id":"resp_1","object":"response","model":"upstream-model-2025-01-31","output":[],"usage":{"input_tokens":1000,"input_tokens_details":{"cached_tokens":0},"output_tokens":500,"total_tokens":1500}}""");
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();

        using (var response = await client.PostAsync(ForwardedPath, new StringContent("""{"model":"upstream-model","input":"hi"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        using (var moderation = await client.PostAsync("/v1/moderations", new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, moderation.StatusCode);
        }

        JsonElement byModel = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            byModel = await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=model", _adminKey);
            return (byModel.GetProperty("total").GetProperty("requests").GetInt32() == 2, byModel.ToString());
        }, "both pass-through calls in the ledger");
        var groups = byModel.GetProperty("data").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        var model = groups["test-model"];
        Assert.Equal(1000, model.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(500, model.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(0.002m, model.GetProperty("cost_usd").GetDecimal()); // 1000 x 0.001/1k + 500 x 0.002/1k
        // The moderation answer has no usage; its model is recorded as the provider named it.
        Assert.Equal(1, groups["omni-moderation-2024-09-26"].GetProperty("requests").GetInt32());

        var byTask = (await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=task_type", _adminKey)).GetProperty("data").EnumerateArray()
            .ToDictionary(g => g.GetProperty("group").GetString()!);
        Assert.Equal(1, byTask["passthrough:completions"].GetProperty("requests").GetInt32());
        Assert.Equal(1, byTask["passthrough:moderations"].GetProperty("requests").GetInt32());

        var metrics = await MetricsText.ScrapeAsync(client);
        double Value(string name, params (string Key, string Value)[] labels) => metrics.Samples
            .Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);
        Assert.Equal(1, Value("llm_gateway_requests_total", ("model", "test-model"), ("provider", "up"), ("status", "200")));
        Assert.Equal(1, Value("llm_gateway_requests_total", ("model", "other"), ("provider", "up"), ("status", "200")));
        Assert.Equal(1000, Value("llm_gateway_tokens_total", ("model", "test-model"), ("direction", "input")));
        Assert.Equal(500, Value("llm_gateway_tokens_total", ("model", "test-model"), ("direction", "output")));
    }

    private const string PricedAnswer =
        """{"id":"resp_1","object":"response","model":"upstream-model","output":[],"usage":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500}}""";

    [Fact]
    public async Task Pass_through_spend_counts_against_budgets_and_a_spent_budget_refuses_the_next_call()
    {
        // Each answer costs 1000 x 0.001 / 1000 + 500 x 0.002 / 1000 = $0.002. Its cost shows only in the
        // answer, so the call that crosses the $0.003 limit still runs; the one after it is refused.
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, PricedAnswer);
        var settings = Settings();
        settings["Gateway:Budgets:Providers:up:DailyUsd"] = "0.003";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using var first = await client.PostAsync(ForwardedPath, new StringContent("""{"model":"upstream-model","input":"a"}""", Encoding.UTF8, "application/json"));
        using var second = await client.PostAsync(ForwardedPath, new StringContent("""{"model":"upstream-model","input":"b"}""", Encoding.UTF8, "application/json"));
        using var third = await client.PostAsync(ForwardedPath, new StringContent("""{"model":"upstream-model","input":"c"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("budget_exceeded", (await AuthKit.ErrorAsync(third)).GetProperty("code").GetString());
        Assert.Equal(2, _upstream.Calls);
        var budgets = await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey);
        Assert.Contains("0.004", budgets.ToString());
    }

    /// <summary>
    /// A Responses API stream as OpenAI writes it, one event per write: created, deltas, and the usage
    /// only in the last event, nested in its response. 1000 + 500 tokens of upstream-model = $0.002.
    /// </summary>
    private static readonly string[] s_pricedStream =
    [
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_s\",\"object\":\"response\",\"model\":\"upstream-model\",\"status\":\"in_progress\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" there\"}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{\"id\":\"resp_s\",\"object\":\"response\",\"model\":\"upstream-model\",\"status\":\"completed\"," +
        "\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello there\"}]}]," +
        "\"usage\":{\"input_tokens\":1000,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":500,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":1500}}}\n\n",
    ];

    [Fact]
    public async Task A_streamed_responses_answer_is_recorded_with_its_tokens_and_cost_and_charged_to_the_providers_budget()
    {
        // Two streams at $0.002 each cross the $0.003 provider budget; the call after them is refused.
        // The first stream's later events are written only once the client has read the first one.
        var clientSawFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            for (var i = 0; i < s_pricedStream.Length; i++)
            {
                if (i == 1) await clientSawFirst.Task.WaitAsync(TimeSpan.FromSeconds(10), http.RequestAborted);
                await http.Response.WriteAsync(s_pricedStream[i], http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
            }
        };
        var settings = Settings();
        settings["Gateway:Budgets:Providers:up:DailyUsd"] = "0.003";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();
        HttpRequestMessage Streamed(string input) => new(HttpMethod.Post, ForwardedPath)
        {
            Content = new StringContent("{\"model\":\"upstream-model\",\"input\":\"" + input + "\",\"stream\":true}", Encoding.UTF8, "application/json"),
        };

        using (var request = Streamed("a"))
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var result = await SseClient.ReadAllAsync(response, data =>
            {
                if (data.Contains("response.created", StringComparison.Ordinal)) clientSawFirst.TrySetResult();
            });
            Assert.Null(result.Error);
            Assert.Equal(4, result.Events.Count);
        }
        using (var request = Streamed("b"))
        using (var response = await client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(string.Concat(s_pricedStream), await response.Content.ReadAsStringAsync());
        }
        using (var request = Streamed("c"))
        using (var refused = await client.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("budget_exceeded", (await AuthKit.ErrorAsync(refused)).GetProperty("code").GetString());
        }
        Assert.Equal(2, _upstream.Calls);

        JsonElement byModel = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            byModel = await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=model", _adminKey);
            return (byModel.GetProperty("total").GetProperty("requests").GetInt32() == 3, byModel.ToString());
        }, "both streams and the refused call in the ledger");
        var model = byModel.GetProperty("data").EnumerateArray().Single(g => g.GetProperty("group").GetString() == "test-model");
        Assert.Equal(2, model.GetProperty("requests").GetInt32());
        Assert.Equal(2000, model.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(1000, model.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(0.004m, model.GetProperty("cost_usd").GetDecimal());
        Assert.Contains("0.004", (await client.AdminAsync(HttpMethod.Get, "/admin/budgets", _adminKey)).ToString());

        var metrics = await MetricsText.ScrapeAsync(client);
        double Value(string name, params (string Key, string Value)[] labels) => metrics.Samples
            .Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);
        Assert.Equal(2000, Value("llm_gateway_tokens_total", ("model", "test-model"), ("direction", "input")));
        Assert.Equal(1000, Value("llm_gateway_tokens_total", ("model", "test-model"), ("direction", "output")));
        // Streams get a time to first byte, like chat streams' time to first token.
        Assert.Equal(2, Value("llm_gateway_time_to_first_token_seconds_count", ("model", "test-model")));
    }

    [Fact]
    public async Task A_stream_that_breaks_before_its_usage_event_is_recorded_without_usage_and_charged_nothing()
    {
        _upstream.Handler = async (http, _) =>
        {
            OpenAiWire.StartSse(http);
            await http.Response.WriteAsync(s_pricedStream[0], http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
            http.Abort();
        };
        var settings = Settings();
        settings["Gateway:Budgets:Providers:up:DailyUsd"] = "0.003";
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using (var request = new HttpRequestMessage(HttpMethod.Post, ForwardedPath) { Content = new StringContent("""{"model":"upstream-model","input":"x","stream":true}""", Encoding.UTF8, "application/json") })
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            // Whether the first event still reaches the client depends on when the abort overtakes it; the usage event never does.
            var result = await SseClient.ReadAllAsync(response);
            Assert.DoesNotContain(result.Events, e => e.Contains("response.completed", StringComparison.Ordinal));
        }

        JsonElement byModel = default;
        await StoreTestKit.EventuallyAsync(async () =>
        {
            byModel = await client.AdminAsync(HttpMethod.Get, "/admin/usage?groupBy=model", _adminKey);
            return (byModel.GetProperty("total").GetProperty("requests").GetInt32() == 1, byModel.ToString());
        }, "the broken stream in the ledger");
        var group = Assert.Single(byModel.GetProperty("data").EnumerateArray());
        Assert.Equal("passthrough", group.GetProperty("group").GetString());
        Assert.Equal(0, group.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0m, group.GetProperty("cost_usd").GetDecimal());
    }

    [Fact]
    public async Task A_keys_rpm_limit_holds_for_pass_through_calls()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, ModerationAnswer);
        const string gatewayKey = "gw-passthrough-rpm-key-0123456789";
        await using var gateway = new GatewayFactory(Settings().WithKeys(new AuthKit.Key("team-rpm", gatewayKey, Rpm: 2)));
        var client = gateway.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", gatewayKey);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await client.PostAsync("/v1/moderations", new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json"));
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task With_pass_through_off_those_paths_answer_the_openai_shaped_404_and_nothing_is_forwarded()
    {
        await using var gateway = new GatewayFactory(Settings(passThrough: false));
        var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/moderations", new StringContent("""{"input":"x"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", (await AuthKit.ErrorAsync(response)).GetProperty("code").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task Chat_completions_and_models_keep_their_own_handlers_and_are_never_forwarded()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("translated"));
        await using var gateway = new GatewayFactory(Settings());
        var client = gateway.CreateClient();

        // POST chat goes through the chat pipeline: the upstream sees the model renamed, which forwarding would not do.
        var completion = await gateway.ChatClient("test-model").CompleteChatAsync([new OpenAI.Chat.UserChatMessage("hi")]);
        Assert.Equal("translated", completion.Value.Content[0].Text);
        Assert.Equal("upstream-model", Assert.Single(_upstream.Requests).Json.GetProperty("model").GetString());

        using (var models = await client.GetAsync("/v1/models"))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
            Assert.Contains("test-model", await models.Content.ReadAsStringAsync());
        }
        // Methods and paths the gateway's own routes don't map are not forwarded either (GET of an
        // unknown conversation is the conversations endpoint's own 404).
        foreach (var (path, code) in new[] { ("/v1/chat/completions", "not_found"), ("/v1/embeddings/x", "not_found"), ("/v1/conversations/c1", "conversation_not_found"), ("/v1/conversations/c1/x", "not_found"), ("/v1/batch/chat/completions", "not_found"), ("/v1", "not_found") })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal(code, (await AuthKit.ErrorAsync(response)).GetProperty("code").GetString());
        }
        Assert.Equal(1, _upstream.Calls);
    }
}
