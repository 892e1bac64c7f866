using System.Diagnostics;
using System.Text.Json;
using LlmGateway.IntegrationTests.Auth;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// The official Anthropic TypeScript SDK (@anthropic-ai/sdk, pinned in tests/clients/anthropic) as a
/// real client of the gateway on Kestrel on 127.0.0.1: messages.create and messages.stream, with
/// tools, count_tokens and errors. If the SDK can't parse what the gateway sends, these fail.
/// Needs node ≥ 20 and tests/clients/anthropic/node_modules (scripts/test.sh runs npm ci).
/// </summary>
public sealed class AnthropicSdkTests : IAsyncLifetime
{
    private const string Secret = "gw-anthropic-sdk-tests-0123456789";
    private static readonly TimeSpan s_processLimit = TimeSpan.FromSeconds(60);
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;
    private Uri _base = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync();
        var settings = ProviderFakes.Settings("openai", _upstream.BaseUrl).WithKeys(new AuthKit.Key("sdk", Secret));
        _gateway = new GatewayFactory(settings);
        _base = _gateway.StartOnLoopback();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    /// <summary>Answers text or a tool call depending on whether the request offered tools, streamed when asked.</summary>
    private void Answer()
    {
        var text = ProviderFakes.Handler("openai", FakeAnswer.Text);
        var tool = ProviderFakes.Handler("openai", FakeAnswer.Tool);
        _upstream.Handler = (http, r) => r.Json.TryGetProperty("tools", out _) ? tool(http, r) : text(http, r);
    }

    [Fact]
    public async Task Messages_create_returns_a_message_the_sdk_reads()
    {
        Answer();
        var result = await RunAsync("create", ProviderFakes.Model);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var message = result.GetProperty("result");
        Assert.StartsWith("msg_", message.GetProperty("id").GetString());
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.Equal("""[{"type":"text","text":"Bonjour!"}]""", message.GetProperty("content").GetRawText());
        Assert.Equal("end_turn", message.GetProperty("stop_reason").GetString());
        Assert.Equal(ProviderFakes.PromptTokens, message.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(ProviderFakes.OutputTokens, message.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal("Be brief.", Assert.Single(_upstream.Requests).Json.GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Messages_create_with_tools_and_a_tool_result_returns_a_tool_use_block()
    {
        Answer();
        var result = await RunAsync("create-tools", ProviderFakes.Model);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var message = result.GetProperty("result");
        Assert.Equal("tool_use", message.GetProperty("stop_reason").GetString());
        var block = message.GetProperty("content")[1];
        Assert.Equal("get_weather", block.GetProperty("name").GetString());
        Assert.Equal("call_1", block.GetProperty("id").GetString());
        Assert.Equal("""{"city":"Paris"}""", block.GetProperty("input").GetRawText());
        Assert.StartsWith("req_", message.GetProperty("headers").GetProperty("requestId").GetString());
        Assert.Equal("target", message.GetProperty("headers").GetProperty("provider").GetString());

        var sent = Assert.Single(_upstream.Requests).Json;
        Assert.Equal("tool", sent.GetProperty("messages")[2].GetProperty("role").GetString());
        Assert.Equal("toolu_1", sent.GetProperty("messages")[2].GetProperty("tool_call_id").GetString());
    }

    [Fact]
    public async Task Messages_stream_of_text_gives_the_sdk_its_text_events_and_final_message()
    {
        Answer();
        var result = await RunAsync("stream-text", ProviderFakes.Model);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var r = result.GetProperty("result");
        Assert.Equal(["Bon", "jour!"], r.GetProperty("texts").EnumerateArray().Select(t => t.GetString()));
        var final = r.GetProperty("final");
        Assert.Equal("""[{"type":"text","text":"Bonjour!"}]""", final.GetProperty("content").GetRawText());
        Assert.Equal("end_turn", final.GetProperty("stop_reason").GetString());
        Assert.Equal(ProviderFakes.PromptTokens, final.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(ProviderFakes.OutputTokens, final.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Fact]
    public async Task Messages_stream_with_tools_accumulates_the_tool_input_from_input_json_deltas()
    {
        Answer();
        var result = await RunAsync("stream-tools", ProviderFakes.Model);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        var r = result.GetProperty("result");
        var events = r.GetProperty("events").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal("message_start", events[0]);
        Assert.Contains("content_block_delta:input_json_delta", events);
        Assert.Equal("message_stop", events[^1]);
        var final = r.GetProperty("final");
        Assert.Equal("tool_use", final.GetProperty("stop_reason").GetString());
        Assert.Equal("""{"type":"text","text":"Checking."}""", final.GetProperty("content")[0].GetRawText());
        Assert.Equal("""{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}""", final.GetProperty("content")[1].GetRawText());
    }

    [Fact]
    public async Task Count_tokens_is_read_by_the_sdk()
    {
        var result = await RunAsync("count", ProviderFakes.Model);

        Assert.True(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        Assert.InRange(result.GetProperty("result").GetProperty("input_tokens").GetInt32(), 5, 500);
        Assert.Equal(0, _upstream.Calls);
    }

    [Fact]
    public async Task An_unknown_model_is_the_sdks_not_found_error()
    {
        var result = await RunAsync("create", "claude-does-not-exist");

        Assert.False(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        Assert.Equal("NotFoundError", result.GetProperty("name").GetString());
        Assert.Equal(404, result.GetProperty("status").GetInt32());
        Assert.Equal("not_found_error", result.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_wrong_key_is_the_sdks_authentication_error()
    {
        var result = await RunAsync("create", ProviderFakes.Model, key: "gw-wrong");

        Assert.False(result.GetProperty("ok").GetBoolean(), result.GetRawText());
        Assert.Equal("AuthenticationError", result.GetProperty("name").GetString());
        Assert.Equal("authentication_error", result.GetProperty("type").GetString());
    }

    /// <summary>The SDK against this class's gateway.</summary>
    private Task<JsonElement> RunAsync(string scenario, string model, string key = Secret) => RunNodeAsync(_base, scenario, model, key);

    /// <summary>Runs tests/clients/anthropic/client.mjs with node against the gateway at <paramref name="gateway"/>; its one line of JSON output.</summary>
    internal static async Task<JsonElement> RunNodeAsync(Uri gateway, string scenario, string model, string key)
    {
        var dir = ClientDirectory();
        Assert.True(Directory.Exists(Path.Combine(dir, "node_modules", "@anthropic-ai", "sdk")),
            $"The Anthropic SDK is not installed in {dir}: run 'npm ci' there (scripts/test.sh does).");
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("client.mjs");
        start.ArgumentList.Add(scenario);
        start.ArgumentList.Add(model);
        start.Environment["GATEWAY_BASE_URL"] = gateway.ToString().TrimEnd('/');
        start.Environment["GATEWAY_KEY"] = key;
        // The SDK must not pick up a developer's real key or proxy.
        start.Environment.Remove("ANTHROPIC_API_KEY");
        start.Environment.Remove("ANTHROPIC_AUTH_TOKEN");
        start.Environment.Remove("ANTHROPIC_BASE_URL");
        start.Environment["NO_PROXY"] = "127.0.0.1,localhost";

        using var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(s_processLimit);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"node {scenario} did not finish within {s_processLimit.TotalSeconds} s. stderr: {await stderr}");
        }
        var output = (await stdout).Trim();
        Assert.True(process.ExitCode == 0, $"node {scenario} exited with {process.ExitCode}. stdout: {output} stderr: {await stderr}");
        var last = output.Split('\n').Last();
        return JsonDocument.Parse(last).RootElement;
    }

    private static string ClientDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LlmGateway.sln"))) return Path.Combine(dir.FullName, "tests", "clients", "anthropic");
        }
        throw new InvalidOperationException("LlmGateway.sln not found above " + AppContext.BaseDirectory);
    }
}
