namespace LlmGateway.Batches;

/// <summary>
/// <c>Gateway:Batches</c>: how <c>POST /v1/batch/chat/completions</c> runs its items. Defaults live here.
/// </summary>
public sealed class BatchOptions
{
    /// <summary>Items run at once when the batch does not ask for a parallelism of its own.</summary>
    public int Parallelism { get; set; } = 4;

    /// <summary>The most a batch may ask for with <c>?parallelism=</c>: each item holds a provider connection.</summary>
    public int MaxParallelism { get; set; } = 32;

    /// <summary>Items in one batch.</summary>
    public int MaxItems { get; set; } = 1000;

    /// <summary>
    /// The whole batch body. Larger than Limits:MaxRequestBytes on purpose, since a batch carries many
    /// requests; each item is still held to Limits:MaxRequestBytes by the chat pipeline.
    /// </summary>
    public int MaxRequestBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Adds every problem with the section to <paramref name="errors"/>.</summary>
    public static void Validate(BatchOptions b, List<string> errors)
    {
        if (b.MaxParallelism is < 1 or > 1024) errors.Add("Gateway:Batches:MaxParallelism must be between 1 and 1024.");
        if (b.Parallelism < 1 || b.Parallelism > b.MaxParallelism) errors.Add("Gateway:Batches:Parallelism must be between 1 and Gateway:Batches:MaxParallelism.");
        if (b.MaxItems < 1) errors.Add("Gateway:Batches:MaxItems must be positive.");
        if (b.MaxRequestBytes < 1) errors.Add("Gateway:Batches:MaxRequestBytes must be positive.");
    }
}
