using System.Diagnostics;
using System.Net;
using System.Text;
using LlmGateway.IntegrationTests.Telemetry;

namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>
/// The built gateway (src/LlmGateway/bin/{configuration}/net10.0/LlmGateway.dll) started as a child
/// process with its own environment and arguments, as an operator starts it: for what only a real
/// process shows (the listen address, start-up logs). Disposing kills it and waits for it to exit.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private GatewayProcess(Process process) => _process = process;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The process id, for what only /proc shows (its threads).</summary>
    public int Id => _process.Id;

    /// <summary>The Release or Debug build beside the test binaries' own configuration.</summary>
    public static string AppPath
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
            var path = RepoFiles.Path($"src/LlmGateway/bin/{configuration}/net10.0/LlmGateway.dll");
            Assert.True(File.Exists(path), $"{path} is missing: build the solution first");
            return path;
        }
    }

    /// <summary>
    /// Starts the gateway with the variables given (null removes one) on top of this process's
    /// environment minus anything that would pick a listen address or a provider key by accident.
    /// </summary>
    public static GatewayProcess Start(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var app = AppPath;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(app)!,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(app);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var name in new[]
        {
            "URLS", "ASPNETCORE_URLS", "DOTNET_URLS", "ASPNETCORE_HTTP_PORTS", "DOTNET_HTTP_PORTS", "HTTP_PORTS",
            "ASPNETCORE_HTTPS_PORTS", "DOTNET_HTTPS_PORTS", "HTTPS_PORTS", "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT",
            "GATEWAY_CONFIG", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY", "GATEWAY_ADMIN_KEY",
            // Set in this process by every in-process gateway (Http/IoScheduling): a child must make its own choice.
            "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS",
        })
        {
            start.Environment.Remove(name);
        }
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("Kestrel__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("Gateway__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }
        foreach (var (name, value) in environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }

        var process = Process.Start(start)!;
        var gateway = new GatewayProcess(process);
        process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return gateway;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    /// <summary>Waits until <paramref name="baseUrl"/>/health/live answers 200; fails (never returns quietly) when the process exits or a minute passes.</summary>
    public async Task WaitLiveAsync(string baseUrl)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var started = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var live = await http.GetAsync(baseUrl + "/health/live");
                if (live.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            Assert.False(_process.HasExited, $"the gateway exited (code {(_process.HasExited ? _process.ExitCode : 0)}):\n{Log}");
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(60), $"the gateway did not answer {baseUrl}/health/live within 60 s:\n{Log}");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until the process has exited on its own (start-up failed); fails after a minute.</summary>
    public async Task<int> WaitExitAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail("the gateway did not exit within 60 s:\n" + Log);
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL, where a crash is the point: no shutdown hooks, no flushing; what the process held in memory is gone.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
