using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;
using OpenAI.Responses;

namespace LlmGateway.IntegrationTests.Responses;

/// <summary>The official OpenAI .NET SDK's Responses client against the gateway: if it can't read what we send, we're wrong.</summary>
public sealed class ResponsesSdkTests : IAsyncLifetime
{
    private FakeUpstream _upstream = null!;
    private GatewayFactory _gateway = null!;
    private Scenario _scenario = Scenario.Text;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstream.StartAsync(ProviderFakes.Handler(() => _scenario));
        _gateway = new GatewayFactory(ProviderFakes.Settings(_upstream.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    private ResponsesClient Client()
    {
        var http = _gateway.CreateClient();
        return new ResponsesClient(new ApiKeyCredential("test-client-key"), new ResponsesClientOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
    }

    private static readonly FunctionTool WeatherTool = ResponseTool.CreateFunctionTool("get_weather",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}"""),
        strictModeEnabled: true, functionDescription: "Current weather for a city");

    public static TheoryData<string> ProviderTypes => new(ProviderFakes.Types);

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task The_sdk_reads_a_text_response_from_each_provider_type(string type)
    {
        var result = await Client().CreateResponseAsync($"{type}-model", "Say hello.");
        var response = result.Value;
        Assert.StartsWith("resp_", response.Id);
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.Equal($"Hello from {type}", response.GetOutputText());
        Assert.Equal(ProviderFakes.Input, response.Usage.InputTokenCount);
        Assert.Equal(ProviderFakes.Output, response.Usage.OutputTokenCount);
        Assert.Equal(ProviderFakes.Input + ProviderFakes.Output, response.Usage.TotalTokenCount);
        Assert.Equal(type, result.GetRawResponse().Headers.GetFirstOrDefault("x-gateway-provider"));
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task The_sdk_streams_a_text_response_from_each_provider_type(string type)
    {
        var options = new CreateResponseOptions($"{type}-model", [ResponseItem.CreateUserMessageItem("Say hello.")]) { StreamingEnabled = true };
        var text = "";
        ResponseResult? completed = null;
        var kinds = new List<string>();
        await foreach (var update in await Client().CreateResponseStreamingAsync(options))
        {
            kinds.Add(update.GetType().Name);
            if (update is StreamingResponseOutputTextDeltaUpdate delta) text += delta.Delta;
            if (update is StreamingResponseCompletedUpdate done) completed = done.Response;
        }
        Assert.Equal($"Hello from {type}", text);
        Assert.NotNull(completed);
        Assert.Equal(ResponseStatus.Completed, completed!.Status);
        Assert.Equal($"Hello from {type}", completed.GetOutputText());
        Assert.Equal(ProviderFakes.Output, completed.Usage.OutputTokenCount);
        Assert.Equal("StreamingResponseCreatedUpdate", kinds[0]);
        Assert.Contains("StreamingResponseContentPartAddedUpdate", kinds);
        Assert.Contains("StreamingResponseOutputItemDoneUpdate", kinds);
        Assert.DoesNotContain(kinds, k => k.Contains("Unknown", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ProviderTypes))]
    public async Task The_sdk_runs_a_function_tool_round_trip_with_previous_response_id(string type)
    {
        _scenario = Scenario.ToolCall;
        var client = Client();
        var options = new CreateResponseOptions($"{type}-model", [ResponseItem.CreateUserMessageItem("Weather in Paris?")]) { Tools = { WeatherTool } };
        var first = (await client.CreateResponseAsync(options)).Value;
        var call = Assert.IsType<FunctionCallResponseItem>(Assert.Single(first.OutputItems));
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("Paris", JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("city").GetString());

        _scenario = Scenario.Text;
        var second = new CreateResponseOptions($"{type}-model", [ResponseItem.CreateFunctionCallOutputItem(call.CallId, "18C and sunny")]) { PreviousResponseId = first.Id, Tools = { WeatherTool } };
        var answer = (await client.CreateResponseAsync(second)).Value;
        Assert.Equal($"Hello from {type}", answer.GetOutputText());

        // The provider got the whole exchange: the question, the call and its result, in its own format.
        var sent = System.Text.Encoding.UTF8.GetString(_upstream.Requests.ToArray()[1].Body);
        Assert.Contains("Weather in Paris?", sent);
        Assert.Contains("get_weather", sent);
        Assert.Contains("18C and sunny", sent);
    }

    [Fact]
    public async Task The_sdk_gets_and_deletes_a_stored_response()
    {
        var client = Client();
        var created = (await client.CreateResponseAsync("openai-model", "Say hello.")).Value;
        var got = (await client.GetResponseAsync(created.Id)).Value;
        Assert.Equal(created.Id, got.Id);
        Assert.Equal("Hello from openai", got.GetOutputText());

        var deleted = (await client.DeleteResponseAsync(created.Id)).Value;
        Assert.True(deleted.Deleted);
        Assert.Equal(created.Id, deleted.ResponseId);
        var error = await Assert.ThrowsAsync<ClientResultException>(() => client.GetResponseAsync(created.Id));
        Assert.Equal(404, error.Status);
    }

    [Fact]
    public async Task The_sdk_lists_a_stored_responses_input_items()
    {
        var client = Client();
        var created = (await client.CreateResponseAsync("openai-model", "Say hello.")).Value;

        var items = new List<ResponseItem>();
        await foreach (var item in client.GetResponseInputItemsAsync(created.Id)) items.Add(item);

        var message = Assert.IsAssignableFrom<MessageResponseItem>(Assert.Single(items));
        Assert.Equal(MessageRole.User, message.Role);
        Assert.Equal("Say hello.", Assert.Single(message.Content).Text);
        Assert.False(string.IsNullOrEmpty(message.Id));
    }

    [Fact]
    public async Task The_sdk_sees_an_unknown_model_as_a_404()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client().CreateResponseAsync("no-such-model", "hi"));
        Assert.Equal(404, error.Status);
        Assert.Contains("model_not_found", error.GetRawResponse()!.Content.ToString());
    }
}
