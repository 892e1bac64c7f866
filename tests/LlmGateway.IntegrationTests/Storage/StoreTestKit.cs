using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;

namespace LlmGateway.IntegrationTests.Storage;

/// <summary>Settings, clients and admin calls the cache, budget, ledger and Redis tests share.</summary>
internal static class StoreTestKit
{
    /// <summary>
    /// One OpenAI-compatible provider "up" serving model "test-model", the admin key in a variable named
    /// after the test class, and Redis when <paramref name="redis"/> is given (with a key prefix of its own,
    /// so tests on one Redis never see each other's data).
    /// </summary>
    public static Dictionary<string, string?> Settings(FakeUpstream upstream, string adminKeyEnv, string? redis = null, string? prefix = null)
    {
        var settings = GatewayFactory.OpenAiSettings(upstream.BaseUrl);
        settings["Gateway:Auth:AdminKeyEnv"] = adminKeyEnv;
        settings["ConnectionStrings:Redis"] = redis ?? "";
        settings["Gateway:Store:KeyPrefix"] = prefix ?? $"t-{Guid.NewGuid():N}:";
        // Retries would make upstream call counts depend on backoff; the tests count calls.
        settings["Gateway:Resilience:MaxRetries"] = "0";
        return settings;
    }

    /// <summary>Sets the admin key variable for this test class and returns the key.</summary>
    public static string AdminKey(string variable)
    {
        var key = "admin-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, key);
        return key;
    }

    /// <summary>The factory with a clock of the test's choosing in place of the system's.</summary>
    public static WebApplicationFactory<Program> WithClock(this GatewayFactory factory, TimeProvider clock) =>
        factory.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton(clock)));

    public static ChatClient Sdk(this WebApplicationFactory<Program> factory, string model = "test-model")
    {
        var http = factory.CreateClient();
        return new ChatClient(model, new ApiKeyCredential("test-client-key"), new OpenAIClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
    }

    public static string Body(string prompt, string extra = "\"temperature\":0", string model = "test-model") =>
        $"{{\"model\":\"{model}\",{extra},\"messages\":[{{\"role\":\"user\",\"content\":{JsonSerializer.Serialize(prompt)}}}]}}";

    public static Task<HttpResponseMessage> PostChatAsync(this HttpClient client, string body, string? cacheControl = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (cacheControl is not null) request.Headers.TryAddWithoutValidation("Cache-Control", cacheControl);
        return client.SendAsync(request);
    }

    public static string? Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.First() : null;

    public static async Task<JsonElement> AdminAsync(this HttpClient client, HttpMethod method, string path, string adminKey, int expectedStatus = 200)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expectedStatus, $"{method} {path}: expected {expectedStatus}, got {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The content of an OpenAI chat.completion body.</summary>
    public static async Task<string> ContentAsync(this HttpResponseMessage response)
    {
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails after <paramref name="seconds"/> (a bound, not a speed assertion).</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 10)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out waiting for: {what}");
            await Task.Delay(25);
        }
    }

    /// <summary>An upstream that answers "answer N" (N = its call count), streamed or not, with usage 11 in / 7 out.</summary>
    public static Func<Microsoft.AspNetCore.Http.HttpContext, ReceivedRequest, Task> NumberedAnswers(FakeUpstream upstream) => async (http, request) =>
    {
        var n = upstream.Calls;
        if (request.Json.TryGetProperty("stream", out var s) && s.GetBoolean())
        {
            await OpenAiWire.WriteStreamAsync(http, ["answer ", n.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        else
        {
            await OpenAiWire.WriteJsonAsync(http, OpenAiWire.Completion($"answer {n}"));
        }
    };
}
