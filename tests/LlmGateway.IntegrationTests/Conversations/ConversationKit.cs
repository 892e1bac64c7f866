using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using OpenAI;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Conversations;

/// <summary>Calls the conversation tests share.</summary>
internal static class ConversationKit
{
    public static string Body(string prompt, string? system = null, bool stream = false, string extra = "\"temperature\":0.5")
    {
        var messages = system is null ? "" : $"{{\"role\":\"system\",\"content\":{JsonSerializer.Serialize(system)}}},";
        messages += $"{{\"role\":\"user\",\"content\":{JsonSerializer.Serialize(prompt)}}}";
        return $"{{\"model\":\"test-model\",{extra},\"stream\":{(stream ? "true" : "false")},\"messages\":[{messages}]}}";
    }

    public static Task<HttpResponseMessage> TurnAsync(this HttpClient client, string? conversation, string body, string? bearer = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (conversation is not null) request.Headers.TryAddWithoutValidation("X-Conversation-Id", conversation);
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    public static async Task<(int Status, JsonElement Body)> SendAsync(this HttpClient client, HttpMethod method, string conversation, string? bearer = null)
    {
        using var request = new HttpRequestMessage(method, "/v1/conversations/" + conversation);
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    /// <summary>"role: content" of each message, the way a test reads a conversation at a glance.</summary>
    public static string[] Lines(JsonElement messages) =>
        messages.EnumerateArray().Select(m => m.GetProperty("role").GetString() + ": " +
            (m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : "")).ToArray();

    /// <summary>The messages the fake upstream received in its <paramref name="call"/>-th request (0-based).</summary>
    public static string[] Received(this FakeUpstream upstream, int call) => Lines(upstream.Requests.ElementAt(call).Json.GetProperty("messages"));

    /// <summary>The official SDK, sending X-Conversation-Id on every call.</summary>
    public static ChatClient Sdk(this WebApplicationFactory<Program> factory, string conversation)
    {
        var http = factory.CreateClient();
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        };
        options.AddPolicy(new ConversationHeader(conversation), PipelinePosition.PerCall);
        return new ChatClient("test-model", new ApiKeyCredential("test-client-key"), options);
    }

    private sealed class ConversationHeader(string id) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("X-Conversation-Id", id);
            ProcessNext(message, pipeline, currentIndex);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("X-Conversation-Id", id);
            await ProcessNextAsync(message, pipeline, currentIndex);
        }
    }
}
