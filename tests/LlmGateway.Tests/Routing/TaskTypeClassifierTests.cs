using LlmGateway.Configuration;
using LlmGateway.Routing;
using Microsoft.AspNetCore.Http;
using static LlmGateway.Tests.Routing.RoutingSetup;

namespace LlmGateway.Tests.Routing;

public class TaskTypeClassifierTests
{
    private static RoutingOptions Options(params (string Name, int Priority, string[] Patterns)[] taskTypes)
    {
        var options = new RoutingOptions { DefaultTaskType = "general" };
        options.TaskTypes["general"] = new TaskTypeOptions();
        foreach (var (name, priority, patterns) in taskTypes) options.TaskTypes[name] = new TaskTypeOptions { Priority = priority, Patterns = [.. patterns] };
        return options;
    }

    private static TaskTypeClassifier Classifier(RoutingOptions options, int timeoutMs = 1000) => new(options, TimeSpan.FromMilliseconds(timeoutMs));

    private static readonly RoutingOptions Sql = Options(("sql", 10, [@"\bselect\b"]), ("analysis", 20, [@"\banaly[sz]e\b"]));

    [Fact]
    public void The_header_wins_over_metadata_and_patterns()
    {
        using var request = Ask("auto", "please analyze this select statement", ""","metadata":{"task_type":"analysis"}""");
        var match = Classifier(Sql).Classify(request, Headers(("X-Task-Type", "SQL")).Hints.TaskType, usePatterns: true);
        Assert.Equal(new TaskTypeMatch("sql", TaskTypeSources.Header), match);
    }

    [Fact]
    public void Metadata_wins_over_patterns()
    {
        using var request = Ask("auto", "select one", ""","metadata":{"task_type":"analysis"}""");
        var match = Classifier(Sql).Classify(request, null, usePatterns: true);
        Assert.Equal(("analysis", TaskTypeSources.Metadata), (match.TaskType, match.Source));
    }

    [Fact]
    public void The_first_task_type_by_priority_whose_pattern_matches_wins()
    {
        // Both match; "sql" has the lower Priority although "analysis" sorts first by name.
        using var request = Ask("auto", "Analyze why this SELECT is slow");
        var match = Classifier(Sql).Classify(request, null, usePatterns: true);
        Assert.Equal("sql", match.TaskType);
        Assert.Equal(TaskTypeSources.Pattern, match.Source);
        Assert.Contains(@"\bselect\b", match.Detail);

        var flipped = Options(("sql", 30, [@"\bselect\b"]), ("analysis", 20, [@"\banaly[sz]e\b"]));
        Assert.Equal("analysis", Classifier(flipped).Classify(request, null, usePatterns: true).TaskType);
    }

    [Fact]
    public void Patterns_read_the_last_user_message_only()
    {
        using var request = Request("""
            {"model":"auto","messages":[{"role":"system","content":"You analyze things."},{"role":"user","content":"select a plan"},
             {"role":"assistant","content":"ok, let me analyze"},{"role":"user","content":"thanks, and now?"}]}
            """);
        var match = Classifier(Sql).Classify(request, null, usePatterns: true);
        Assert.Equal(new TaskTypeMatch("general", TaskTypeSources.Default), match);
    }

    [Fact]
    public void Nothing_matching_means_the_default()
    {
        using var request = Ask("auto", "Tell me a joke");
        Assert.Equal(new TaskTypeMatch("general", TaskTypeSources.Default), Classifier(Sql).Classify(request, null, usePatterns: true));
    }

    [Fact]
    public void An_unknown_task_type_from_the_header_or_metadata_falls_back_to_the_default_and_says_so()
    {
        using var request = Ask("auto", "select * from t");
        var header = Classifier(Sql).Classify(request, Headers(("X-Task-Type", "poetry")).Hints.TaskType, usePatterns: true);
        Assert.Equal(("general", TaskTypeSources.Default), (header.TaskType, header.Source));
        Assert.Contains("X-Task-Type header 'poetry' is not a configured task type", header.Detail);

        using var withMetadata = Ask("auto", "select * from t", ""","metadata":{"task_type":"haiku"}""");
        var metadata = Classifier(Sql).Classify(withMetadata, null, usePatterns: true);
        Assert.Equal("general", metadata.TaskType);
        Assert.Contains("metadata.task_type 'haiku'", metadata.Detail);
    }

    [Fact]
    public void A_named_model_is_not_classified_by_patterns()
    {
        using var request = Ask("some-model", "select * from t");
        Assert.Equal("general", Classifier(Sql).Classify(request, null, usePatterns: false).TaskType);
        Assert.Equal("sql", Classifier(Sql).Classify(request, Headers(("X-Task-Type", "sql")).Hints.TaskType, usePatterns: false).TaskType);
    }

    [Fact]
    public void A_pattern_that_times_out_counts_as_no_match()
    {
        // The left branch backtracks exponentially on a run of word characters followed by '!'; the
        // right branch would match that '!' once it was done, long after the timeout.
        var options = Options(("runaway", 10, [@"^(\w+\s?)*$|!"]));
        using var pathological = Ask("auto", string.Concat(Enumerable.Repeat("ab", 24)) + "!");
        var match = Classifier(options, timeoutMs: 20).Classify(pathological, null, usePatterns: true);
        Assert.Equal(new TaskTypeMatch("general", TaskTypeSources.Default), match);

        // The same pattern matches where it finishes in time, so the default above was the timeout.
        using var quick = Ask("auto", "!");
        Assert.Equal("runaway", Classifier(options).Classify(quick, null, usePatterns: true).TaskType);
    }

    [Fact]
    public void A_long_message_is_matched_on_its_start_and_its_end()
    {
        var filler = new string('x', RoutingDefaults.PatternScanChars * 2);
        using var atStart = Ask("auto", "select this: " + filler);
        using var atEnd = Ask("auto", filler + " now analyze it");
        using var inMiddle = Ask("auto", filler + " select " + filler);
        var classifier = Classifier(Sql);
        Assert.Equal("sql", classifier.Classify(atStart, null, usePatterns: true).TaskType);
        Assert.Equal("analysis", classifier.Classify(atEnd, null, usePatterns: true).TaskType);
        Assert.Equal("general", classifier.Classify(inMiddle, null, usePatterns: true).TaskType);
    }

    [Fact]
    public void Patterns_ignore_case_and_read_text_parts()
    {
        using var request = Request("""{"model":"auto","messages":[{"role":"user","content":[{"type":"text","text":"SeLeCt it"}]}]}""");
        Assert.Equal("sql", Classifier(Sql).Classify(request, null, usePatterns: true).TaskType);
    }
}
