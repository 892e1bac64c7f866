using System.Diagnostics;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace LlmGateway.IntegrationTests.Responses;

/// <summary>
/// The official <c>openai</c> npm package (tests/clients/openai, installed by scripts/test.sh with
/// <c>npm ci</c>) on Node against a real Kestrel gateway on loopback: <c>responses.create</c> plain,
/// streamed (and the SDK's strict <c>responses.stream</c> accumulator), and function tools; and the
/// Vercel AI SDK's default <c>openai(id)</c> provider, which speaks the Responses API.
/// </summary>
public sealed class ResponsesNodeClientTests : IAsyncLifetime
{
    private static readonly TimeSpan s_nodeLimit = TimeSpan.FromSeconds(90);
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;
    private string _baseUrl = "";
    private Scenario _scenario = Scenario.Text;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => _scenario));
        _gateway = new GatewayFactory(ProviderFakes.Settings(_upstream.BaseUrl));
        _baseUrl = new Uri(_gateway.StartOnLoopback(), "/v1").ToString();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    /// <summary>The repository's tests/clients/openai, found from the test assembly's folder.</summary>
    private static string ClientFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LlmGateway.sln"))) return Path.Combine(dir.FullName, "tests", "clients", "openai");
        }
        throw new InvalidOperationException("The repository root (LlmGateway.sln) was not found above " + AppContext.BaseDirectory);
    }

    private Task<JsonElement> RunAsync(string scenario, string model) => NodeAsync("responses.mjs", scenario, _baseUrl, model);

    private async Task<JsonElement> NodeAsync(params string[] arguments)
    {
        var folder = ClientFolder();
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "openai")),
            $"The openai npm package is not installed in {folder}: run 'npm ci' there (scripts/test.sh does).");
        var start = new ProcessStartInfo("node", arguments)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(s_nodeLimit);
        try
        {
            await node.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            node.Kill(entireProcessTree: true);
            Assert.Fail($"node ran longer than {s_nodeLimit.TotalSeconds} s and was stopped. stderr: {await stderr}");
        }
        Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}. stderr: {await stderr}");
        return JsonDocument.Parse(await stdout).RootElement;
    }

    public static TheoryData<string> ProviderTypes => new(ProviderFakes.Types);

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task Responses_create_reads_a_plain_answer_and_retrieves_it(string type)
    {
        var result = await RunAsync("plain", $"{type}-model");
        Assert.Equal("completed", result.GetProperty("status").GetString());
        Assert.Equal($"Hello from {type}", result.GetProperty("text").GetString());
        Assert.Equal($"Hello from {type}", result.GetProperty("retrieved").GetString());
        Assert.Equal(ProviderFakes.Input, result.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(ProviderFakes.Output, result.GetProperty("usage").GetProperty("output_tokens").GetInt32());
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task Responses_create_streams_and_the_sdks_accumulator_accepts_every_event(string type)
    {
        var result = await RunAsync("streamed", $"{type}-model");
        var types = result.GetProperty("types").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Equal("response.created", types[0]);
        Assert.Equal("response.completed", types[^1]);
        Assert.Contains("response.output_text.done", types);
        Assert.Equal($"Hello from {type}", result.GetProperty("text").GetString());
        Assert.Equal("completed", result.GetProperty("status").GetString());
        Assert.Equal(ProviderFakes.Output, result.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal($"Hello from {type}", result.GetProperty("accumulated").GetString());
        Assert.Equal("completed", result.GetProperty("accumulatedStatus").GetString());
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task Function_tools_round_trip_plain_and_streamed(string type)
    {
        _scenario = Scenario.ToolCall;
        var result = await RunAsync("tools", $"{type}-model");
        var call = result.GetProperty("call");
        Assert.Equal("get_weather", call.GetProperty("name").GetString());
        Assert.Equal("Paris", JsonDocument.Parse(call.GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString());
        Assert.False(string.IsNullOrEmpty(call.GetProperty("call_id").GetString()));
        Assert.Equal($"Hello from {type}", result.GetProperty("followUp").GetString());
        var streamed = result.GetProperty("streamedCall");
        Assert.Equal("get_weather", streamed.GetProperty("name").GetString());
        Assert.Equal("Paris", JsonDocument.Parse(streamed.GetProperty("arguments").GetString()!).RootElement.GetProperty("city").GetString());
        Assert.Contains(ProviderFakes.ToolResult, System.Text.Encoding.UTF8.GetString(_upstream.Requests.ToArray()[1].Body));
    }

    [Fact]
    public async Task An_unknown_model_is_an_api_error_with_model_not_found()
    {
        var result = await RunAsync("errors", "openai-model");
        Assert.True(result.GetProperty("threw").GetBoolean());
        Assert.Equal(404, result.GetProperty("status").GetInt32());
        Assert.Equal("model_not_found", result.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Input_items_list_in_pages_the_sdk_reads_and_follows_to_the_end()
    {
        var result = await RunAsync("input-items", "openai-model");

        // The default order is newest first; three of four, so there is more.
        var page = result.GetProperty("page");
        var ids = page.GetProperty("ids").EnumerateArray().Select(i => i.GetString()!).ToList();
        Assert.Equal(3, ids.Count);
        Assert.True(page.GetProperty("hasMore").GetBoolean());

        // The SDK's auto-paging (limit 1, after=last_id) walks every item, oldest first, and stops at has_more: false.
        var all = result.GetProperty("all").EnumerateArray().ToList();
        Assert.Equal(["developer", "user", "assistant", "user"], all.Select(i => i.GetProperty("role").GetString()));
        Assert.All(all, i => Assert.Equal("message", i.GetProperty("type").GetString()));
        Assert.Equal(all.Select(i => i.GetProperty("id").GetString()).Reverse().Take(3), ids);
        Assert.Equal(4, all.Select(i => i.GetProperty("id").GetString()).Distinct().Count());
        Assert.Equal("""[{"type":"input_text","text":"Answer in French."}]""", all[0].GetProperty("content").GetRawText());
        Assert.Equal("""[{"type":"input_text","text":"Hello."}]""", all[1].GetProperty("content").GetRawText());
        Assert.Equal("""[{"type":"output_text","text":"Bonjour."}]""", all[2].GetProperty("content").GetRawText());
        Assert.Equal("And goodbye?", all[3].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task The_ai_sdks_default_openai_provider_generates_and_streams(string type)
    {
        var result = await NodeAsync("ai-sdk.mjs", _baseUrl, $"{type}-model");
        Assert.Equal($"Hello from {type}", result.GetProperty("text").GetString());
        Assert.Equal("stop", result.GetProperty("finishReason").GetString());
        Assert.Equal(ProviderFakes.Input, result.GetProperty("inputTokens").GetInt32());
        Assert.Equal(ProviderFakes.Output, result.GetProperty("outputTokens").GetInt32());
        Assert.Equal($"Hello from {type}", result.GetProperty("streamedText").GetString());
        Assert.Equal(ProviderFakes.Output, result.GetProperty("streamedOutputTokens").GetInt32());
        Assert.Equal(JsonValueKind.Null, result.GetProperty("streamError").ValueKind);
        // Both calls went to /v1/responses and on to the provider in its own format.
        Assert.Equal(2, _upstream.Calls);
    }
}
