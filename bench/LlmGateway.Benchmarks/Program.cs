using BenchmarkDotNet.Running;

namespace LlmGateway.Benchmarks;

/// <summary>
/// dotnet run -c Release --project bench/LlmGateway.Benchmarks -- --filter '*' --job short
/// (any BenchmarkDotNet argument works: --list flat, --filter '*Sse*', --memory, --job dry, ...).
/// </summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
