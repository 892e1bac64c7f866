using LlmGateway.Admin;
using LlmGateway.Auth;
using LlmGateway.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Auth;

public class AuthStartupCheckTests
{
    private sealed class Collecting<T> : ILogger<T>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }

    [Theory]
    [InlineData("http://localhost:8080", true)]
    [InlineData("http://LOCALHOST:8080", true)]
    [InlineData("http://127.0.0.1:5000", true)]
    [InlineData("http://127.1.2.3:5000", true)]
    [InlineData("http://[::1]:5000", true)]
    [InlineData("http://unix:/run/gateway.sock", true)]
    [InlineData("http://0.0.0.0:8080", false)]
    [InlineData("http://[::]:8080", false)]
    [InlineData("http://*:8080", false)]
    [InlineData("http://+:8080", false)]
    [InlineData("http://10.0.0.5:8080", false)]
    [InlineData("https://gateway.internal:443", false)]
    public void Only_addresses_this_machine_alone_can_reach_count_as_loopback(string address, bool loopback) =>
        Assert.Equal(loopback, AuthStartupCheck.IsLoopback(address));

    private static (AuthStartupCheck, Collecting<AuthStartupCheck>) Create(string mode, bool withKey = false)
    {
        var options = new GatewayOptions();
        options.Auth.Mode = mode;
        options.Auth.AdminKeyEnv = "AUTH_STARTUP_CHECK_TESTS_UNSET";
        if (withKey) options.Auth.Keys.Add(new KeyOptions { Id = "k", Sha256 = new string('a', 64) });
        var wrapped = Options.Create(options);
        var logger = new Collecting<AuthStartupCheck>();
        return (new AuthStartupCheck(wrapped, null!, null!, new AdminKey(wrapped), logger), logger);
    }

    [Fact]
    public void Mode_none_on_a_network_address_is_warned_about_and_on_loopback_it_is_not()
    {
        var (check, log) = Create("none");
        check.Check(["http://127.0.0.1:8080"]);
        Assert.Empty(log.Entries);

        check.Check(["http://127.0.0.1:8080", "http://0.0.0.0:8080"]);
        var warning = Assert.Single(log.Entries);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("http://0.0.0.0:8080", warning.Message);
        Assert.Contains("Mode", warning.Message);
    }

    [Fact]
    public void Mode_keys_with_no_key_and_no_admin_api_is_warned_about()
    {
        var (check, log) = Create("keys");
        check.Check(["http://0.0.0.0:8080"]);
        Assert.Equal(LogLevel.Warning, Assert.Single(log.Entries).Level);

        var (withKey, quiet) = Create("keys", withKey: true);
        withKey.Check(["http://0.0.0.0:8080"]);
        Assert.Empty(quiet.Entries);
    }
}
