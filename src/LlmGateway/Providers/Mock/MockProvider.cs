using System.Security.Cryptography;
using System.Text.Json;
using LlmGateway.ChatCompletions;
using LlmGateway.Embeddings;
using LlmGateway.Configuration;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Providers.Mock;

/// <summary>
/// The built-in provider: answers with the last user message, deterministically, with configurable
/// latency and chunking; embeds text as deterministic pseudo-random unit vectors. It lets a newcomer's first request work offline and gives the benchmarks
/// an upstream with no network in the way.
/// </summary>
public sealed class MockProvider(string name, ProviderOptions options, TimeProvider time) : IChatProvider
{
    public const string EmptyPromptAnswer = "Hello from the LlmGateway mock provider.";

    public string Name { get; } = name;
    public ProviderOptions Options { get; } = options;
    public bool IsUsable => true;
    public string? UnusableReason => null;

    /// <summary>Vector length when the request sets no <c>dimensions</c>: small, since the vectors only show the path works.</summary>
    public const int DefaultDimensions = 16;

    public async ValueTask<ProviderResponse> SendAsync(ProviderRequest request, CancellationToken cancellationToken)
    {
        var mock = Options.Mock;
        if (request.Operation == RequestOperation.Embeddings)
        {
            if (mock.LatencyMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(mock.LatencyMs), time, cancellationToken).ConfigureAwait(false);
            return Embed(request);
        }
        var text = request.Chat.LastUserText;
        if (text.Length == 0) text = EmptyPromptAnswer;
        var finish = "stop";
        if (request.Chat.MaxTokens is { } max && TokenEstimator.FromText(text) > max)
        {
            text = text[..Math.Min(text.Length, max * TokenEstimator.CharsPerToken)];
            finish = "length";
        }
        var usage = new TokenUsage(request.Chat.EstimatedPromptTokens, TokenEstimator.FromText(text));
        var id = Http.RandomIds.New("chatcmpl-mock-", 24);
        var created = time.GetUtcNow().ToUnixTimeSeconds();

        if (!request.Stream)
        {
            if (mock.LatencyMs > 0) await Task.Delay(TimeSpan.FromMilliseconds(mock.LatencyMs), time, cancellationToken).ConfigureAwait(false);
            return ProviderResponse.Completed(OpenAiJson.Completion(id, created, request.UpstreamModel, text, finish, usage), usage, finish);
        }
        return ProviderResponse.Streaming(new MockStream(new ChunkBuilder(id, created, request.UpstreamModel), Split(text, mock.Chunks), finish, usage, mock, time));
    }

    /// <summary>
    /// One unit vector per input, derived from a hash of the input: the same text always gets the same
    /// vector, different texts different ones, so a client's similarity code has something to chew on.
    /// </summary>
    private static ProviderResponse Embed(ProviderRequest request)
    {
        var embeddings = request.Embeddings;
        var dimensions = embeddings.Dimensions ?? DefaultDimensions;
        var vector = new float[dimensions];
        using var answer = new EmbeddingsResponseBuilder(request.UpstreamModel, embeddings.EncodingFormat);
        var input = embeddings.Root.GetProperty("input"u8);
        // One input: a string, or one list of token ids; otherwise an array of inputs.
        if (input.ValueKind == JsonValueKind.String || input[0].ValueKind == JsonValueKind.Number)
        {
            answer.Add(Vector(input, vector));
        }
        else
        {
            foreach (var item in input.EnumerateArray()) answer.Add(Vector(item, vector));
        }
        var usage = new TokenUsage(embeddings.EstimatedPromptTokens, 0);
        return ProviderResponse.Completed(answer.Finish(usage), usage, null);
    }

    private static float[] Vector(JsonElement input, float[] vector)
    {
        var seed = BitConverter.ToInt32(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(input.GetRawText())));
        var random = new Random(seed);
        var norm = 0.0;
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = (float)(random.NextDouble() * 2 - 1);
            norm += vector[i] * vector[i];
        }
        var scale = (float)(1 / Math.Sqrt(norm));
        for (var i = 0; i < vector.Length; i++) vector[i] *= scale;
        return vector;
    }

    /// <summary>Cuts the answer at word boundaries into at most <paramref name="chunks"/> pieces.</summary>
    internal static List<string> Split(string text, int chunks)
    {
        var words = text.Split(' ');
        var pieces = new List<string>(Math.Min(chunks, words.Length));
        var perPiece = (words.Length + chunks - 1) / chunks;
        for (var i = 0; i < words.Length; i += perPiece)
        {
            var piece = string.Join(' ', words, i, Math.Min(perPiece, words.Length - i));
            pieces.Add(i + perPiece < words.Length ? piece + " " : piece);
        }
        return pieces;
    }

    private sealed class MockStream(ChunkBuilder chunks, List<string> pieces, string finish, TokenUsage usage, MockProviderOptions mock, TimeProvider time) : ChatStream
    {
        private int _next = -1;

        public override async ValueTask<StreamEvent> ReadAsync(CancellationToken cancellationToken)
        {
            var step = _next++;
            var delay = step switch
            {
                -1 => mock.LatencyMs,
                _ when step < pieces.Count => mock.ChunkDelayMs,
                _ => 0,
            };
            if (delay > 0) await Task.Delay(TimeSpan.FromMilliseconds(delay), time, cancellationToken).ConfigureAwait(false);

            if (step == -1) return new StreamEvent(StreamEventKind.Chunk, chunks.Role());
            if (step < pieces.Count)
            {
                Usage = new TokenUsage(usage.Prompt, TokenEstimator.FromText(string.Concat(pieces.Take(step + 1))));
                return new StreamEvent(StreamEventKind.Content, chunks.Content(pieces[step]));
            }
            if (step == pieces.Count)
            {
                FinishReason = finish;
                Usage = usage;
                return new StreamEvent(StreamEventKind.Content, chunks.Finish(finish));
            }
            if (step == pieces.Count + 1) return new StreamEvent(StreamEventKind.Usage, chunks.Usage(usage));
            return StreamEvent.EndOfStream;
        }

        public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

public sealed class MockProviderFactory(TimeProvider time) : IChatProviderFactory
{
    public string Type => ProviderTypes.Mock;
    public IChatProvider Create(string name, ProviderOptions options) => new MockProvider(name, options, time);
}
