using LlmGateway.Http;

namespace LlmGateway.Pipeline;

/// <summary>The client dialects a provider may take as they are, instead of through the gateway's chat format.</summary>
public static class NativeDialects
{
    /// <summary>Anthropic's Messages API (<c>POST /v1/messages</c>), which <c>anthropic</c>-type providers speak.</summary>
    public const string AnthropicMessages = "anthropic-messages";
}

/// <summary>
/// The client's own request, as it came in a dialect other than chat, carried beside the translated
/// <see cref="ChatRequest"/> that routing, limits, the cache and budgets read. A provider whose wire
/// format is that dialect (<see cref="Providers.IChatProvider.NativeDialect"/>) sends <see cref="Body"/>
/// upstream with only its model replaced, so fields the translation doesn't know (new parameters, beta
/// fields, prompt-cache breakpoints) reach it unchanged, and answers in that dialect; every other
/// provider gets the translation.
/// </summary>
/// <param name="Dialect">One of <see cref="NativeDialects"/>.</param>
/// <param name="Body">The client's body, byte for byte; valid while the request runs.</param>
/// <param name="Headers">The client's dialect headers to forward (e.g. <c>anthropic-version</c>, <c>anthropic-beta</c>), never its key.</param>
/// <param name="Untranslatable">
/// Why the translation can't carry the whole request (a field only the native API knows), or null when it
/// can. With it, only providers that take the dialect natively may serve the request (routing removes the
/// others), and when none is left the client gets this 400.
/// </param>
public sealed record NativeBody(string Dialect, ReadOnlyMemory<byte> Body, IReadOnlyList<KeyValuePair<string, string>> Headers, ApiError? Untranslatable);
