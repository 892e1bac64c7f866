using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Providers;

namespace LlmGateway.Tests.Providers;

/// <summary>Builds translator inputs from JSON and reads translator outputs, for the provider translation tests.</summary>
internal static class Translation
{
    public static ProviderRequest Request(string json, int maxOutputTokens = 1024)
    {
        var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes(json), out var error) ?? throw new InvalidOperationException(error!.Message);
        return new ProviderRequest(chat, "test-model", new ModelOptions { UpstreamModel = "upstream-model", MaxOutputTokens = maxOutputTokens });
    }

    public static JsonElement Parse(byte[] json) => JsonDocument.Parse(json).RootElement;

    /// <summary>Reads a stream to its end: each event's kind and data (as text).</summary>
    public static async Task<List<(StreamEventKind Kind, string Data, ProviderFailure? Failure)>> ReadAll(ChatStream stream)
    {
        var events = new List<(StreamEventKind, string, ProviderFailure?)>();
        while (true)
        {
            var ev = await stream.ReadAsync(CancellationToken.None);
            events.Add((ev.Kind, Encoding.UTF8.GetString(ev.Data.Span), ev.Failure));
            if (ev.Kind is StreamEventKind.End or StreamEventKind.Failed) return events;
        }
    }

    public static MemoryStream Body(string text) => new(Encoding.UTF8.GetBytes(text));

    public static JsonElement Delta(string chunk) => JsonDocument.Parse(chunk).RootElement.GetProperty("choices")[0].GetProperty("delta");
}
