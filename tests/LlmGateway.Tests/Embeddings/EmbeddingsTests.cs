using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Embeddings;
using LlmGateway.Providers;

namespace LlmGateway.Tests.Embeddings;

public sealed class EmbeddingsRequestTests
{
    private static EmbeddingsRequest Parse(string json)
    {
        var request = EmbeddingsRequest.TryParse(Encoding.UTF8.GetBytes(json), out var error);
        Assert.Null(error);
        return request!;
    }

    [Fact]
    public void Text_inputs_are_counted_estimated_and_sized_by_the_largest_one()
    {
        using var request = Parse("""{"model":"m","input":["abcd","abcdefghijklmnop"],"dimensions":256,"encoding_format":"base64"}""");

        Assert.Equal(RequestOperation.Embeddings, request.Operation);
        Assert.Equal(EmbeddingInputKind.Text, request.InputKind);
        Assert.Equal(2, request.InputCount);
        Assert.Equal(5, request.EstimatedPromptTokens); // 1 + 4: a token per 4 characters
        Assert.Equal(4, request.ContextTokens);         // each input has the window to itself
        Assert.Equal(0, request.MaxTokens);
        Assert.Equal(256, request.Dimensions);
        Assert.Equal("base64", request.EncodingFormat);
        Assert.True(request.IsReproducible);
        Assert.False(request.Stream);
        Assert.Equal(["abcd", "abcdefghijklmnop"], request.Texts());
    }

    [Fact]
    public void Token_id_inputs_count_one_token_per_id()
    {
        using var one = Parse("""{"model":"m","input":[1,2,3]}""");
        using var many = Parse("""{"model":"m","input":[[1,2],[3,4,5,6]]}""");

        Assert.Equal((EmbeddingInputKind.Tokens, 1, 3, 3), (one.InputKind, one.InputCount, one.EstimatedPromptTokens, one.ContextTokens));
        Assert.Equal((EmbeddingInputKind.Tokens, 2, 6, 4), (many.InputKind, many.InputCount, many.EstimatedPromptTokens, many.ContextTokens));
    }

    [Theory]
    [InlineData("[]", "input")]
    [InlineData("\"\"", "input")]
    [InlineData("[\"a\",\"\"]", "input[1]")]
    [InlineData("[[1],[]]", "input[1]")]
    [InlineData("[1,\"a\"]", "input")]
    [InlineData("[1.5]", "input")]
    [InlineData("null", "input")]
    public void Malformed_inputs_name_the_entry_at_fault(string input, string param)
    {
        var request = EmbeddingsRequest.TryParse(Encoding.UTF8.GetBytes($$"""{"model":"m","input":{{input}}}"""), out var error);

        Assert.Null(request);
        Assert.Equal(param, error!.Param);
        Assert.Equal(400, error.Status);
    }

    [Theory]
    [InlineData(2048, 4096, null)]
    [InlineData(2049, 16, "input")]
    [InlineData(1, 4097, "dimensions")]
    [InlineData(1, 100_000_000, "dimensions")]
    public void Input_count_and_dimensions_are_held_to_the_configured_limits(int inputs, int dimensions, string? param)
    {
        var input = "[" + string.Join(",", Enumerable.Repeat("\"a\"", inputs)) + "]";
        using var request = Parse($$"""{"model":"m","input":{{input}},"dimensions":{{dimensions}}}""");

        var error = request.CheckLimits(new LimitsOptions());

        Assert.Equal(param, error?.Param);
        if (param is null) return;
        Assert.Equal(400, error!.Status);
        Assert.Equal("invalid_request_error", error.Type);
        Assert.Contains(param == "input" ? "Gateway:Limits:MaxEmbeddingInputs" : "Gateway:Limits:MaxEmbeddingDimensions", error.Message);
    }

    [Fact]
    public void An_operator_may_raise_the_dimensions_limit()
    {
        using var request = Parse("""{"model":"m","input":"a","dimensions":8192}""");

        Assert.NotNull(request.CheckLimits(new LimitsOptions()));
        Assert.Null(request.CheckLimits(new LimitsOptions { MaxEmbeddingDimensions = 8192 }));
    }
}

public sealed class EmbeddingsResponseBuilderTests
{
    [Fact]
    public void Float_vectors_keep_the_providers_digits_and_base64_vectors_are_little_endian_float32()
    {
        using var doc = JsonDocument.Parse("[0.0100710290, -1.5, 3]");

        using var floats = new EmbeddingsResponseBuilder("m", EmbeddingsRequest.FloatFormat);
        floats.Add(doc.RootElement);
        var floatBody = JsonDocument.Parse(floats.Finish(new TokenUsage(5, 0))).RootElement;

        using var base64 = new EmbeddingsResponseBuilder("m", EmbeddingsRequest.Base64Format);
        base64.Add(doc.RootElement);
        base64.Add([0.5f, -0.25f]);
        var base64Body = JsonDocument.Parse(base64.Finish(new TokenUsage(5, 0))).RootElement;

        Assert.Equal("[0.0100710290,-1.5,3]", floatBody.GetProperty("data")[0].GetProperty("embedding").GetRawText());
        Assert.Equal("list", floatBody.GetProperty("object").GetString());
        Assert.Equal(5, floatBody.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, floatBody.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        var bytes = Convert.FromBase64String(base64Body.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        Assert.Equal(12, bytes.Length);
        Assert.Equal(0.010071029f, BinaryPrimitives.ReadSingleLittleEndian(bytes));
        Assert.Equal(-1.5f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(4)));
        Assert.Equal(1, base64Body.GetProperty("data")[1].GetProperty("index").GetInt32());
        Assert.Equal(-0.25f, BinaryPrimitives.ReadSingleLittleEndian(Convert.FromBase64String(base64Body.GetProperty("data")[1].GetProperty("embedding").GetString()!).AsSpan(4)));
    }

    [Fact]
    public void A_vector_that_is_not_numbers_is_a_protocol_error_not_a_silent_answer()
    {
        using var doc = JsonDocument.Parse("""[0.1, "x"]""");
        using var builder = new EmbeddingsResponseBuilder("m", EmbeddingsRequest.FloatFormat);

        Assert.Throws<FormatException>(() => builder.Add(doc.RootElement));
    }
}

public sealed class EmbeddingsConfigurationTests
{
    private static GatewayOptions Options() => new()
    {
        Providers =
        {
            ["oa"] = new ProviderOptions { Type = "openai", BaseUrl = "https://api.openai.com/v1" },
            ["claude"] = new ProviderOptions { Type = "anthropic", BaseUrl = "https://api.anthropic.com" },
        },
        Models =
        {
            ["emb"] = new ModelOptions { Provider = "oa", Capabilities = ["embeddings"], MaxOutputTokens = 0 },
            ["chat"] = new ModelOptions { Provider = "oa" },
        },
    };

    [Fact]
    public void An_embeddings_model_needs_no_output_limit()
    {
        Assert.Empty(GatewayOptionsValidator.Validate(Options()));
    }

    [Fact]
    public void Embeddings_on_a_provider_without_an_embeddings_API_and_mixed_kinds_are_refused_at_start_up()
    {
        var options = Options();
        options.Models["claude-emb"] = new ModelOptions { Provider = "claude", Capabilities = ["embeddings"] };
        options.Models["emb"].Fallbacks = ["chat"];
        options.Routing.DefaultTaskType = "general";
        options.Routing.TaskTypes["general"] = new TaskTypeOptions { Models = ["chat", "emb"] };
        options.Routing.TaskTypes["embeddings"] = new TaskTypeOptions { Models = ["chat"] };

        var errors = GatewayOptionsValidator.Validate(options);

        Assert.Contains(errors, e => e.Contains("Gateway:Models:claude-emb", StringComparison.Ordinal) && e.Contains("no embeddings API", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Models:emb:Fallbacks names 'chat', a chat model", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Routing:TaskTypes:general:Models names 'emb', an embeddings model", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Routing:TaskTypes:embeddings:Models names 'chat', a chat model", StringComparison.Ordinal));
        Assert.Equal(4, errors.Count);
    }
}
