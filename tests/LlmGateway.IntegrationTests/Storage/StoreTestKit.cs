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
        // Generous: the test machine is shared and busy; the outage tests stop Redis, which fails fast, not slowly.
        settings["Gateway:Store:TimeoutMs"] = "2000";
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

    /// <summary>Starts the app and waits until its store answers (Redis connects in the background at start-up).</summary>
    public static async Task<HttpClient> ConnectedClientAsync(this WebApplicationFactory<Program> factory)
    {
        var client = factory.CreateClient();
        await EventuallyAsync(async () =>
        {
            using var response = await client.GetAsync("/health/ready");
            var ready = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            var store = ready.GetProperty("checks").GetProperty("store").GetProperty("status").GetString();
            return (store == "Healthy", store);
        }, "the store to be reachable");
        return client;
    }

    /// <summary>The content of an OpenAI chat.completion body.</summary>
    public static async Task<string> ContentAsync(this HttpResponseMessage response)
    {
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails after <paramref name="seconds"/> (a bound, not a speed assertion).</summary>
    public static Task EventuallyAsync(Func<Task<bool>> condition, string what, int seconds = 10) =>
        EventuallyAsync(async () => (await condition(), ""), what, seconds);

    /// <summary>Like the other, with what was last seen in the failure message.</summary>
    public static async Task EventuallyAsync<T>(Func<Task<(bool Done, T Seen)>> condition, string what, int seconds = 10)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (true)
        {
            var (done, seen) = await condition();
            if (done) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out waiting for: {what} (last seen: {seen})");
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
