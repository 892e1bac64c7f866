using LlmGateway.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace LlmGateway.Tests.Http;

/// <summary>The OpenAI-style request headers read once into hint values, as every ingress of that style does.</summary>
public sealed class GatewayHeadersTests
{
    private static RequestHints Read(out ApiError? error, params (string Name, StringValues Value)[] headers)
    {
        var dictionary = new HeaderDictionary();
        foreach (var (name, value) in headers) dictionary[name] = value;
        return GatewayHeaders.ReadHints(dictionary, out error);
    }

    [Fact]
    public void No_headers_are_no_hints()
    {
        var hints = Read(out var error);
        Assert.Null(error);
        Assert.Equal(RequestHints.None, hints);
    }

    [Fact]
    public void Every_hint_is_read_into_its_value()
    {
        var hints = Read(out var error,
            ("X-Local-Only", "TRUE"), ("X-No-Fallback", " true "), ("X-Max-Cost-Usd", "0.02"), ("X-Task-Type", "sql"),
            ("Cache-Control", "no-cache, No-Store"), ("X-Conversation-Id", "c-1"));

        Assert.Null(error);
        Assert.Equal(new RequestHints
        {
            LocalOnly = true, NoFallback = true, MaxCostUsd = 0.02m, TaskType = "sql", NoCache = true, NoStore = true, ConversationId = "c-1",
        }, hints);
    }

    [Theory]
    [InlineData("X-Local-Only", "yes", "X-Local-Only")]
    [InlineData("X-No-Fallback", "1", "X-No-Fallback")]
    [InlineData("X-Max-Cost-Usd", "-1", "X-Max-Cost-Usd")]
    [InlineData("X-Max-Cost-Usd", "two cents", "X-Max-Cost-Usd")]
    public void An_unreadable_routing_header_travels_as_the_routing_steps_400(string name, string value, string named)
    {
        var hints = Read(out var error, (name, value));
        Assert.Null(error); // not refused here: the router refuses it at its own step
        Assert.Equal(400, hints.RoutingError!.Status);
        Assert.Contains(named, hints.RoutingError.Message);
    }

    [Fact]
    public void A_task_type_that_could_not_be_echoed_is_refused_at_once()
    {
        Read(out var error, ("X-Task-Type", new StringValues(["a", "b"])));
        Assert.Equal(400, error!.Status);
        Assert.Equal("X-Task-Type", error.Param);
    }

    [Fact]
    public void A_conversation_id_sent_twice_arrives_as_one_value_no_id_can_be()
    {
        var hints = Read(out _, ("X-Conversation-Id", new StringValues(["a", "b"])));
        Assert.False(LlmGateway.Conversations.ConversationService.IsValidId(hints.ConversationId!));
    }

    [Fact]
    public void False_and_empty_flags_are_off()
    {
        var hints = Read(out _, ("X-Local-Only", "false"), ("X-No-Fallback", ""), ("X-Max-Cost-Usd", ""));
        Assert.Null(hints.RoutingError);
        Assert.False(hints.LocalOnly);
        Assert.False(hints.NoFallback);
        Assert.Null(hints.MaxCostUsd);
    }
}
