using System.Net;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.ChatCompletions;

/// <summary>Every error row of the contract that the core path owns, in OpenAI's shape.</summary>
public sealed class ErrorTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstream.StartAsync();

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private static async Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> PostAsync(GatewayFactory gateway, string body)
    {
        using var client = gateway.CreateClient();
        var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return (response.StatusCode, error, response);
    }

    private const string Valid = """{"model":"test-model","messages":[{"role":"user","content":"hi"}]}""";

    [Theory]
    [InlineData("{not json", "invalid_json")]
    [InlineData("""{"model":"test-model"}""", null)]
    [InlineData("""{"model":"test-model","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", null)]
    [InlineData("", "invalid_json")]
    public async Task Bad_input_is_a_400_invalid_request_error(string body, string? code)
    {
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl));
        var (status, error, _) = await PostAsync(gateway, body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        if (code is not null) Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404_model_not_found()
    {
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl));
        var (status, error, _) = await PostAsync(gateway, """{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Gateway:Limits:MaxRequestBytes"] = "1000";
        await using var gateway = new GatewayFactory(settings);
        var big = "{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 5000) + "\"}]}";
        var (status, error, _) = await PostAsync(gateway, big);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());

        // Without Content-Length (chunked), the limit still holds while reading.
        using var client = gateway.CreateClient();
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_upstream_400_for_a_bad_parameter_is_passed_through_in_openai_shape()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http,
            OpenAiWire.Error("Invalid value for 'logit_bias': must be a map.", code: "invalid_value", param: "logit_bias"), 400);
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl));
        var (status, error, _) = await PostAsync(gateway, Valid);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_value", error.GetProperty("code").GetString());
        Assert.Equal("logit_bias", error.GetProperty("param").GetString());
        Assert.Contains("logit_bias", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_unreachable_upstream_is_a_502_upstream_error()
    {
        // A port that was just free: nothing listens there.
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var settings = GatewayFactory.OpenAiSettings($"http://127.0.0.1:{port}");
        settings["Gateway:Resilience:MaxRetries"] = "0";
        await using var gateway = new GatewayFactory(settings);
        var (status, error, _) = await PostAsync(gateway, Valid);
        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.Equal("upstream_error", error.GetProperty("code").GetString());
        Assert.Equal("api_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task An_upstream_that_does_not_answer_in_time_is_a_504_upstream_timeout()
    {
        _upstream.Handler = async (http, _) => await Task.Delay(TimeSpan.FromSeconds(30), http.RequestAborted);
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Gateway:Resilience:TotalTimeoutSeconds"] = "1";
        settings["Gateway:Resilience:FirstTokenTimeoutSeconds"] = "1";
        settings["Gateway:Resilience:MaxRetries"] = "0";
        await using var gateway = new GatewayFactory(settings);
        var (status, error, _) = await PostAsync(gateway, Valid);
        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());

        // A stream whose first token never comes times out the same way, before anything was sent.
        var (streamStatus, streamError, _) = await PostAsync(gateway, """{"model":"test-model","stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.GatewayTimeout, streamStatus);
        Assert.Equal("upstream_timeout", streamError.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Error_answers_carry_the_request_id_and_the_gateway_headers_known_by_then()
    {
        _upstream.Handler = (http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("The server had an error.", type: "server_error"), 500);
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Gateway:Resilience:MaxRetries"] = "0";
        await using var gateway = new GatewayFactory(settings);

        // Refused before it was parsed: only the request id and the gateway's own time are known.
        var (_, _, badJson) = await PostAsync(gateway, "{not json");
        Assert.StartsWith("req_", Header(badJson, "x-request-id"), StringComparison.Ordinal);
        Assert.True(double.TryParse(Header(badJson, "x-gateway-overhead-ms"), System.Globalization.CultureInfo.InvariantCulture, out _));
        Assert.Equal("0", Header(badJson, "x-gateway-attempts"));
        Assert.False(badJson.Headers.Contains("x-gateway-provider"));

        // Refused by routing: the task type is known, no provider was tried.
        var (notFound, _, unknown) = await PostAsync(gateway, """{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.NotFound, notFound);
        Assert.StartsWith("req_", Header(unknown, "x-request-id"), StringComparison.Ordinal);
        Assert.Equal("general", Header(unknown, "x-gateway-task-type"));
        Assert.Equal("0", Header(unknown, "x-gateway-attempts"));
        Assert.NotNull(Header(unknown, "x-gateway-overhead-ms"));

        // Every candidate failed: which one was tried, how often, and what the cache said.
        var (badGateway, _, failed) = await PostAsync(gateway, Valid);
        Assert.Equal(HttpStatusCode.BadGateway, badGateway);
        Assert.StartsWith("req_", Header(failed, "x-request-id"), StringComparison.Ordinal);
        Assert.Equal("up", Header(failed, "x-gateway-provider"));
        Assert.Equal("test-model", Header(failed, "x-gateway-model"));
        Assert.Equal("1", Header(failed, "x-gateway-attempts"));
        Assert.Equal("bypass", Header(failed, "x-gateway-cache"));
        Assert.NotNull(Header(failed, "x-gateway-overhead-ms"));
        Assert.False(failed.Headers.Contains("x-gateway-cost-usd"));
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : null;

    [Fact]
    public async Task An_unknown_path_is_an_openai_shaped_404()
    {
        await using var gateway = new GatewayFactory(GatewayFactory.OpenAiSettings(_upstream.BaseUrl));
        using var client = gateway.CreateClient();
        using var response = await client.GetAsync("/v1/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }
}
