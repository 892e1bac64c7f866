using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace LlmGateway.IntegrationTests.Storage;

/// <summary>
/// A real redis-server on a free loopback port, with no persistence and its own temp directory;
/// stopped (and the directory removed) on dispose. <see cref="StopAsync"/> and <see cref="StartAsync"/>
/// let a test take it down and bring it back on the same port.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llmgw-redis-").FullName;
    private Process? _process;

    /// <summary>When set, the server requires it (requirepass) and the connection string carries it.</summary>
    public string? Password { get; init; }

    public int Port { get; private set; }

    /// <summary>A StackExchange.Redis connection string for this server.</summary>
    public string ConnectionString => Password is null ? $"127.0.0.1:{Port}" : $"127.0.0.1:{Port},password={Password}";

    public bool IsRunning => _process is { HasExited: false };

    public async Task InitializeAsync()
    {
        Port = FreePort();
        await StartAsync();
    }

    public async Task StartAsync()
    {
        if (IsRunning) return;
        var start = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir,
        };
        foreach (var arg in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _dir, "--daemonize", "no" })
        {
            start.ArgumentList.Add(arg);
        }
        if (Password is not null)
        {
            start.ArgumentList.Add("--requirepass");
            start.ArgumentList.Add(Password);
        }
        try
        {
            _process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed: run ./scripts/test.sh, which installs it.", e);
        }
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"redis-server exited at start with code {_process.ExitCode} (port {Port}).");
            if (await CommandAsync("PING") == "+PONG") return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"redis-server did not answer PING on port {Port} within 10 s.");
            await Task.Delay(20);
        }
    }

    /// <summary>Stops the server. With <paramref name="keepData"/> it saves first and the next start loads it, as a Redis with persistence would.</summary>
    public async Task StopAsync(bool keepData = true)
    {
        if (!IsRunning) return;
        await CommandAsync(keepData ? "SHUTDOWN SAVE" : "SHUTDOWN NOSAVE");
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process!.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            _process!.Kill();
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>One inline command; the first line of the reply, or null when nothing answered.</summary>
    public async Task<string?> CommandAsync(string command)
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
            var stream = client.GetStream();
            var text = Password is null ? command + "\r\n" : $"AUTH {Password}\r\n{command}\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(text), timeout.Token);
            var replies = new StringBuilder();
            var buffer = new byte[4096];
            var expected = Password is null ? 1 : 2;
            while (replies.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length < expected)
            {
                var read = await stream.ReadAsync(buffer, timeout.Token);
                if (read == 0) break;
                replies.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
            var lines = replies.ToString().Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
            return lines.Length < expected ? null : lines[expected - 1];
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>One redis-server for every test class in the collection (they run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}

/// <summary>
/// A clock whose wall time the test sets (budget windows, cache TTLs in memory). Timers and
/// timestamps stay real, so timeouts and delays elsewhere in the gateway behave as usual.
/// </summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);

    public void Set(DateTimeOffset now) => Interlocked.Exchange(ref _ticks, now.UtcTicks);
}
