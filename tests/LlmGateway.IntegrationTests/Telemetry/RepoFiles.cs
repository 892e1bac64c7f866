using System.Net;
using System.Net.Sockets;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>Files of the repository the tests check (deploy/, Dockerfile, docker-compose.yml), found from the test binaries upward.</summary>
public static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string Path(string relative) => System.IO.Path.Combine(Root, relative);

    public static string Read(string relative) => File.ReadAllText(Path(relative));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "LlmGateway.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("LlmGateway.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A loopback port free right now, for a process that can't report the port it bound.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
