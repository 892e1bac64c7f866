using System.Diagnostics;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>The request and attempt spans, seen by a real ActivityListener and exported by OTLP to a collector on loopback.</summary>
public sealed class TracingTests : IAsyncLifetime
{
    private FakeUpstream _failing = null!;
    private FakeUpstream _working = null!;

    public async Task InitializeAsync()
    {
        _failing = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Error("overloaded", "server_error"), status: 500));
        _working = await FakeUpstream.StartAsync((http, _) => OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("traced", prompt: 12, completion: 5, model: "upstream-model-2024")));
    }

    public async Task DisposeAsync()
    {
        await _failing.DisposeAsync();
        await _working.DisposeAsync();
    }

    /// <summary>first-model on a failing provider, falling back to second-model on a working one.</summary>
    private Dictionary<string, string?> FallbackSettings()
    {
        var settings = GatewayFactory.OpenAiSettings(_failing.BaseUrl, provider: "failing", model: "first-model", upstreamModel: "upstream-first");
        foreach (var (k, v) in GatewayFactory.OpenAiSettings(_working.BaseUrl, provider: "working", model: "second-model", upstreamModel: "upstream-second")) settings[k] = v;
        settings["Gateway:Models:first-model:Fallbacks:0"] = "second-model";
        settings["Gateway:Resilience:MaxRetries"] = "0"; // one attempt span per candidate
        return settings;
    }

    [Fact]
    public async Task A_request_span_holds_one_attempt_span_per_candidate_with_genai_attributes()
    {
        using var spans = new SpanRecorder();
        var stopped = spans.Stopped;
        await using var gateway = new GatewayFactory(FallbackSettings());

        var result = await gateway.ChatClient("first-model").CompleteChatAsync([new UserChatMessage("trace me")]);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-request-id", out var requestId));

        // Other tests' gateways may be traced too while this listener is on: pick this request's spans.
        var request = Assert.Single(stopped, a => a.OperationName == GatewayTracing.RequestOperation && (string?)a.GetTagItem("llm_gateway.request_id") == requestId);
        Assert.Equal("chat second-model", request.DisplayName);
        Assert.Equal("chat", request.GetTagItem("gen_ai.operation.name"));
        Assert.Equal("first-model", request.GetTagItem("gen_ai.request.model"));
        Assert.Equal("second-model", request.GetTagItem("gen_ai.response.model"));
        Assert.Equal(12, request.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.Equal(5, request.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(2, request.GetTagItem("llm_gateway.attempts"));
        Assert.Equal(1, request.GetTagItem("llm_gateway.fallbacks"));
        Assert.Equal(ActivityStatusCode.Unset, request.Status);

        var attempts = stopped.Where(a => a.ParentSpanId == request.SpanId && a.OperationName == GatewayTracing.AttemptOperation).OrderBy(a => a.StartTimeUtc).ToList();
        Assert.Equal(2, attempts.Count);
        var (failed, answered) = (attempts[0], attempts[1]);
        Assert.Equal(ActivityKind.Client, failed.Kind);
        Assert.Equal("chat upstream-first", failed.DisplayName);
        Assert.Equal("openai", failed.GetTagItem("gen_ai.system"));
        Assert.Equal("upstream-first", failed.GetTagItem("gen_ai.request.model"));
        Assert.Equal(ActivityStatusCode.Error, failed.Status);
        Assert.Equal("500", failed.GetTagItem("error.type"));

        Assert.Equal("chat upstream-second", answered.DisplayName);
        Assert.Equal("upstream-second", answered.GetTagItem("gen_ai.request.model"));
        Assert.Equal("upstream-model-2024", answered.GetTagItem("gen_ai.response.model"));
        Assert.Equal(12, answered.GetTagItem("gen_ai.usage.input_tokens"));
        Assert.Equal(5, answered.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.Equal(ActivityStatusCode.Unset, answered.Status);
        Assert.Equal(request.TraceId, answered.TraceId);
    }

    [Fact]
    public async Task Spans_are_exported_by_otlp_when_an_endpoint_is_configured()
    {
        await using var collector = await FakeUpstream.StartOtlpCollectorAsync();
        var settings = FallbackSettings();
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.BaseUrl;
        settings["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        var gateway = new GatewayFactory(settings);
        await using (gateway)
        {
            Assert.True(gateway.Services.GetRequiredService<TracingSetup>().IsEnabled);
            await gateway.ChatClient("first-model").CompleteChatAsync([new UserChatMessage("export me")]);
        }

        // Stopping the gateway flushed the batch; the collector may still be reading the export with the
        // request span, the last one to end.
        var exports = await WaitForExportsAsync(collector, "chat second-model");
        Assert.NotEmpty(exports);
        Assert.All(exports, r => Assert.Equal("application/x-protobuf", r.Header("content-type")));
        // Protobuf keeps strings as UTF-8, so span names and attribute keys and values are findable.
        var body = Encoding.UTF8.GetString(exports.SelectMany(r => r.Body).ToArray());
        Assert.Contains(GatewayResource.DefaultServiceName, body, StringComparison.Ordinal);
        Assert.Contains("chat second-model", body, StringComparison.Ordinal);
        Assert.Contains("chat upstream-first", body, StringComparison.Ordinal);
        Assert.Contains("gen_ai.request.model", body, StringComparison.Ordinal);
        Assert.Contains("gen_ai.usage.output_tokens", body, StringComparison.Ordinal);
        Assert.Contains("upstream-model-2024", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_otlp_endpoint_no_tracer_is_built()
    {
        await using var gateway = new GatewayFactory(FallbackSettings());
        Assert.False(gateway.Services.GetRequiredService<TracingSetup>().IsEnabled);
    }

    private static async Task<List<ReceivedRequest>> WaitForExportsAsync(FakeUpstream collector, string spanName)
    {
        var deadline = Stopwatch.StartNew();
        var name = Encoding.UTF8.GetBytes(spanName);
        while (true)
        {
            var exports = collector.Requests.Where(r => r.Path == "/v1/traces").ToList();
            if (exports.Any(r => r.Body.AsSpan().IndexOf(name) >= 0)) return exports;
            if (deadline.Elapsed > TimeSpan.FromSeconds(15)) Assert.Fail($"No span named '{spanName}' was exported within 15 s ({exports.Count} trace exports received).");
            await Task.Delay(50);
        }
    }
}
