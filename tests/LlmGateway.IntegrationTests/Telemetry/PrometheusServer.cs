using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// A real Prometheus (the Debian package's binary) on a free loopback port, with its own temporary
/// storage, scraping the given target every second. Disposing kills it and deletes its files.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http;

    private PrometheusServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>What Prometheus wrote to stdout and stderr, for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    /// <summary>Starts it; with <paramref name="bearerToken"/> each scrape presents it (the gateway's metrics key), as deploy/prometheus says how.</summary>
    public static async Task<PrometheusServer> StartAsync(string target, string ruleFile, string? bearerToken = null)
    {
        var directory = Directory.CreateTempSubdirectory("llm-gateway-prometheus-").FullName;
        var authorization = "";
        if (bearerToken is not null)
        {
            var keyFile = Path.Combine(directory, "metrics-key");
            await File.WriteAllTextAsync(keyFile, bearerToken);
            authorization = $"""

                    authorization:
                      credentials_file: {keyFile}
                """;
        }
        var config = $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files:
              - {ruleFile}
            scrape_configs:
              - job_name: llm-gateway
                static_configs:
                  - targets: ["{target}"]{authorization}
            """;
        var configFile = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(configFile, config);
        var port = RepoFiles.FreePort();
        var start = new ProcessStartInfo("prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "--config.file=" + configFile,
            "--storage.tsdb.path=" + Path.Combine(directory, "data"),
            $"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        })
        {
            start.ArgumentList.Add(a);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("prometheus did not start");
        var server = new PrometheusServer(process, directory, port);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        await server.WaitUntilAsync(async () =>
        {
            try
            {
                using var ready = await server._http.GetAsync("/-/ready");
                return ready.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, "Prometheus to be ready");
        return server;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    /// <summary>Runs an instant query; the result vector (or the scalar as one sample).</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var response = await _http.GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(promql));
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        if (json.GetProperty("status").GetString() != "success")
        {
            throw new Xunit.Sdk.XunitException($"Prometheus rejected '{promql}': {json}");
        }
        var data = json.GetProperty("data");
        var result = new List<(Dictionary<string, string>, double)>();
        if (data.GetProperty("resultType").GetString() == "scalar")
        {
            result.Add(([], ParseValue(data.GetProperty("result"))));
            return result;
        }
        foreach (var item in data.GetProperty("result").EnumerateArray())
        {
            var labels = new Dictionary<string, string>();
            foreach (var l in item.GetProperty("metric").EnumerateObject()) labels[l.Name] = l.Value.GetString()!;
            result.Add((labels, ParseValue(item.GetProperty("value"))));
        }
        return result;
    }

    /// <summary>The values a label takes on the series matching <paramref name="match"/>, as Grafana's label_values() asks.</summary>
    public async Task<List<string>> LabelValuesAsync(string label, string match)
    {
        using var response = await _http.GetAsync($"/api/v1/label/{Uri.EscapeDataString(label)}/values?match[]={Uri.EscapeDataString(match)}");
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return [.. json.GetProperty("data").EnumerateArray().Select(v => v.GetString()!)];
    }

    /// <summary>Every loaded rule with its health ("ok", "err", "unknown") and last error.</summary>
    public async Task<List<(string Name, string Health, string? Error)>> RulesAsync()
    {
        var json = JsonDocument.Parse(await _http.GetStringAsync("/api/v1/rules")).RootElement;
        var rules = new List<(string, string, string?)>();
        foreach (var group in json.GetProperty("data").GetProperty("groups").EnumerateArray())
        {
            foreach (var rule in group.GetProperty("rules").EnumerateArray())
            {
                rules.Add((rule.GetProperty("name").GetString()!, rule.GetProperty("health").GetString()!,
                    rule.TryGetProperty("lastError", out var e) ? e.GetString() : null));
            }
        }
        return rules;
    }

    /// <summary>Waits (at most 60 s) until the query returns a sample for which <paramref name="condition"/> holds.</summary>
    public Task WaitForAsync(string promql, Func<double, bool> condition, string what) =>
        WaitUntilAsync(async () => (await QueryAsync(promql)).Exists(s => condition(s.Value)), what);

    private async Task WaitUntilAsync(Func<Task<bool>> check, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await check())
        {
            if (_process.HasExited) throw new Xunit.Sdk.XunitException($"Prometheus exited ({_process.ExitCode}) while waiting for {what}:\n{Log}");
            if (deadline.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"Waited too long for {what}.\n{Log}");
            await Task.Delay(200);
        }
    }

    private static double ParseValue(JsonElement pair) => pair[1].GetString() switch
    {
        "NaN" => double.NaN,
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        var s => double.Parse(s!, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(wait.Token);
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is not worth failing a test over.
        }
    }
}
