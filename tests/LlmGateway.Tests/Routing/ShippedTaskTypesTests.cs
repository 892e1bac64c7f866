using LlmGateway.Configuration;
using LlmGateway.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using static LlmGateway.Tests.Routing.RoutingSetup;

namespace LlmGateway.Tests.Routing;

/// <summary>
/// The task types shipped in appsettings.json (copied next to the tests from the repo root) are a
/// product: these are the prompts they promise to recognise, and the ones they must leave alone.
/// </summary>
public class ShippedTaskTypesTests
{
    private static readonly GatewayOptions s_options = Load();

    private static GatewayOptions Load()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: false).Build();
        var options = new GatewayOptions();
        configuration.GetSection(GatewayOptions.SectionName).Bind(options);
        return options;
    }

    private static readonly TaskTypeClassifier s_classifier = new(s_options.Routing, RoutingDefaults.PatternMatchTimeout, NullLogger.Instance);

    [Fact]
    public void The_shipped_configuration_is_valid()
    {
        Assert.Empty(GatewayOptionsValidator.Validate(s_options));
        Assert.True(s_options.Routing.TaskTypes.Count >= 7);
    }

    [Theory]
    [InlineData("Write a SQL query that returns the ten customers with the most orders", "sql")]
    [InlineData("Why is this slow? SELECT * FROM orders o LEFT JOIN customers c ON c.id = o.customer_id", "sql")]
    [InlineData("How do I add an index to this PostgreSQL table?", "sql")]
    [InlineData("Write a Python function that parses a CSV file and returns a list of dicts", "code_generation")]
    [InlineData("Implement a thread-safe LRU cache class in C#", "code_generation")]
    [InlineData("I get a NullReference exception in this code, here is the stack trace: ...", "code_generation")]
    [InlineData("Write a docker-compose file for nginx and redis", "config")]
    [InlineData("What should my YAML config look like to enable TLS?", "config")]
    [InlineData("Summarize this article in three sentences", "summarization")]
    [InlineData("tl;dr of the meeting notes below please", "summarization")]
    [InlineData("Prove that the square root of 2 is irrational", "complex_reasoning")]
    [InlineData("Think step by step: a bat and a ball cost 1.10 in total...", "complex_reasoning")]
    [InlineData("Analyze these requirements for a booking system and list the gaps", "analysis")]
    [InlineData("Compare event sourcing and CRUD for an order service: pros and cons", "analysis")]
    [InlineData("Translate this paragraph into French", "translation")]
    [InlineData("Extract the invoice number and total from the following email", "extraction")]
    [InlineData("Hi! How are you today?", "general")]
    [InlineData("What's a good name for a golden retriever?", "general")]
    [InlineData("Can you select a restaurant for Friday from these three?", "general")]
    [InlineData("Please join me in welcoming our new colleague", "general")]
    public void Realistic_prompts_get_the_task_type_they_are_for(string prompt, string expected)
    {
        using var request = Ask("auto", prompt);
        var match = s_classifier.Classify(request, null, usePatterns: true);
        Assert.True(expected == match.TaskType, $"'{prompt}' was classified {match.TaskType} ({match.Detail})");
    }

    [Fact]
    public void On_a_fresh_install_every_shipped_task_type_says_which_key_is_missing_and_never_falls_to_the_mock()
    {
        // With no provider keys set only the built-in mock is usable, and auto never picks it: every
        // task type must refuse with a 503 naming the missing variable, never answer with an echo.
        var setup = new RoutingSetup();
        foreach (var (name, provider) in s_options.Providers)
        {
            // As on a machine where none of the key variables is set, whatever this one has.
            setup.Options.Providers[name] = new ProviderOptions { Type = provider.Type, BaseUrl = provider.BaseUrl, Local = provider.Local, ApiKeyEnv = provider.ApiKeyEnv is null ? null : MissingKeyVariable };
        }
        foreach (var (name, model) in s_options.Models) setup.Options.Models[name] = model;
        setup.Configure(o => o.Routing = s_options.Routing);
        var router = setup.Build();
        foreach (var taskType in s_options.Routing.TaskTypes.Keys)
        {
            var d = router.Route(Ask("auto"), Headers(("X-Task-Type", taskType)));
            Assert.Empty(d.Candidates);
            Assert.NotNull(d.Error);
            Assert.Equal(503, d.Error.Status);
            Assert.Contains(MissingKeyVariable, d.Error.Message);
            Assert.DoesNotContain(d.Evaluated, c => c.Candidate.Provider.Options.Type == "mock");
        }
    }
}
