using LlmGateway.Configuration;

namespace LlmGateway.PassThrough;

/// <summary>
/// <c>Gateway:PassThrough</c>: the OpenAI endpoints the gateway does not translate (moderations, audio,
/// images, files, responses, and whatever OpenAI adds under /v1) are forwarded as they are to one
/// OpenAI-wire provider. Off (those paths answer 404) while <see cref="Provider"/> is empty.
/// </summary>
public sealed class PassThroughOptions
{
    /// <summary>A key of Gateway:Providers of type openai; empty turns pass-through off.</summary>
    public string Provider { get; set; } = "";

    /// <summary>
    /// Largest request body forwarded (file and audio uploads), in place of Gateway:Limits:MaxRequestBytes,
    /// which is sized for chat JSON. The body is streamed through, never held in memory, so this bounds
    /// upstream traffic rather than gateway memory. 512 MB is OpenAI's own limit for one file.
    /// </summary>
    public long MaxRequestBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>
    /// How long a forwarded call may go without a byte moving either way (reset on every read and write,
    /// so a long upload or a long stream is fine; a silent upstream is not). Reasoning models can think
    /// for minutes before their first event, hence the generous default.
    /// </summary>
    public int ActivityTimeoutSeconds { get; set; } = 600;

    public bool Enabled => Provider.Length > 0;

    /// <summary>Adds every problem with the section to <paramref name="errors"/> (called by GatewayOptionsValidator).</summary>
    public static void Validate(GatewayOptions options, List<string> errors)
    {
        const string At = "Gateway:PassThrough";
        var p = options.PassThrough;
        if (p.MaxRequestBytes <= 0) errors.Add($"{At}:MaxRequestBytes must be positive.");
        if (p.ActivityTimeoutSeconds <= 0) errors.Add($"{At}:ActivityTimeoutSeconds must be positive.");
        if (!p.Enabled) return;

        if (!options.Providers.TryGetValue(p.Provider, out var provider))
        {
            errors.Add($"{At}:Provider '{p.Provider}' is not defined under Gateway:Providers.");
        }
        else if (provider.Type == ProviderTypes.AzureOpenAi)
        {
            // Azure scopes these endpoints by deployment (/openai/deployments/{name}/audio/...?api-version=),
            // and the deployment can't be derived from an OpenAI path: for most of them the model is in a
            // JSON or multipart body the gateway forwards without reading. Refused rather than half-working.
            errors.Add($"{At}:Provider '{p.Provider}' is of type azure-openai, which pass-through does not support: Azure's URLs name a deployment that an OpenAI request path does not carry. Name a provider of type openai.");
        }
        else if (provider.Type != ProviderTypes.OpenAi)
        {
            errors.Add($"{At}:Provider '{p.Provider}' is of type '{provider.Type}'; pass-through forwards OpenAI's wire format unchanged, so it needs a provider of type openai.");
        }
    }
}
