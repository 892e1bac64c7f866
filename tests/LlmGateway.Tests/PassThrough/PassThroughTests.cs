using System.Text;
using LlmGateway.Configuration;
using LlmGateway.PassThrough;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Tests.PassThrough;

public class PassThroughPathsTests
{
    [Theory]
    [InlineData("/v1/moderations", "", "https://api.openai.com/v1/moderations")]
    [InlineData("/v1/files/file-abc/content", "", "https://api.openai.com/v1/files/file-abc/content")]
    [InlineData("/V1/audio/transcriptions", "?timestamp_granularities%5B%5D=word", "https://api.openai.com/v1/audio/transcriptions?timestamp_granularities%5B%5D=word")]
    [InlineData("/v1/responses/resp%2F1", "", "https://api.openai.com/v1/responses/resp%2F1")]
    public void A_v1_path_maps_onto_the_base_url_with_its_query_and_escaping_kept(string path, string query, string expected)
    {
        Assert.True(PassThroughPaths.TryGetRemainder(PathString.FromUriComponent(path), out var remainder));

        var target = PassThroughPaths.Target("https://api.openai.com/v1", remainder, new QueryString(query.Length == 0 ? null : query));

        Assert.Equal(expected, target.AbsoluteUri);
    }

    [Fact]
    public void Paths_outside_v1_have_no_remainder()
    {
        Assert.False(PassThroughPaths.TryGetRemainder("/v10/moderations", out _));
        Assert.False(PassThroughPaths.TryGetRemainder("/admin/usage", out _));
    }

    [Theory]
    [InlineData("/moderations", "passthrough:moderations")]
    [InlineData("/Audio/speech", "passthrough:audio")]
    [InlineData("/files/file-123", "passthrough:files")]
    [InlineData("/vector_stores/vs_1/files", "passthrough:vector_stores")]
    [InlineData("/something-new-from-openai/x", "passthrough:other")]
    [InlineData("/file-123", "passthrough:other")]
    public void The_label_is_the_first_segment_when_it_is_a_known_resource_and_other_otherwise(string remainder, string expected) =>
        Assert.Equal(expected, PassThroughPaths.Label(PassThroughPaths.FirstSegment(remainder)));

    [Theory]
    [InlineData("/chat/completions", true)]
    [InlineData("/Models", true)]
    [InlineData("/embeddings", true)]
    [InlineData("/conversations/c1", true)]
    [InlineData("/batch/chat/completions", true)]
    [InlineData("/batches", false)]
    [InlineData("/completions", false)]
    [InlineData("/responses", true)]
    [InlineData("/responses/resp_1/input_items", true)]
    public void The_gateways_own_resources_are_never_forwarded(string remainder, bool owned) =>
        Assert.Equal(owned, PassThroughPaths.IsGatewayOwned(PassThroughPaths.FirstSegment(remainder)));
}

public class ResponseUsageTests
{
    private static ResponseUsage Read(string json) => ResponseUsage.Read(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Responses_api_usage_is_read_from_input_and_output_tokens()
    {
        var r = Read("""{"id":"resp_1","output":[{"type":"message","content":[{"text":"{\"model\":\"fake\"}"}]}],"model":"gpt-4o-mini-2024-07-18","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":8},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}""");

        Assert.Equal("gpt-4o-mini-2024-07-18", r.Model);
        Assert.Equal(36, r.Usage.Prompt);
        Assert.Equal(87, r.Usage.Completion);
        Assert.Equal(8, r.Usage.CachedPrompt);
    }

    [Fact]
    public void Chat_style_usage_is_read_from_prompt_and_completion_tokens()
    {
        var r = Read("""{"model":"gpt-3.5-turbo-instruct","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":2}}}""");

        Assert.Equal((5, 7, 2), (r.Usage.Prompt, r.Usage.Completion, r.Usage.CachedPrompt));
    }

    [Fact]
    public void Only_a_total_and_one_side_gives_the_other_side_as_the_difference()
    {
        Assert.Equal((8, 0), (Read("""{"usage":{"prompt_tokens":8,"total_tokens":8}}""").Usage.Prompt, Read("""{"usage":{"prompt_tokens":8,"total_tokens":8}}""").Usage.Completion));
        var onlyTotal = Read("""{"usage":{"total_tokens":20,"output_tokens":5}}""").Usage;
        Assert.Equal((15, 5), (onlyTotal.Prompt, onlyTotal.Completion));
    }

    [Fact]
    public void A_body_without_usage_gives_its_model_and_no_tokens()
    {
        var r = Read("""{"id":"modr-1","model":"omni-moderation-latest","results":[{"flagged":false}]}""");

        Assert.Equal("omni-moderation-latest", r.Model);
        Assert.True(r.Usage.IsEmpty);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2,3]")]
    [InlineData("""{"model":42,"usage":"lots"}""")]
    [InlineData("""{"model":"m","usage":{"input_tokens":-5,"output_tokens":1.5}}""")]
    public void Anything_unreadable_reads_as_nothing_rather_than_failing(string json)
    {
        var r = Read(json);

        Assert.True(r.Usage.IsEmpty);
        Assert.True(r.Model is null or "m");
    }

    [Fact]
    public void A_responses_event_gives_the_model_and_usage_nested_in_its_response()
    {
        var r = ResponseUsage.ReadEvent(Encoding.UTF8.GetBytes("""{"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","model":"gpt-4o","output":[{"type":"message","content":[{"text":"{\"usage\":{\"input_tokens\":999}}"}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":30,"total_tokens":42}}}"""));

        Assert.Equal("gpt-4o", r.Model);
        Assert.Equal((12, 30, 4), (r.Usage.Prompt, r.Usage.Completion, r.Usage.CachedPrompt));
    }

    [Fact]
    public void An_event_cut_inside_its_response_keeps_what_was_read_before_the_cut()
    {
        var r = ResponseUsage.ReadEvent(Encoding.UTF8.GetBytes("""{"type":"response.completed","response":{"model":"gpt-4o","usage":{"input_tokens":3,"output_tokens":4},"outp"""));

        Assert.Equal(("gpt-4o", 3, 4), (r.Model, r.Usage.Prompt, r.Usage.Completion));
    }

    [Fact]
    public void A_plain_json_body_is_not_read_inside_a_response_field()
    {
        var r = Read("""{"response":{"model":"inner","usage":{"input_tokens":1,"output_tokens":1}},"model":"outer"}""");

        Assert.Equal("outer", r.Model);
        Assert.True(r.Usage.IsEmpty);
    }

    [Fact]
    public void A_body_cut_off_keeps_what_was_read_before_the_cut()
    {
        var r = Read("""{"model":"gpt-4o","usage":{"input_tokens":3,"output_tok""");

        Assert.Equal("gpt-4o", r.Model);
    }
}

public class PassThroughOptionsTests
{
    private static GatewayOptions Options(string type, string provider = "p", long maxBytes = 1, int activity = 1) => new()
    {
        Providers = { ["p"] = new ProviderOptions { Type = type, BaseUrl = "https://example.test/v1", ApiVersion = "2024-10-21" } },
        Models = { ["m"] = new ModelOptions { Provider = "p" } },
        PassThrough = new PassThroughOptions { Provider = provider, MaxRequestBytes = maxBytes, ActivityTimeoutSeconds = activity },
    };

    [Fact]
    public void An_openai_provider_is_accepted()
    {
        Assert.Empty(GatewayOptionsValidator.Validate(Options(ProviderTypes.OpenAi)));
    }

    [Fact]
    public void Pass_through_is_off_by_default_and_then_names_no_provider()
    {
        var options = new GatewayOptions();
        Assert.False(options.PassThrough.Enabled);
        Assert.Equal(512L * 1024 * 1024, options.PassThrough.MaxRequestBytes);
    }

    [Theory]
    [InlineData(ProviderTypes.AzureOpenAi, "azure-openai, which pass-through does not support")]
    [InlineData(ProviderTypes.Anthropic, "needs a provider of type openai")]
    [InlineData(ProviderTypes.Mock, "needs a provider of type openai")]
    public void A_provider_that_does_not_speak_openais_wire_unchanged_stops_start_up(string type, string expected)
    {
        var errors = GatewayOptionsValidator.Validate(Options(type));

        Assert.Contains(errors, e => e.StartsWith("Gateway:PassThrough:Provider", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_provider_and_bad_limits_are_all_reported_at_once()
    {
        var errors = GatewayOptionsValidator.Validate(Options(ProviderTypes.OpenAi, provider: "nope", maxBytes: 0, activity: 0));

        Assert.Contains(errors, e => e.StartsWith("Gateway:PassThrough:Provider 'nope' is not defined", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:PassThrough:MaxRequestBytes", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Gateway:PassThrough:ActivityTimeoutSeconds", StringComparison.Ordinal));
    }
}

public class ResponseTeeTests
{
    [Fact]
    public async Task Every_byte_goes_through_and_a_copy_is_kept_up_to_the_limit()
    {
        using var inner = new MemoryStream();
        using var tee = new ResponseTee(inner, initialCapacity: 4, limit: 1000);

        await tee.WriteAsync(Encoding.UTF8.GetBytes("{\"model\":"));
        tee.Write(Encoding.UTF8.GetBytes("\"m\"}"));
        await tee.FlushAsync();

        Assert.Equal("{\"model\":\"m\"}", Encoding.UTF8.GetString(inner.ToArray()));
        Assert.False(tee.Overflowed);
        Assert.Equal("{\"model\":\"m\"}", Encoding.UTF8.GetString(tee.Captured));
    }

    [Fact]
    public async Task Past_the_limit_the_copy_is_dropped_but_the_bytes_still_go_through()
    {
        using var inner = new MemoryStream();
        using var tee = new ResponseTee(inner, initialCapacity: 16, limit: 300);
        var chunk = new byte[200];

        await tee.WriteAsync(chunk);
        await tee.WriteAsync(chunk);

        Assert.Equal(400, inner.Length);
        Assert.True(tee.Overflowed);
        Assert.True(tee.Captured.IsEmpty);
    }
}
