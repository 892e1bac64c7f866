using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Http;

namespace LlmGateway.Embeddings;

/// <summary>The shape of an embeddings <c>input</c>: text, or token ids a tokenizer already produced.</summary>
public enum EmbeddingInputKind
{
    Text,
    Tokens,
}

/// <summary>
/// A parsed <c>POST /v1/embeddings</c> body (OpenAI's shape). <c>input</c> is a string, an array of
/// strings, an array of token ids, or an array of arrays of token ids; every form is checked here so a
/// translating provider never meets one it can't read. Fields the gateway doesn't act on (<c>user</c>,
/// anything newer) go to an OpenAI-compatible upstream unchanged.
/// </summary>
public sealed class EmbeddingsRequest : GatewayRequest
{
    public const string FloatFormat = "float";
    public const string Base64Format = "base64";

    private EmbeddingsRequest(JsonDocument document, ReadOnlyMemory<byte> body) : base(document, body)
    {
        // Embeddings generate no tokens: no output allowance in cost estimates, TPM or the context window.
        MaxTokens = 0;
    }

    public override RequestOperation Operation => RequestOperation.Embeddings;

    /// <summary>A model maps the same input to the same vector.</summary>
    public override bool IsReproducible => true;

    public EmbeddingInputKind InputKind { get; private set; }

    /// <summary>How many vectors the answer holds.</summary>
    public int InputCount { get; private set; }

    /// <summary>float (the default) or base64 (little-endian float32s; what the official SDKs ask for).</summary>
    public string EncodingFormat { get; private set; } = FloatFormat;
    public int? Dimensions { get; private set; }

    /// <summary>The largest single input, estimated: it, not the sum, must fit the model's context window.</summary>
    public override int ContextTokens => _largestInputTokens;
    private int _largestInputTokens;

    /// <summary>The text inputs, in order (only for <see cref="EmbeddingInputKind.Text"/>).</summary>
    public string[] Texts()
    {
        var input = Root.GetProperty("input"u8);
        if (input.ValueKind == JsonValueKind.String) return [input.GetString()!];
        var texts = new string[input.GetArrayLength()];
        var i = 0;
        foreach (var item in input.EnumerateArray()) texts[i++] = item.GetString()!;
        return texts;
    }

    public static EmbeddingsRequest? TryParse(ReadOnlyMemory<byte> body, out ApiError? error) =>
        TryParse(body, static (document, bytes) => new EmbeddingsRequest(document, bytes), out error);

    protected override ApiError? Read()
    {
        var root = Root;
        var hasInput = false;
        foreach (var p in root.EnumerateObject())
        {
            var v = p.Value;
            switch (p.Name)
            {
                case "model":
                    if (ReadModel(v) is { } modelError) return modelError;
                    break;
                case "input":
                    if (ReadInput(v) is { } inputError) return inputError;
                    hasInput = true;
                    break;
                case "encoding_format":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.String || (!v.ValueEquals(FloatFormat) && !v.ValueEquals(Base64Format)))
                        return ApiError.InvalidRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format");
                    EncodingFormat = v.GetString()!;
                    break;
                case "dimensions":
                    if (v.ValueKind == JsonValueKind.Null) break;
                    if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var dims) || dims < 1)
                        return ApiError.InvalidRequest("'dimensions' must be a positive integer.", "dimensions");
                    Dimensions = dims;
                    break;
                case "user":
                    if (v.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                        return ApiError.InvalidRequest("'user' must be a string.", "user");
                    break;
            }
        }
        if (Model.Length == 0) return ApiError.InvalidRequest("'model' is required.", "model");
        if (!hasInput) return ApiError.InvalidRequest("'input' is required.", "input");
        return null;
    }

    /// <summary>
    /// The vector length and the number of vectors decide the size of the answer (the mock allocates exactly
    /// that), so both are held to Gateway:Limits before any provider is asked.
    /// </summary>
    public override ApiError? CheckLimits(Configuration.LimitsOptions limits)
    {
        if (Dimensions > limits.MaxEmbeddingDimensions) return OverLimit("dimensions", Dimensions.Value, limits.MaxEmbeddingDimensions, nameof(limits.MaxEmbeddingDimensions));
        if (InputCount > limits.MaxEmbeddingInputs) return OverLimit("input", InputCount, limits.MaxEmbeddingInputs, nameof(limits.MaxEmbeddingInputs), " entries");
        return null;
    }

    private ApiError? ReadInput(JsonElement v)
    {
        const string Shape = "'input' must be a non-empty string, an array of non-empty strings, an array of token ids, or an array of arrays of token ids.";
        long total = 0, largest = 0;
        switch (v.ValueKind)
        {
            case JsonValueKind.String:
                var text = v.GetString()!;
                if (text.Length == 0) return ApiError.InvalidRequest(Shape, "input");
                InputKind = EmbeddingInputKind.Text;
                InputCount = 1;
                total = largest = TokenEstimator.FromText(text);
                break;
            case JsonValueKind.Array:
                var count = v.GetArrayLength();
                if (count == 0) return ApiError.InvalidRequest(Shape, "input");
                var first = v[0].ValueKind;
                if (first == JsonValueKind.Number)
                {
                    // One input given as token ids.
                    foreach (var id in v.EnumerateArray())
                    {
                        if (!IsTokenId(id)) return ApiError.InvalidRequest(Shape, "input");
                    }
                    InputKind = EmbeddingInputKind.Tokens;
                    InputCount = 1;
                    total = largest = count;
                    break;
                }
                var i = 0;
                foreach (var item in v.EnumerateArray())
                {
                    long tokens;
                    if (first == JsonValueKind.String && item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 } s)
                    {
                        tokens = TokenEstimator.FromText(s);
                    }
                    else if (first == JsonValueKind.Array && item.ValueKind == JsonValueKind.Array && item.GetArrayLength() > 0)
                    {
                        foreach (var id in item.EnumerateArray())
                        {
                            if (!IsTokenId(id)) return ApiError.InvalidRequest(Shape, $"input[{i}]");
                        }
                        tokens = item.GetArrayLength();
                    }
                    else
                    {
                        return ApiError.InvalidRequest(Shape, $"input[{i}]");
                    }
                    total += tokens;
                    largest = Math.Max(largest, tokens);
                    i++;
                }
                InputKind = first == JsonValueKind.String ? EmbeddingInputKind.Text : EmbeddingInputKind.Tokens;
                InputCount = count;
                break;
            default:
                return ApiError.InvalidRequest(Shape, "input");
        }
        EstimatedPromptTokens = (int)Math.Min(total, int.MaxValue);
        _largestInputTokens = (int)Math.Min(largest, int.MaxValue);
        return null;
    }

    private static bool IsTokenId(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0;
}
