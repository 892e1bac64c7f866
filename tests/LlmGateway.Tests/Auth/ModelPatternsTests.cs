using LlmGateway.Auth;

namespace LlmGateway.Tests.Auth;

public class ModelPatternsTests
{
    [Theory]
    [InlineData("*", "anything", true)]
    [InlineData("gpt-4o", "gpt-4o", true)]
    [InlineData("gpt-4o", "GPT-4O", true)]
    [InlineData("gpt-4o", "gpt-4o-mini", false)]
    [InlineData("gpt-4o*", "gpt-4o-mini", true)]
    [InlineData("gpt-4o*", "gpt-4", false)]
    [InlineData("*-mini", "gpt-4o-mini", true)]
    [InlineData("*-mini", "gpt-4o-mini-2", false)]
    [InlineData("claude-*-sonnet*", "claude-3-5-sonnet-latest", true)]
    [InlineData("claude-*-sonnet*", "claude-3-5-haiku", false)]
    [InlineData("model-?", "model-a", true)]
    [InlineData("model-?", "model-ab", false)]
    [InlineData("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", false)]
    [InlineData("", "", true)]
    [InlineData("", "x", false)]
    public void Glob_matches_names_case_insensitively(string pattern, string model, bool expected) =>
        Assert.Equal(expected, ModelPatterns.Glob(pattern, model));

    [Fact]
    public void A_model_is_allowed_when_any_pattern_matches_and_an_empty_list_allows_nothing()
    {
        var patterns = new ModelPatterns(["gpt-4o-mini", "mock-*"]);
        Assert.True(patterns.Allows("mock-echo"));
        Assert.True(patterns.Allows("gpt-4o-mini"));
        Assert.False(patterns.Allows("gpt-4o"));
        Assert.False(new ModelPatterns([]).Allows("gpt-4o"));
        Assert.True(ModelPatterns.All.Allows("whatever"));
    }
}
