using System.Collections.Concurrent;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>Prompt and completion text reach the logs only when Gateway:Logging:IncludeContent is on.</summary>
public sealed class ContentLogTests : IAsyncLifetime
{
    private const string Prompt = "What is the capital of Atlantis? secret-prompt-marker";
    private FakeUpstream _upstream = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(async (http, received) =>
        {
            if (received.Json.TryGetProperty("stream", out var s) && s.GetBoolean())
            {
                await OpenAiWire.WriteStreamAsync(http, ["Poseidonia, ", "streamed-completion-marker"]);
                return;
            }
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion("Poseidonia, completion-marker with sk-abcdefghijklmnop1234"));
        });
    }

    public async Task DisposeAsync() => await _upstream.DisposeAsync();

    private async Task<List<string>> RunAsync(bool? includeContent)
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Serilog:MinimumLevel:Default"] = "Information";
        if (includeContent is { } on) settings["Gateway:Logging:IncludeContent"] = on ? "true" : "false";
        var logs = new CapturingLoggerProvider();
        await using var gateway = new GatewayFactory(settings);
        await using var logged = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<ILoggerProvider>(logs)));
        var chat = new ChatClientFor(logged).Create("test-model");

        var answer = await chat.CompleteChatAsync([new UserChatMessage(Prompt)]);
        Assert.StartsWith("Poseidonia", answer.Value.Content[0].Text, StringComparison.Ordinal);
        await foreach (var _ in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)]))
        {
        }

        // A client can have the whole answer before the middleware is done with the request: wait until both
        // requests are recorded and nothing is in flight, so any content line would have been written; with content on,
        // until both lines are in the capture too (the full suite once saw the first check pass with one missing there).
        // Past the deadline the test fails, saying what it waited for.
        using var http = logged.CreateClient();
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var m = await MetricsText.ScrapeAsync(http);
            var settled = m.Value("llm_gateway_inflight_requests") == 0 && m.Find("llm_gateway_requests_total").Sum(x => x.Value) == 2;
            var contentLines = logs.Lines.Count(l => l.StartsWith("RequestContent|", StringComparison.Ordinal));
            if (settled && (includeContent != true || contentLines >= 2)) break;
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), $"after 10 s: requests settled {settled}, content lines {contentLines}");
            await Task.Delay(20);
        }
        return [.. logs.Lines];
    }

    [Fact]
    public async Task With_include_content_one_line_per_request_carries_prompt_and_completion_scrubbed_of_keys()
    {
        var lines = await RunAsync(includeContent: true);

        var content = lines.Where(l => l.StartsWith("RequestContent|", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, content.Count);
        Assert.Contains(content, l => l.Contains("secret-prompt-marker", StringComparison.Ordinal) && l.Contains("Poseidonia, completion-marker", StringComparison.Ordinal));
        Assert.Contains(content, l => l.Contains("secret-prompt-marker", StringComparison.Ordinal) && l.Contains("Poseidonia, streamed-completion-marker", StringComparison.Ordinal));
        Assert.All(content, l => Assert.Contains("req_", l, StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("sk-abcdefghijklmnop1234", StringComparison.Ordinal));
        // The request line itself never carries content.
        Assert.DoesNotContain(lines, l => l.StartsWith("RequestCompleted|", StringComparison.Ordinal) && l.Contains("marker", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null)]
    [InlineData(false)]
    public async Task By_default_and_when_off_no_log_line_carries_prompt_or_completion_text(bool? includeContent)
    {
        var lines = await RunAsync(includeContent);

        Assert.Contains(lines, l => l.StartsWith("RequestCompleted|", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("marker", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("Atlantis", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_include_content_responses_and_messages_requests_are_logged_in_their_own_shapes()
    {
        var settings = GatewayFactory.OpenAiSettings(_upstream.BaseUrl);
        settings["Serilog:MinimumLevel:Default"] = "Information";
        settings["Gateway:Logging:IncludeContent"] = "true";
        var logs = new CapturingLoggerProvider();
        await using var gateway = new GatewayFactory(settings);
        await using var logged = gateway.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<ILoggerProvider>(logs)));
        using var http = logged.CreateClient();
        string[] bodies =
        [
            $$"""{"model":"test-model","input":"{{Prompt}} zebra1plain"}""",
            $$"""{"model":"test-model","input":"{{Prompt}} zebra2streamed","stream":true}""",
            $$"""{"model":"test-model","max_tokens":64,"messages":[{"role":"user","content":"{{Prompt}} okapi1plain"}]}""",
            $$"""{"model":"test-model","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"{{Prompt}} okapi2streamed"}]}""",
        ];
        for (var i = 0; i < bodies.Length; i++)
        {
            using var response = await http.PostAsync(i < 2 ? "/v1/responses" : "/v1/messages", new StringContent(bodies[i], System.Text.Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, text);
            Assert.Contains("Poseidonia", text, StringComparison.Ordinal);
        }

        // (Markers no test's registered secret has a piece of: the scrubber is process-wide.)
        // The middleware writes the content line after the client has its answer: wait (failing at the deadline) until all four are.
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        List<string> content;
        while ((content = [.. logs.Lines.Where(l => l.StartsWith("RequestContent|", StringComparison.Ordinal))]).Count < bodies.Length)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), $"{content.Count} of {bodies.Length} content lines after 10 s");
            await Task.Delay(20);
        }

        Assert.Equal(bodies.Length, content.Count);
        Assert.True(content.Any(l => l.Contains("zebra1plain", StringComparison.Ordinal) && l.Contains("Poseidonia, completion-marker", StringComparison.Ordinal)), string.Join("\n", content));
        Assert.True(content.Any(l => l.Contains("zebra2streamed", StringComparison.Ordinal) && l.Contains("Poseidonia, streamed-completion-marker", StringComparison.Ordinal)), string.Join("\n", content));
        Assert.True(content.Any(l => l.Contains("okapi1plain", StringComparison.Ordinal) && l.Contains("Poseidonia, completion-marker", StringComparison.Ordinal)), string.Join("\n", content));
        Assert.True(content.Any(l => l.Contains("okapi2streamed", StringComparison.Ordinal) && l.Contains("Poseidonia, streamed-completion-marker", StringComparison.Ordinal)), string.Join("\n", content));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("sk-abcdefghijklmnop1234", StringComparison.Ordinal));
    }

    /// <summary>The SDK client on a factory derived with WithWebHostBuilder (GatewayFactory.ChatClient needs the GatewayFactory itself).</summary>
    private sealed class ChatClientFor(Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactory<Program> factory)
    {
        public ChatClient Create(string model)
        {
            var http = factory.CreateClient();
            return new ChatClient(model, new System.ClientModel.ApiKeyCredential("test-client-key"), new OpenAI.OpenAIClientOptions
            {
                Endpoint = new Uri(http.BaseAddress!, "/v1"),
                Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(http),
                RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
            });
        }
    }

    /// <summary>Every log line as "EventName|message|property values", so a test can search all of it.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(Lines);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join("|", pairs.Select(p => $"{p.Key}={p.Value}")) : "";
                lines.Enqueue($"{eventId.Name}|{formatter(state, exception)}|{values}");
            }
        }
    }
}
