using LlmGateway.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LlmGateway.Tests.Http;

public class RouteShortcutTests
{
    private const string Path = "/v1/chat/completions";

    private static readonly Endpoint s_chat = new(_ => Task.CompletedTask, new EndpointMetadataCollection(new EndpointNameMetadata("CreateChatCompletion")), "chat");
    private static readonly Endpoint s_other = new(_ => Task.CompletedTask, new EndpointMetadataCollection(new EndpointNameMetadata("Other")), "other");

    /// <summary>Stands for routing and what runs after it: records the endpoint it was given, sets <paramref name="routed"/> when there was none.</summary>
    private sealed class Routing(Endpoint? routed)
    {
        public List<Endpoint?> Given { get; } = [];

        public Task Invoke(HttpContext http)
        {
            Given.Add(http.GetEndpoint());
            if (http.GetEndpoint() is null) http.SetEndpoint(routed);
            return Task.CompletedTask;
        }
    }

    private static DefaultHttpContext Request(string method = "POST", string path = Path)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = method;
        http.Request.Path = path;
        return http;
    }

    [Fact]
    public async Task The_endpoint_routing_chose_for_the_path_is_set_on_the_next_requests_before_routing()
    {
        var shortcut = new RouteShortcut.Shortcut(Path, "CreateChatCompletion");
        var routing = new Routing(s_chat);

        await shortcut.Invoke(Request(), routing.Invoke);
        Assert.Same(s_chat, shortcut.Endpoint);
        var next = Request();
        await shortcut.Invoke(next, routing.Invoke);

        Assert.Equal([null, s_chat], routing.Given);
        Assert.Same(s_chat, next.GetEndpoint());
    }

    [Theory]
    [InlineData("GET", Path)]
    [InlineData("PUT", Path)]
    [InlineData("POST", "/V1/Chat/Completions")]
    [InlineData("POST", "/v1/chat/completions/")]
    [InlineData("POST", "/v1/chat")]
    [InlineData("POST", "/v1/embeddings")]
    public async Task Any_other_method_or_spelling_of_the_path_is_left_to_routing(string method, string path)
    {
        var shortcut = new RouteShortcut.Shortcut(Path, "CreateChatCompletion");
        var routing = new Routing(s_chat);
        await shortcut.Invoke(Request(), routing.Invoke);

        await shortcut.Invoke(Request(method, path), routing.Invoke);

        Assert.Equal([null, null], routing.Given);
    }

    [Fact]
    public async Task An_endpoint_of_another_name_or_none_is_not_remembered()
    {
        var shortcut = new RouteShortcut.Shortcut(Path, "CreateChatCompletion");
        await shortcut.Invoke(Request(), new Routing(s_other).Invoke);
        Assert.Null(shortcut.Endpoint);
        await shortcut.Invoke(Request(), new Routing(null).Invoke);
        Assert.Null(shortcut.Endpoint);

        var routing = new Routing(s_chat);
        await shortcut.Invoke(Request(), routing.Invoke);
        await shortcut.Invoke(Request(), routing.Invoke);
        Assert.Equal([null, s_chat], routing.Given);
    }
}
