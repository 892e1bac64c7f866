using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Storage;
using LlmGateway.Telemetry;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// What a request costs in Activities (<see cref="HostingLogGate"/>), seen from outside a real gateway process:
/// Activity listeners are process-wide, so a gateway inside the test process would be traced by any other test's
/// tracer. Without a tracer ASP.NET Core starts no Activity per request, so HttpClient starts none either and sends
/// the provider no <c>traceparent</c>; the request's log line carries the gateway's own request id. With OTLP
/// configured the request is traced and its trace reaches the provider as before.
/// </summary>
public sealed class RequestActivityTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private FakeUpstream _collector = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("answer", prompt: 7, completion: 3)));
        _collector = await FakeUpstream.StartOtlpCollectorAsync();
    }

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        await _collector.DisposeAsync();
    }

    [Fact]
    public async Task Without_a_tracer_no_traceparent_reaches_the_provider_and_the_log_line_has_the_clients_request_id()
    {
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        var environment = Environment();
        // Start-up's own warning from the hosting logger (HTTP_PORTS set beside the URL used): still logged, the gate closes after start-up.
        environment["ASPNETCORE_HTTP_PORTS"] = RepoFiles.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var gateway = GatewayProcess.Start(environment, "--urls", url);
        await gateway.WaitLiveAsync(url);
        Assert.Contains("Overriding HTTP_PORTS", gateway.Log, StringComparison.Ordinal);

        var (requestId, line) = await ChatAsync(gateway, url);

        var received = Assert.Single(_upstream.Requests, r => r.Path == "/v1/chat/completions");
        Assert.Null(received.Header("traceparent"));
        Assert.Equal(requestId, line.GetProperty("Properties").GetProperty("RequestId").GetString());
        Assert.False(line.TryGetProperty("TraceId", out _), line.ToString());
    }

    [Fact]
    public async Task With_an_otlp_endpoint_the_request_is_traced_and_its_trace_reaches_the_provider()
    {
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        var environment = Environment();
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = _collector.BaseUrl;
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        await using var gateway = GatewayProcess.Start(environment, "--urls", url);
        await gateway.WaitLiveAsync(url);

        var (requestId, line) = await ChatAsync(gateway, url);

        var received = Assert.Single(_upstream.Requests, r => r.Path == "/v1/chat/completions");
        var traceparent = received.Header("traceparent");
        Assert.NotNull(traceparent);
        // 00-<trace id>-<span id>-<flags>: the provider call belongs to the request's trace, the one its log line names.
        var traceId = traceparent.Split('-')[1];
        Assert.Equal(traceId, line.GetProperty("TraceId").GetString());
        Assert.Equal(requestId, line.GetProperty("Properties").GetProperty("RequestId").GetString());
    }

    [Fact]
    public async Task An_operator_who_asks_for_aspnetcores_request_lines_keeps_them()
    {
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        var environment = Environment();
        environment["Serilog__MinimumLevel__Override__Microsoft.AspNetCore.Hosting.Diagnostics"] = "Information";
        await using var gateway = GatewayProcess.Start(environment, "--urls", url);
        await gateway.WaitLiveAsync(url);

        await ChatAsync(gateway, url);

        await StoreTestKit.EventuallyAsync(
            () => Task.FromResult((gateway.Log.Contains("Request finished", StringComparison.Ordinal), gateway.Log)),
            "ASP.NET Core's request finished line");
    }

    private Dictionary<string, string?> Environment() => new()
    {
        ["Gateway__Providers__up__Type"] = "openai",
        ["Gateway__Providers__up__BaseUrl"] = _upstream.BaseUrl + "/v1",
        ["Gateway__Models__test-model__Provider"] = "up",
        ["Gateway__Models__test-model__UpstreamModel"] = "upstream-model",
        ["Gateway__Cache__Enabled"] = "false",
        ["Serilog__MinimumLevel__Default"] = "Information",
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = null,
        ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = null,
    };

    /// <summary>One chat completion; its x-request-id and the request's log line (written by the log's background writer, so waited for).</summary>
    private static async Task<(string RequestId, JsonElement Line)> ChatAsync(GatewayProcess gateway, string url)
    {
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        using var content = new StringContent("""{"model":"test-model","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync("/v1/chat/completions", content);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var requestId = response.Headers.GetValues("x-request-id").Single();

        JsonElement? found = null;
        await StoreTestKit.EventuallyAsync(() =>
        {
            found = RequestLine(gateway.Log);
            return Task.FromResult((found is not null, gateway.Log));
        }, "the request's log line");
        return (requestId, found!.Value);
    }

    private static JsonElement? RequestLine(string log)
    {
        foreach (var text in log.Split('\n'))
        {
            if (!text.Contains("\"RequestCompleted\"", StringComparison.Ordinal)) continue;
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        return null;
    }
}
