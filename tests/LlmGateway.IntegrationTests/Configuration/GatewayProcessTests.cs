using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;

namespace LlmGateway.IntegrationTests.Configuration;

/// <summary>
/// The built gateway started as a child process, as an operator starts it: the listen address by each
/// of .NET's conventions, the command line and empty variables as configuration layers, the start-up
/// report of what each task type can reach. Every process is on a free loopback port and is stopped.
/// </summary>
public sealed class GatewayProcessTests
{
    private const string AdminKey = "process-tests-admin-key-31d9";

    public static TheoryData<string> ListenSettings => ["ASPNETCORE_URLS", "URLS", "ASPNETCORE_HTTP_PORTS", "--urls", "Kestrel:Endpoints"];

    [Theory]
    [MemberData(nameof(ListenSettings))]
    public async Task The_listen_address_follows_each_dotnet_convention(string setting)
    {
        var port = RepoFiles.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var environment = new Dictionary<string, string?>();
        var args = new List<string>();
        switch (setting)
        {
            case "--urls": args.AddRange(["--urls", url]); break;
            case "Kestrel:Endpoints": environment["Kestrel__Endpoints__Main__Url"] = url; break;
            // The aspnet images' variable: a port on every interface; this test talks to it on loopback only.
            case "ASPNETCORE_HTTP_PORTS": environment[setting] = port.ToString(System.Globalization.CultureInfo.InvariantCulture); break;
            default: environment[setting] = url; break;
        }

        await using var gateway = GatewayProcess.Start(environment, [.. args]);
        await gateway.WaitLiveAsync(url);
        Assert.DoesNotContain(":8080", gateway.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_no_listen_setting_it_listens_on_localhost_8080()
    {
        // Port 8080 may be taken on this machine: either it listens on localhost:8080, or it stops
        // saying it could not bind localhost's 127.0.0.1:8080. Both show the default; another port,
        // another interface or no word of 8080 within a minute is a failure.
        const string listening = "http://localhost:8080";
        const string busy = "Failed to bind to address http://127.0.0.1:8080: address already in use";
        await using var gateway = GatewayProcess.Start(new Dictionary<string, string?>());
        var deadline = DateTime.UtcNow.AddSeconds(60);
        bool Said() => gateway.Log.Contains(listening, StringComparison.Ordinal) || gateway.Log.Contains(busy, StringComparison.Ordinal);
        while (!Said() && !gateway.HasExited)
        {
            Assert.True(DateTime.UtcNow < deadline, "no word of localhost:8080 within 60 s:\n" + gateway.Log);
            await Task.Delay(100);
        }
        if (!Said()) await gateway.WaitExitAsync(); // an exiting process's last lines are still being read
        Assert.True(Said(), "the gateway neither listened on localhost:8080 nor failed to bind it:\n" + gateway.Log);
        Assert.DoesNotContain("http://[::]:", gateway.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("0.0.0.0:8080", gateway.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_command_line_replaces_a_list_an_empty_variable_removes_a_model_and_start_up_warns_about_unreachable_task_types()
    {
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using var gateway = GatewayProcess.Start(new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = url,
            ["GATEWAY_ADMIN_KEY"] = AdminKey,
            ["Gateway__Models__llama3.2"] = "",
        }, "--Gateway:Routing:TaskTypes:general:Models:0=gpt-4o");
        await gateway.WaitLiveAsync(url);

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        var config = JsonDocument.Parse(await http.GetStringAsync("/admin/config")).RootElement;
        var gatewaySection = config.GetProperty("Gateway");
        var taskTypes = gatewaySection.GetProperty("Routing").GetProperty("TaskTypes");
        Assert.Equal(["general"], taskTypes.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["gpt-4o"], taskTypes.GetProperty("general").GetProperty("Models").EnumerateArray().Select(e => e.GetString()));
        Assert.False(gatewaySection.GetProperty("Models").TryGetProperty("llama3.2", out _));
        Assert.True(gatewaySection.GetProperty("Models").TryGetProperty("gpt-4o", out _));
        Assert.Contains(url, config.GetProperty("Listen").EnumerateArray().Select(e => e.GetString()));

        // No OpenAI key: general can reach nothing, and the log says so once at start-up, naming the variable.
        var warning = gateway.Log.Split('\n').Single(l => l.Contains("Task type", StringComparison.Ordinal) && l.Contains("general", StringComparison.Ordinal));
        Assert.Contains("can reach no model", warning, StringComparison.Ordinal);
        Assert.Contains("OPENAI_API_KEY", warning, StringComparison.Ordinal);
        Assert.Contains("Warning", warning, StringComparison.Ordinal);

        using var auto = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"auto","messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, auto.StatusCode);
    }

    [Fact]
    public async Task Start_up_logs_per_task_type_the_models_auto_can_reach_with_a_key_present()
    {
        const string key = "sk-process-test-key-not-real-0123456789";
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        await using var gateway = GatewayProcess.Start(new Dictionary<string, string?>
        {
            ["ASPNETCORE_URLS"] = url,
            ["OPENAI_API_KEY"] = key,
        });
        await gateway.WaitLiveAsync(url);

        var lines = gateway.Log.Split('\n').Where(l => l.Contains("Task type", StringComparison.Ordinal)).ToList();
        foreach (var taskType in new[] { "general", "sql", "code_generation", "config", "summarization", "complex_reasoning", "analysis", "translation", "extraction" })
        {
            var line = Assert.Single(lines, l => l.Contains($"\"TaskType\":\"{taskType}\"", StringComparison.Ordinal));
            Assert.Contains("auto can reach", line, StringComparison.Ordinal);
            Assert.DoesNotContain("mock-echo", line, StringComparison.Ordinal);
        }
        Assert.Contains(lines, l => l.Contains("\"TaskType\":\"general\"", StringComparison.Ordinal) && l.Contains("gpt-4o-mini, gpt-4o", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("can reach no model", StringComparison.Ordinal));
        Assert.DoesNotContain(key, gateway.Log, StringComparison.Ordinal);
    }
}
