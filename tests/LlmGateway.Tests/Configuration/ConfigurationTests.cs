using LlmGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace LlmGateway.Tests.Configuration;

public class ConfigurationTests
{
    [Fact]
    public void Validation_reports_every_problem_at_once()
    {
        var options = new GatewayOptions
        {
            Providers =
            {
                ["p1"] = new ProviderOptions { Type = "openia", BaseUrl = "not a url" },
                ["az"] = new ProviderOptions { Type = "azure-openai", BaseUrl = "https://x.openai.azure.com", ApiKeyEnv = "sk-this-looks-like-a-key!" },
            },
            Models =
            {
                ["m1"] = new ModelOptions { Provider = "missing", Fallbacks = ["ghost"], Quality = 3 },
            },
            Routing = new RoutingOptions { Strategy = "fastest", TaskTypes = { ["code"] = new TaskTypeOptions { Patterns = ["(unclosed"] } } },
            Budgets = new BudgetOptions { FailMode = "maybe" },
            Auth = new AuthOptions { Mode = "sometimes", Keys = [new KeyOptions { Id = "k", Sha256 = "abc" }] },
            Server = new LlmGateway.Http.ServerOptions { IoScheduling = "threads" },
        };

        var errors = GatewayOptionsValidator.Validate(options);

        string[] expected =
        [
            "Gateway:Providers:p1:Type", "Gateway:Providers:p1:BaseUrl", "Gateway:Providers:az:ApiVersion", "Gateway:Providers:az:ApiKeyEnv",
            "Gateway:Models:m1:Provider", "Gateway:Models:m1:Fallbacks", "Gateway:Models:m1:Quality",
            "Gateway:Routing:Strategy", "Gateway:Routing:DefaultTaskType", "Gateway:Routing:TaskTypes:code:Patterns:0",
            "Gateway:Budgets:FailMode", "Gateway:Auth:Mode", "Gateway:Auth:Keys:0:Sha256", "Gateway:Server:IoScheduling",
        ];
        foreach (var key in expected)
        {
            Assert.Contains(errors, e => e.StartsWith(key, StringComparison.Ordinal));
        }
        // The value that looks like a pasted key is never echoed back.
        Assert.DoesNotContain(errors, e => e.Contains("sk-this-looks-like-a-key", StringComparison.Ordinal));
    }

    [Fact]
    public void A_timeout_beyond_a_timers_reach_is_refused_at_start_and_the_longest_accepted_one_works()
    {
        // 60 days: accepted before, then every request threw (a timer reaches about 49.7 days).
        var options = new GatewayOptions { Resilience = new ResilienceOptions { TotalTimeoutSeconds = 60 * 24 * 3600 } };
        Assert.Contains(GatewayOptionsValidator.Validate(options), e => e.StartsWith("Gateway:Resilience:TotalTimeoutSeconds", StringComparison.Ordinal));
        options.Resilience.TotalTimeoutSeconds = GatewayOptionsValidator.MaxTimeoutSeconds;
        Assert.DoesNotContain(GatewayOptionsValidator.Validate(options), e => e.Contains("TimeoutSeconds", StringComparison.Ordinal));

        // The longest accepted total and limit arm their timers as a request does.
        var longest = TimeSpan.FromSeconds(GatewayOptionsValidator.MaxTimeoutSeconds);
        using var request = LlmGateway.Resilience.TimedCancellation.ForRequest(TimeProvider.System, CancellationToken.None, longest);
        request.CancelAfter(longest);
        request.CancelAfter(Timeout.InfiniteTimeSpan);
        using var uncapped = new LlmGateway.Resilience.TimedCancellation(TimeProvider.System, CancellationToken.None);
        uncapped.CancelAfter(longest);
        Assert.False(request.IsCancellationRequested);
        Assert.False(uncapped.IsCancellationRequested);
    }

    [Fact]
    public void The_shipped_appsettings_is_valid()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        var config = new ConfigurationBuilder().AddJsonFile(path).Build();
        var options = new GatewayOptions();
        config.GetSection(GatewayOptions.SectionName).Bind(options);
        Assert.Empty(GatewayOptionsValidator.Validate(options));
        Assert.Contains("mock-echo", options.Models.Keys);
    }

    [Fact]
    public void Yaml_binds_like_json()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "gw.yaml"), """
                Gateway:
                  Providers:
                    local:
                      Type: ollama
                      BaseUrl: http://127.0.0.1:11434
                  Models:
                    llama:
                      Provider: local
                      UpstreamModel: "llama3.1:8b"
                      CostPer1kInput: 0
                      Capabilities: [tools, json]
                      Fallbacks:
                        - other
                  Routing:
                    LocalOnly: true
                """);
            var config = new ConfigurationBuilder()
                .Add(new YamlConfigurationSource { Path = "gw.yaml", FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(dir.FullName) })
                .Build();
            var options = new GatewayOptions();
            config.GetSection("Gateway").Bind(options);
            Assert.Equal("ollama", options.Providers["local"].Type);
            Assert.True(options.Providers["local"].IsLocal);
            Assert.Equal("llama3.1:8b", options.Models["llama"].UpstreamModel);
            Assert.Equal(["tools", "json"], options.Models["llama"].Capabilities);
            Assert.Equal(["other"], options.Models["llama"].Fallbacks);
            Assert.True(options.Routing.LocalOnly);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Invalid_yaml_is_a_format_error_naming_the_file()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            File.WriteAllText(Path.Combine(dir.FullName, "bad.yml"), "Gateway:\n  Providers: [unclosed\n");
            var builder = new ConfigurationBuilder()
                .Add(new YamlConfigurationSource { Path = "bad.yml", FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(dir.FullName) });
            var e = Assert.ThrowsAny<Exception>(() => builder.Build());
            Assert.Contains("bad.yml", e.ToString());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
