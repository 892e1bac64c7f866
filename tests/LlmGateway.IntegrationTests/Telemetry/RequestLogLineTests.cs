using System.Diagnostics;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// The per-request log line as an operator reads it: the built gateway started as a process, one request to the
/// shipped mock model, and its stdout parsed line by line. The line is written by the gateway's own UTF-8
/// formatter (<c>JsonLogLineFormatter</c>); this checks that what reaches stdout is whole JSON lines with
/// Serilog's layout and the request's fields, and never the prompt.
/// </summary>
public sealed class RequestLogLineTests
{
    [Fact]
    public async Task A_request_writes_one_JSON_line_on_stdout_with_Serilogs_layout_and_the_records_fields()
    {
        const string prompt = "prompt-marker-7f3e \"quoted\" ünïcode 🙂";
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using var gateway = GatewayProcess.Start(new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = url });
        await gateway.WaitLiveAsync(url);

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(10) };
        var body = JsonSerializer.Serialize(new { model = "mock-echo", messages = new[] { new { role = "user", content = prompt } } });
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);

        // The writer drains every 25 ms; bounded wait, failing at its deadline.
        var waited = Stopwatch.StartNew();
        string? line;
        while ((line = gateway.Log.Split('\n').FirstOrDefault(l => l.Contains("\"RequestCompleted\"", StringComparison.Ordinal))) is null)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "no request line on stdout within 30 s:\n" + gateway.Log);
            await Task.Delay(25);
        }

        using var json = JsonDocument.Parse(line);
        var root = json.RootElement;
        // TraceId and SpanId follow the message only under an Activity (a tracer configured); none here is needed.
        var keys = root.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(["Timestamp", "Level", "MessageTemplate", "RenderedMessage", "Properties"], keys.Where(k => k is not ("TraceId" or "SpanId")));
        if (keys.Contains("TraceId"))
        {
            Assert.Equal(["TraceId", "SpanId"], keys.Skip(4).Take(2));
            Assert.Matches("^[0-9a-f]{32}$", root.GetProperty("TraceId").GetString());
        }
        Assert.True(DateTimeOffset.TryParse(root.GetProperty("Timestamp").GetString(), out _));
        Assert.Equal("Information", root.GetProperty("Level").GetString());
        Assert.Equal("{RequestId} {Model} via {Provider}: {Status} {Outcome} in {DurationMs} ms", root.GetProperty("MessageTemplate").GetString());
        var properties = root.GetProperty("Properties");
        Assert.Equal("mock-echo", properties.GetProperty("Model").GetString());
        Assert.Equal("mock", properties.GetProperty("Provider").GetString());
        Assert.Equal(200, properties.GetProperty("Status").GetInt32());
        Assert.Equal("ok", properties.GetProperty("Outcome").GetString());
        Assert.False(properties.GetProperty("Stream").GetBoolean());
        Assert.True(properties.GetProperty("PromptTokens").GetInt32() > 0);
        Assert.Equal(JsonValueKind.Null, properties.GetProperty("TtftMs").ValueKind);
        Assert.True(properties.GetProperty("DurationMs").GetDouble() > 0);
        Assert.Equal("RequestCompleted", properties.GetProperty("EventId").GetProperty("Name").GetString());
        Assert.Equal("LlmGateway.Usage.RequestLog", properties.GetProperty("SourceContext").GetString());
        var requestId = properties.GetProperty("RequestId").GetString();
        Assert.StartsWith($"\"{requestId}\" \"mock-echo\" via \"mock\": 200 \"ok\" in ", root.GetProperty("RenderedMessage").GetString(), StringComparison.Ordinal);

        // Every JSON line the process wrote parses on its own; the prompt is in none of them.
        foreach (var l in gateway.Log.Split('\n').Where(l => l.StartsWith('{')))
        {
            using var _ = JsonDocument.Parse(l);
        }
        Assert.DoesNotContain("prompt-marker-7f3e", gateway.Log, StringComparison.Ordinal);
    }
}
