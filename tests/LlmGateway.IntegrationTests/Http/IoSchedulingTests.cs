using System.Net;
using System.Text;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;

namespace LlmGateway.IntegrationTests.Http;

/// <summary>
/// Gateway:Server:IoScheduling in the built gateway, started as an operator starts it. The socket half of
/// inline scheduling is a runtime switch read once, when the process first uses a socket, so only a real
/// process shows whether the gateway set it in time: the runtime then runs one socket event thread per core
/// (".NET Sockets" in /proc), where its default runs one for up to 30 cores (on a one-core machine the two
/// counts are the same, and this test tells the modes apart only by the answer).
/// </summary>
public sealed class IoSchedulingTests
{
    [Theory]
    [InlineData(null, true)]
    [InlineData("inline", true)]
    [InlineData("thread-pool", false)]
    public async Task The_socket_engine_runs_inline_unless_the_operator_chooses_the_thread_pool(string? mode, bool inline)
    {
        var url = $"http://127.0.0.1:{RepoFiles.FreePort()}";
        var environment = new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Production" };
        if (mode is not null) environment["Gateway__Server__IoScheduling"] = mode;
        await using var gateway = GatewayProcess.Start(environment, "--urls", url);
        await gateway.WaitLiveAsync(url);

        // A request through the whole path: accepted, answered by the built-in mock, written back.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using var answer = await http.PostAsync(url + "/v1/chat/completions", new StringContent(
            """{"model":"mock-echo","messages":[{"role":"user","content":"which thread am I on?"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

        var engines = Directory.GetDirectories($"/proc/{gateway.Id}/task")
            .Count(task => ThreadName(task) == ".NET Sockets");
        // The runtime's rule: with inline completions one event thread per core, else one per 30 cores (at least one).
        var threadPoolEngines = Math.Max(1, (int)Math.Round(Environment.ProcessorCount / 30.0));
        Assert.Equal(inline ? Environment.ProcessorCount : threadPoolEngines, engines);
    }

    /// <summary>A thread's name, or null when it exited while the directory was being read.</summary>
    private static string? ThreadName(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm")).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}
