using System.Text;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Conversations;

namespace LlmGateway.Tests.Conversations;

public class ConversationHistoryTests
{
    private static byte[] Message(string role, string content) =>
        Encoding.UTF8.GetBytes($"{{\"role\":\"{role}\",\"content\":{JsonSerializer.Serialize(content)}}}");

    private static ConversationTurnMessages Turn(params (string Role, string Content)[] messages) =>
        new(messages.Select(m => Message(m.Role, m.Content)).ToList());

    private static string[] Roles(ConversationHistory h) =>
        h.Messages().Select(m => JsonDocument.Parse(m).RootElement.GetProperty("role").GetString() + ":" + JsonDocument.Parse(m).RootElement.GetProperty("content").GetString()).ToArray();

    [Fact]
    public void Token_estimates_follow_the_chat_paths_estimator()
    {
        // 8 characters = 2 tokens, plus 4 per message.
        Assert.Equal(6, ConversationHistory.EstimateTokens([Message("user", "12345678")]));
        Assert.Equal(10, ConversationHistory.EstimateTokens([Message("user", "1234"), Message("assistant", "5678")]));
        Assert.Equal(0, ConversationHistory.EstimateTokens([]));
    }

    [Fact]
    public void Trimming_drops_the_oldest_turns_first_and_never_the_system_prompt()
    {
        var history = new ConversationHistory { System = [Message("system", new string('s', 400))] }; // 104 tokens on its own
        history.Turns.Add(Turn(("user", "u1"), ("assistant", "a1")));
        history.Turns.Add(Turn(("user", "u2"), ("assistant", "a2")));
        history.Turns.Add(Turn(("user", "u3"), ("assistant", "a3")));

        var dropped = history.Trim(maxTokens: 104 + 2 * 10, maxTurns: 0);
        Assert.Equal(1, dropped);
        Assert.Equal(["system:" + new string('s', 400), "user:u2", "assistant:a2", "user:u3", "assistant:a3"], Roles(history));

        history.Trim(maxTokens: 10, maxTurns: 0);
        Assert.Empty(history.Turns);
        Assert.Single(history.System);
    }

    [Fact]
    public void A_tool_result_turn_goes_with_the_turn_whose_tool_call_it_answers()
    {
        var history = new ConversationHistory();
        history.Turns.Add(Turn(("user", "weather?"), ("assistant", "calling")));
        history.Turns.Add(Turn(("tool", "sunny"), ("assistant", "It is sunny")));
        history.Turns.Add(Turn(("user", "thanks"), ("assistant", "welcome")));

        history.Trim(maxTokens: int.MaxValue, maxTurns: 2);

        Assert.Equal(["user:thanks", "assistant:welcome"], Roles(history));
    }

    [Fact]
    public void Encode_and_decode_round_trip_and_anything_else_reads_as_no_conversation()
    {
        var history = new ConversationHistory { CreatedAt = 100, UpdatedAt = 200, System = [Message("system", "be kind")] };
        history.Turns.Add(Turn(("user", "héllo \"quoted\""), ("assistant", "hi")));

        var decoded = ConversationHistory.Decode(history.Encode())!;

        Assert.Equal(100, decoded.CreatedAt);
        Assert.Equal(200, decoded.UpdatedAt);
        Assert.Equal(Roles(history), Roles(decoded));
        Assert.Null(ConversationHistory.Decode([]));
        Assert.Null(ConversationHistory.Decode(null));
        Assert.Null(ConversationHistory.Decode("{\"v\":2}"u8.ToArray()));
        Assert.Null(ConversationHistory.Decode("not json"u8.ToArray()));
    }

    [Fact]
    public void Split_separates_the_system_prompt_and_Build_keeps_every_other_byte()
    {
        var body = """{"model":"m",  "messages" : [ {"role":"system","content":"s"} ,{"content":"u","role":"user"}, {"role":"developer","content":"d"}],"n":1}"""u8.ToArray();

        var split = ConversationSplice.Split(body, out var error)!;
        var rebuilt = ConversationSplice.Build(body, split, [.. split.System, Message("assistant", "old"), .. split.Others]);

        Assert.Null(error);
        Assert.Equal(2, split.System.Count);
        Assert.Equal("""{"content":"u","role":"user"}""", Encoding.UTF8.GetString(split.Others.Single()));
        Assert.Equal("""{"model":"m",  "messages" : [{"role":"system","content":"s"},{"role":"developer","content":"d"},{"role":"assistant","content":"old"},{"content":"u","role":"user"}],"n":1}""",
            Encoding.UTF8.GetString(rebuilt));
    }

    [Fact]
    public void Two_messages_arrays_are_refused()
    {
        var body = """{"model":"m","messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]}"""u8.ToArray();

        Assert.Null(ConversationSplice.Split(body, out var error));
        Assert.Equal(400, error!.Status);
    }

    [Fact]
    public void The_kept_assistant_message_has_only_request_fields()
    {
        var completion = """{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi","refusal":null,"annotations":[],"audio":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}"""u8;

        var message = ConversationSplice.AssistantMessage(completion)!;

        Assert.Equal("""{"role":"assistant","content":"hi","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}""", Encoding.UTF8.GetString(message));
        Assert.Null(ConversationSplice.AssistantMessage("""{"choices":[]}"""u8));
        Assert.Null(ConversationSplice.AssistantMessage("""{"choices":[{"message":{"role":"assistant","content":null}}]}"""u8));
    }

    [Theory]
    [InlineData("abc-DEF_1.2", true)]
    [InlineData("", false)]
    [InlineData("a:b", false)]
    [InlineData("a b", false)]
    [InlineData("é", false)]
    public void Conversation_ids_are_short_plain_ascii(string id, bool valid) => Assert.Equal(valid, ConversationService.IsValidId(id));

    [Fact]
    public void Bad_options_are_all_reported_at_start_up()
    {
        var errors = GatewayOptionsValidator.Validate(new GatewayOptions
        {
            Conversations = new ConversationOptions { TtlSeconds = 0, MaxHistoryTokens = 0, MaxTurns = -1 },
        });

        Assert.Contains(errors, e => e.Contains("Gateway:Conversations:TtlSeconds", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Conversations:MaxHistoryTokens", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Gateway:Conversations:MaxTurns", StringComparison.Ordinal));
    }
}
