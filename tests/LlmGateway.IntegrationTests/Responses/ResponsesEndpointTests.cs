using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Responses;

/// <summary>
/// POST/GET/DELETE /v1/responses against real fakes of every provider type on loopback: the Responses
/// API translated to each wire format and back, streamed and not, stored per key.
/// </summary>
public sealed class ResponsesEndpointTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;
    private Scenario _scenario = Scenario.Text;

    /// <summary>Completed once the client has the first words of a stream that is to break.</summary>
    private readonly TaskCompletionSource _sawFirstWords = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => _scenario, () => _sawFirstWords.Task));
        _gateway = new GatewayFactory(ProviderFakes.Settings(_upstream.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private static HttpRequestMessage Post(string body, string? bearer = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return request;
    }

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    /// <summary>The Responses events of a stream (event name = data type, sequence numbers from 0), and how it ended.</summary>
    private static async Task<(List<JsonElement> Events, Exception? Error)> EventsAsync(HttpResponseMessage response, Action<JsonElement>? onEvent = null)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<JsonElement>();
        string? name = null;
        try
        {
            using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    var data = JsonDocument.Parse(line[6..]).RootElement;
                    Assert.Equal(name, data.GetProperty("type").GetString());
                    Assert.Equal(events.Count, data.GetProperty("sequence_number").GetInt32());
                    events.Add(data);
                    onEvent?.Invoke(data);
                }
            }
            return (events, null);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return (events, e);
        }
    }

    private static string Types(List<JsonElement> events) => string.Join(" ", events.Select(e => e.GetProperty("type").GetString()!.Replace("response.", "")));

    public static TheoryData<string> ProviderTypes => new(ProviderFakes.Types);

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task A_text_answer_from_each_provider_type_is_a_response_with_usage_and_the_gateways_headers(string type)
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post($$"""{"model":"{{type}}-model","instructions":"Be brief.","input":"Say hello."}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var r = await JsonAsync(response);
        Assert.StartsWith("resp_", r.GetProperty("id").GetString());
        Assert.Equal("response", r.GetProperty("object").GetString());
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.Equal($"{type}-model", r.GetProperty("model").GetString());
        Assert.Equal("Be brief.", r.GetProperty("instructions").GetString());
        var message = Assert.Single(r.GetProperty("output").EnumerateArray());
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.Equal($"Hello from {type}", message.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(ProviderFakes.Input, r.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(ProviderFakes.Output, r.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(ProviderFakes.Input + ProviderFakes.Output, r.GetProperty("usage").GetProperty("total_tokens").GetInt32());

        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
        Assert.Equal(type, AuthKit.Header(response, "x-gateway-provider"));
        Assert.Equal($"{type}-model", AuthKit.Header(response, "x-gateway-model"));
        Assert.Equal("1", AuthKit.Header(response, "x-gateway-attempts"));
        Assert.Equal("0.000022", AuthKit.Header(response, "x-gateway-cost-usd")); // 12 x 0.001/1k + 5 x 0.002/1k
        Assert.NotNull(AuthKit.Header(response, "x-gateway-overhead-ms"));

        // The instructions reached the provider as its system prompt, in its own wire format.
        var sent = Encoding.UTF8.GetString(Assert.Single(_upstream.Requests).Body);
        Assert.Contains("Be brief.", sent);
        Assert.Contains("Say hello.", sent);
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task A_streamed_answer_from_each_provider_type_is_the_responses_event_sequence(string type)
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post($$"""{"model":"{{type}}-model","input":"Say hello.","stream":true}"""), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(type, AuthKit.Header(response, "x-gateway-provider"));
        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
        var (events, error) = await EventsAsync(response);
        Assert.Null(error);

        Assert.StartsWith("created in_progress output_item.added content_part.added output_text.delta", Types(events));
        Assert.EndsWith("output_text.done content_part.done output_item.done completed", Types(events));
        var deltas = events.Where(e => e.GetProperty("type").GetString() == "response.output_text.delta").Select(e => e.GetProperty("delta").GetString()).ToList();
        Assert.Equal($"Hello from {type}", string.Concat(deltas));
        var completed = events[^1].GetProperty("response");
        Assert.Equal("completed", completed.GetProperty("status").GetString());
        Assert.Equal(events[0].GetProperty("response").GetProperty("id").GetString(), completed.GetProperty("id").GetString());
        Assert.Equal($"Hello from {type}", completed.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(ProviderFakes.Input, completed.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(ProviderFakes.Output, completed.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    private const string WeatherTool = """{"type":"function","name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}""";

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task A_tool_call_from_each_provider_type_is_a_function_call_item(string type)
    {
        _scenario = Scenario.ToolCall;
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post($$"""{"model":"{{type}}-model","input":"Weather in Paris?","tools":[{{WeatherTool}}],"tool_choice":"auto"}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var r = await JsonAsync(response);
        var call = Assert.Single(r.GetProperty("output").EnumerateArray());
        Assert.Equal("function_call", call.GetProperty("type").GetString());
        Assert.Equal("get_weather", call.GetProperty("name").GetString());
        Assert.Equal("Paris", JsonDocument.Parse(call.GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString());
        Assert.False(string.IsNullOrEmpty(call.GetProperty("call_id").GetString()));
        Assert.Equal("get_weather", r.GetProperty("tools")[0].GetProperty("name").GetString());
        // The tool reached the provider in its own shape.
        Assert.Contains("get_weather", Encoding.UTF8.GetString(Assert.Single(_upstream.Requests).Body));
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task A_streamed_tool_call_from_each_provider_type_has_argument_deltas_and_a_done_event(string type)
    {
        _scenario = Scenario.ToolCall;
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post($$"""{"model":"{{type}}-model","input":"Weather in Paris?","tools":[{{WeatherTool}}],"stream":true}"""), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (events, error) = await EventsAsync(response);
        Assert.Null(error);
        Assert.StartsWith("created in_progress output_item.added function_call_arguments.delta", Types(events));
        Assert.EndsWith("function_call_arguments.done output_item.done completed", Types(events));
        var added = events[2].GetProperty("item");
        Assert.Equal("function_call", added.GetProperty("type").GetString());
        Assert.Equal("get_weather", added.GetProperty("name").GetString());
        var done = events.Single(e => e.GetProperty("type").GetString() == "response.function_call_arguments.done");
        Assert.Equal(added.GetProperty("id").GetString(), done.GetProperty("item_id").GetString());
        Assert.Equal("Paris", JsonDocument.Parse(done.GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString());
        var deltas = string.Concat(events.Where(e => e.GetProperty("type").GetString() == "response.function_call_arguments.delta").Select(e => e.GetProperty("delta").GetString()));
        Assert.Equal(done.GetProperty("arguments").GetString(), deltas);
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task A_stream_that_breaks_after_it_started_ends_with_response_failed_never_completed(string type)
    {
        _scenario = Scenario.BreakMidStream;
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post($$"""{"model":"{{type}}-model","input":"Say hello.","stream":true}"""), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var (events, _) = await EventsAsync(response, e =>
        {
            if (e.GetProperty("type").GetString() == "response.output_text.delta") _sawFirstWords.TrySetResult();
        });
        Assert.Contains(events, e => e.GetProperty("type").GetString() == "response.output_text.delta");
        Assert.DoesNotContain(events, e => e.GetProperty("type").GetString() == "response.completed");
        var failed = events[^1];
        Assert.Equal("response.failed", failed.GetProperty("type").GetString());
        Assert.Equal("failed", failed.GetProperty("response").GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(failed.GetProperty("response").GetProperty("error").GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Previous_response_id_puts_the_earlier_turns_in_front_and_get_and_delete_find_the_response()
    {
        var client = _gateway.CreateClient();
        using var first = await client.SendAsync(Post("""{"model":"openai-model","instructions":"Old rules.","input":"My name is Ada."}"""));
        var firstId = (await JsonAsync(first)).GetProperty("id").GetString()!;

        using var second = await client.SendAsync(Post($$"""{"model":"anthropic-model","input":"What is my name?","previous_response_id":"{{firstId}}","instructions":"New rules."}"""));
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var secondBody = await JsonAsync(second);
        Assert.Equal(firstId, secondBody.GetProperty("previous_response_id").GetString());

        // The Anthropic request carries the first turn (user and assistant) before the new input, and
        // only the new instructions: as in OpenAI, instructions don't carry over.
        var sent = _upstream.Requests.ToArray()[1].Json;
        Assert.Equal("New rules.", sent.GetProperty("system").ValueKind == JsonValueKind.String
            ? sent.GetProperty("system").GetString()
            : sent.GetProperty("system")[0].GetProperty("text").GetString());
        var text = sent.GetProperty("messages").ToString();
        Assert.True(text.IndexOf("My name is Ada.", StringComparison.Ordinal) < text.IndexOf("Hello from openai", StringComparison.Ordinal));
        Assert.True(text.IndexOf("Hello from openai", StringComparison.Ordinal) < text.IndexOf("What is my name?", StringComparison.Ordinal));
        Assert.DoesNotContain("Old rules.", _upstream.Requests.ToArray()[1].Json.ToString());

        using var got = await client.GetAsync($"/v1/responses/{firstId}");
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        var stored = await JsonAsync(got);
        Assert.Equal(firstId, stored.GetProperty("id").GetString());
        Assert.Equal("Hello from openai", stored.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());

        using var deleted = await client.DeleteAsync($"/v1/responses/{firstId}");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        var deletion = await JsonAsync(deleted);
        Assert.True(deletion.GetProperty("deleted").GetBoolean());
        Assert.Equal(firstId, deletion.GetProperty("id").GetString());
        using var gone = await client.GetAsync($"/v1/responses/{firstId}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        using var again = await client.DeleteAsync($"/v1/responses/{firstId}");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);

        // The second response holds the whole chain, so it still continues after the first is gone.
        using var third = await client.SendAsync(Post($$"""{"model":"openai-model","input":"And again?","previous_response_id":"{{secondBody.GetProperty("id").GetString()}}"}"""));
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Contains("My name is Ada.", Encoding.UTF8.GetString(_upstream.Requests.ToArray()[2].Body));
    }

    [Fact]
    public async Task A_streamed_response_is_stored_and_continues_like_any_other()
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post("""{"model":"gemini-model","input":"Hi","stream":true}"""), HttpCompletionOption.ResponseHeadersRead);
        var (events, _) = await EventsAsync(response);
        var id = events[^1].GetProperty("response").GetProperty("id").GetString();
        using var got = await client.GetAsync($"/v1/responses/{id}");
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.Equal("completed", (await JsonAsync(got)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Store_false_keeps_nothing()
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post("""{"model":"openai-model","input":"Hi","store":false}"""));
        var body = await JsonAsync(response);
        Assert.False(body.GetProperty("store").GetBoolean());
        var id = body.GetProperty("id").GetString();
        using var got = await client.GetAsync($"/v1/responses/{id}");
        Assert.Equal(HttpStatusCode.NotFound, got.StatusCode);
        using var next = await client.SendAsync(Post($$"""{"model":"openai-model","input":"Hi","previous_response_id":"{{id}}"}"""));
        Assert.Equal(HttpStatusCode.NotFound, next.StatusCode);
        var error = await AuthKit.ErrorAsync(next);
        Assert.Equal("previous_response_not_found", error.GetProperty("code").GetString());
        Assert.Equal("previous_response_id", error.GetProperty("param").GetString());
        Assert.StartsWith("req_", AuthKit.Header(next, "x-request-id"));
        Assert.Equal(1, _upstream.Calls); // the unknown previous response is refused before any call
    }

    [Fact]
    public async Task An_unknown_model_is_404_model_not_found_with_the_gateways_headers()
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post("""{"model":"no-such-model","input":"Hi"}"""));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
        Assert.NotNull(AuthKit.Header(response, "x-gateway-attempts"));
        Assert.Equal(0, _upstream.Calls);
    }

    [Theory]
    [InlineData("""{"model":"openai-model","input":"x","tools":[{"type":"web_search"}]}""", "tools[0].type")]
    [InlineData("""{"model":"openai-model","input":[{"type":"reasoning","id":"rs_1","summary":[]}]}""", "input[0].type")]
    [InlineData("""{"model":"openai-model","input":"x","background":true}""", "background")]
    [InlineData("""{"model":"openai-model"}""", "input")]
    public async Task What_a_chat_target_cant_honour_is_a_400_naming_the_param_before_any_call(string body, string param)
    {
        var client = _gateway.CreateClient();
        using var response = await client.SendAsync(Post(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = await AuthKit.ErrorAsync(response);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.StartsWith("req_", AuthKit.Header(response, "x-request-id"));
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task Unknown_ids_are_404_in_openais_shape()
    {
        var client = _gateway.CreateClient();
        foreach (var id in new[] { "resp_0000", "not-a-response-id" })
        {
            using var got = await client.GetAsync($"/v1/responses/{id}");
            Assert.Equal(HttpStatusCode.NotFound, got.StatusCode);
            Assert.Equal("invalid_request_error", (await AuthKit.ErrorAsync(got)).GetProperty("type").GetString());
            Assert.StartsWith("req_", AuthKit.Header(got, "x-request-id"));
        }
        using var wrongMethod = await client.PutAsync("/v1/responses/resp_0000", new StringContent("{}"));
        Assert.NotEqual(HttpStatusCode.OK, wrongMethod.StatusCode);
        Assert.Equal(0, _upstream.Calls);
    }
}

/// <summary>Keys, limits and the cache hold for /v1/responses as for chat: it is the same pipeline. Stored responses belong to the key that made them.</summary>
public sealed class ResponsesPipelineTests
{
    private static HttpRequestMessage Post(string body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    [Fact]
    public async Task A_keys_model_list_and_rpm_limit_apply_with_the_chat_paths_errors_and_headers()
    {
        await using var upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => Scenario.Text));
        var settings = ProviderFakes.Settings(upstream.BaseUrl).WithKeys(new AuthKit.Key("narrow", "sk-narrow-0123456789", Models: ["anthropic-model"], Rpm: 1));
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using (var refused = await client.SendAsync(Post("""{"model":"openai-model","input":"x"}""", "sk-narrow-0123456789")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("model_not_allowed", (await AuthKit.ErrorAsync(refused)).GetProperty("code").GetString());
            Assert.StartsWith("req_", AuthKit.Header(refused, "x-request-id"));
        }
        using (var first = await client.SendAsync(Post("""{"model":"anthropic-model","input":"x"}""", "sk-narrow-0123456789")))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }
        using var limited = await client.SendAsync(Post("""{"model":"anthropic-model","input":"y"}""", "sk-narrow-0123456789"));
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.Equal("rate_limit_exceeded", (await AuthKit.ErrorAsync(limited)).GetProperty("code").GetString());
        Assert.NotNull(limited.Headers.RetryAfter);
        Assert.Equal(1, upstream.Calls);
    }

    [Fact]
    public async Task A_deterministic_request_is_answered_from_the_cache_the_second_time()
    {
        await using var upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => Scenario.Text));
        await using var gateway = new GatewayFactory(ProviderFakes.Settings(upstream.BaseUrl));
        var client = gateway.CreateClient();
        const string body = """{"model":"gemini-model","input":"Same question","temperature":0}""";
        string? firstId = null;
        foreach (var expected in new[] { "miss", "hit" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(expected, AuthKit.Header(response, "x-gateway-cache"));
            var r = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("Hello from gemini", r.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
            Assert.NotEqual(firstId, r.GetProperty("id").GetString()); // every answer is its own response
            firstId = r.GetProperty("id").GetString();
        }
        Assert.Equal(1, upstream.Calls);
    }

    [Fact]
    public async Task One_key_never_sees_or_deletes_another_keys_response()
    {
        await using var upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => Scenario.Text));
        var settings = ProviderFakes.Settings(upstream.BaseUrl).WithKeys(new AuthKit.Key("team-a", "sk-team-a-0123456789"), new AuthKit.Key("team-b", "sk-team-b-0123456789"));
        await using var gateway = new GatewayFactory(settings);
        var client = gateway.CreateClient();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = new StringContent("""{"model":"openai-model","input":"secret plans"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-team-a-0123456789");
        using var created = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();

        async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, string key, string? body = null)
        {
            using var r = new HttpRequestMessage(method, path);
            if (body is not null) r.Content = new StringContent(body, Encoding.UTF8, "application/json");
            r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var response = await client.SendAsync(r);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Get, $"/v1/responses/{id}", "sk-team-b-0123456789"));
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Get, $"/v1/responses/{id}/input_items", "sk-team-b-0123456789"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, $"/v1/responses/{id}/input_items", "sk-team-a-0123456789"));
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Delete, $"/v1/responses/{id}", "sk-team-b-0123456789"));
        Assert.Equal(HttpStatusCode.NotFound, await SendAsync(HttpMethod.Post, "/v1/responses", "sk-team-b-0123456789", $$"""{"model":"openai-model","input":"x","previous_response_id":"{{id}}"}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, $"/v1/responses/{id}", "sk-wrong"));
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, $"/v1/responses/{id}", "sk-team-a-0123456789"));
        Assert.Equal(1, upstream.Calls);
    }
}

/// <summary>GET /v1/responses/{id}/input_items: the request's own input items in OpenAI's list shape, paged, with every query parameter checked.</summary>
public sealed class ResponseInputItemsTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => Scenario.Text));
        _gateway = new GatewayFactory(ProviderFakes.Settings(_upstream.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private async Task<string> CreateAsync(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/v1/responses", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> ListAsync(HttpClient client, string path, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await client.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{path}: {(int)response.StatusCode} {text}");
        Assert.StartsWith("req_", response.Headers.GetValues("x-request-id").Single());
        return JsonDocument.Parse(text).RootElement;
    }

    private const string FiveItems = """
        {"model":"openai-model","input":[
          {"role":"user","content":[{"type":"input_text","text":"Weather in Paris?"}]},
          {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
          {"type":"function_call_output","call_id":"call_1","output":"18C"},
          {"type":"message","role":"assistant","content":"It is 18C.","id":"msg_client_given"},
          {"role":"user","content":"Thanks."}]}
        """;

    [Fact]
    public async Task The_items_come_newest_first_by_default_with_ids_types_and_status()
    {
        var client = _gateway.CreateClient();
        var id = await CreateAsync(client, FiveItems);

        var list = await ListAsync(client, $"/v1/responses/{id}/input_items");
        Assert.Equal("list", list.GetProperty("object").GetString());
        Assert.False(list.GetProperty("has_more").GetBoolean());
        var data = list.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["message", "message", "function_call_output", "function_call", "message"], data.Select(i => i.GetProperty("type").GetString()));
        Assert.Equal(data[0].GetProperty("id").GetString(), list.GetProperty("first_id").GetString());
        Assert.Equal(data[^1].GetProperty("id").GetString(), list.GetProperty("last_id").GetString());
        Assert.Equal("msg_client_given", data[1].GetProperty("id").GetString());
        Assert.Equal("""[{"type":"output_text","text":"It is 18C."}]""", data[1].GetProperty("content").GetRawText());
        Assert.Equal("call_1", data[3].GetProperty("call_id").GetString());
        Assert.Equal("""{"city":"Paris"}""", data[3].GetProperty("arguments").GetString());
        Assert.Equal("18C", data[2].GetProperty("output").GetString());
        Assert.All(data, i => Assert.Equal("completed", i.GetProperty("status").GetString()));
        Assert.Equal(5, data.Select(i => i.GetProperty("id").GetString()).Distinct().Count());
    }

    [Fact]
    public async Task Pages_follow_after_in_either_order_until_has_more_is_false()
    {
        var client = _gateway.CreateClient();
        var id = await CreateAsync(client, FiveItems);
        var all = (await ListAsync(client, $"/v1/responses/{id}/input_items?order=asc")).GetProperty("data").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList();
        Assert.Equal(5, all.Count);

        foreach (var order in new[] { "asc", "desc" })
        {
            var expected = order == "asc" ? all : Enumerable.Reverse(all).ToList();
            var seen = new List<string>();
            string? after = null;
            for (var page = 0; page < 3; page++)
            {
                var list = await ListAsync(client, $"/v1/responses/{id}/input_items?order={order}&limit=2" + (after is null ? "" : "&after=" + after));
                var ids = list.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList();
                seen.AddRange(ids);
                after = list.GetProperty("last_id").GetString();
                Assert.Equal(page < 2, list.GetProperty("has_more").GetBoolean());
            }
            Assert.Equal(expected, seen);
        }

        // After the last item: an empty page.
        var empty = await ListAsync(client, $"/v1/responses/{id}/input_items?order=asc&after={all[^1]}");
        Assert.Equal(0, empty.GetProperty("data").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, empty.GetProperty("first_id").ValueKind);
        Assert.False(empty.GetProperty("has_more").GetBoolean());
    }

    [Fact]
    public async Task A_string_input_streamed_is_one_user_message()
    {
        var client = _gateway.CreateClient();
        using var response = await client.PostAsync("/v1/responses", new StringContent("""{"model":"openai-model","input":"Say hello.","stream":true}""", Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        var id = System.Text.RegularExpressions.Regex.Match(text, "\"id\":\"(resp_[0-9a-f]+)\"").Groups[1].Value;
        Assert.StartsWith("resp_", id);

        var item = Assert.Single((await ListAsync(client, $"/v1/responses/{id}/input_items")).GetProperty("data").EnumerateArray());
        Assert.Equal("user", item.GetProperty("role").GetString());
        Assert.Equal("""[{"type":"input_text","text":"Say hello."}]""", item.GetProperty("content").GetRawText());
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=101", "limit")]
    [InlineData("limit=ten", "limit")]
    [InlineData("limit=-1", "limit")]
    [InlineData("order=up", "order")]
    [InlineData("after=msg_not_an_item", "after")]
    [InlineData("before=msg_x", "before")]
    public async Task A_bad_query_is_a_400_naming_the_parameter(string query, string param)
    {
        var client = _gateway.CreateClient();
        var id = await CreateAsync(client, FiveItems);

        var error = (await ListAsync(client, $"/v1/responses/{id}/input_items?{query}", HttpStatusCode.BadRequest)).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Unknown_unstored_and_deleted_responses_are_404()
    {
        var client = _gateway.CreateClient();
        await ListAsync(client, "/v1/responses/resp_0123456789abcdef/input_items", HttpStatusCode.NotFound);
        await ListAsync(client, "/v1/responses/not-a-response-id/input_items", HttpStatusCode.NotFound);
        var unstored = await CreateAsync(client, """{"model":"openai-model","input":"x","store":false}""");
        await ListAsync(client, $"/v1/responses/{unstored}/input_items", HttpStatusCode.NotFound);
        var id = await CreateAsync(client, """{"model":"openai-model","input":"x"}""");
        using (await client.DeleteAsync($"/v1/responses/{id}")) { }
        var error = (await ListAsync(client, $"/v1/responses/{id}/input_items", HttpStatusCode.NotFound)).GetProperty("error");
        Assert.Equal("not_found", error.GetProperty("code").GetString());
    }
}
