using LlmGateway.Providers;
using LlmGateway.Providers.Gemini;
using static LlmGateway.Tests.Providers.Translation;

namespace LlmGateway.Tests.Providers;

public class GeminiTranslationTests
{
    [Fact]
    public void Images_become_inline_data_or_file_data()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Compare"},
              {"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGRg=="}},
              {"type":"image_url","image_url":{"url":"https://example.com/a.png?size=large"}}]}]}
            """));

        var parts = Parse(GeminiRequestWriter.Write(request.Value)).GetProperty("contents")[0].GetProperty("parts");

        Assert.Equal("""{"inlineData":{"mimeType":"image/webp","data":"UklGRg=="}}""", parts[1].GetRawText());
        Assert.Equal("""{"fileData":{"mimeType":"image/png","fileUri":"https://example.com/a.png?size=large"}}""", parts[2].GetRawText());
    }

    [Fact]
    public void Parallel_tool_results_share_one_user_turn_and_plain_text_results_are_wrapped()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":"x"},
             {"role":"assistant","content":null,"tool_calls":[
               {"id":"call_a","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}},
               {"id":"call_b","type":"function","function":{"name":"g","arguments":""}}]},
             {"role":"tool","tool_call_id":"call_a","content":"plain text"},
             {"role":"tool","tool_call_id":"call_b","content":[{"type":"text","text":"{\"ok\":true}"}]}]}
            """));

        var contents = Parse(GeminiRequestWriter.Write(request.Value)).GetProperty("contents");

        Assert.Equal(3, contents.GetArrayLength());
        Assert.Equal("""[{"functionCall":{"name":"f","args":{"q":1}}},{"functionCall":{"name":"g","args":{}}}]""", contents[1].GetProperty("parts").GetRawText());
        Assert.Equal(
            """[{"functionResponse":{"name":"f","response":{"content":"plain text"}}},{"functionResponse":{"name":"g","response":{"ok":true}}}]""",
            contents[2].GetProperty("parts").GetRawText());
    }

    [Fact]
    public void A_tool_result_for_an_unknown_call_is_refused_because_gemini_needs_the_name()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"r"}]}"""));
        var e = Assert.Throws<RequestTranslationException>(() => GeminiRequestWriter.Write(request.Value));
        Assert.Equal("messages[1].tool_call_id", e.Param);
    }

    [Fact]
    public void Only_settings_the_client_gave_go_to_generation_config()
    {
        using var plain = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}]}"""));
        using var json = new Disposer(Request("""{"model":"m","response_format":{"type":"json_object"},"seed":3,"stop":"\n","messages":[{"role":"user","content":"x"}]}"""));

        Assert.False(Parse(GeminiRequestWriter.Write(plain.Value)).TryGetProperty("generationConfig", out _));
        Assert.Equal("""{"stopSequences":["\n"],"seed":3,"responseMimeType":"application/json"}""",
            Parse(GeminiRequestWriter.Write(json.Value)).GetProperty("generationConfig").GetRawText());
    }

    [Theory]
    [InlineData("\"none\"", """{"functionCallingConfig":{"mode":"NONE"}}""")]
    [InlineData("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", """{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f"]}}""")]
    public void Tool_choice_maps_to_function_calling_config(string choice, string expected)
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":""" + choice + "}"));
        Assert.Equal(expected, Parse(GeminiRequestWriter.Write(request.Value)).GetProperty("toolConfig").GetRawText());
    }

    [Theory]
    [InlineData("CiQB0e2Kb+/sig==")]
    [InlineData("YQ==")]
    [InlineData("ab+/")]
    public void Thought_signatures_survive_the_round_trip_through_a_tool_call_id(string signature)
    {
        var id = GeminiToolCallIds.Create(signature);
        Assert.Matches("^call_[A-Za-z0-9_-]+$", id);
        Assert.Equal(signature, GeminiToolCallIds.Signature(id));
        Assert.Null(GeminiToolCallIds.Signature(GeminiToolCallIds.Create(null)));
    }

    [Theory]
    [InlineData(429, "RESOURCE_EXHAUSTED", "Quota exceeded", null, FailureKind.Retryable)]
    [InlineData(503, "UNAVAILABLE", "The model is overloaded.", null, FailureKind.Retryable)]
    [InlineData(500, "INTERNAL", "Internal error", null, FailureKind.Retryable)]
    [InlineData(403, "PERMISSION_DENIED", "Permission denied", null, FailureKind.NextCandidate)]
    [InlineData(404, "NOT_FOUND", "models/x is not found", null, FailureKind.NextCandidate)]
    [InlineData(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID", FailureKind.NextCandidate)]
    [InlineData(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", null, FailureKind.NextCandidate)]
    [InlineData(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", null, FailureKind.ContextLength)]
    [InlineData(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.top_p'", null, FailureKind.FailRequest)]
    public void Error_bodies_are_classified(int status, string grpc, string message, string? reason, FailureKind kind)
    {
        var details = reason is null ? "" : $$$""","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"{{{reason}}}"}]""";
        var body = System.Text.Encoding.UTF8.GetBytes($$$"""{"error":{"code":{{{status}}},"message":"{{{message}}}","status":"{{{grpc}}}"{{{details}}}}}""");

        var failure = GeminiResponses.ReadError("google", status, body, null);

        Assert.Equal(kind, failure.Kind);
        Assert.Contains(message, failure.Message);
    }

    [Fact]
    public void Retry_info_in_a_quota_error_is_the_retry_after()
    {
        var body = """
            [{"error":{"code":429,"message":"You exceeded your current quota.","status":"RESOURCE_EXHAUSTED","details":[
              {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
              {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}]
            """u8;

        var failure = GeminiResponses.ReadError("google", 429, body, null);

        Assert.Equal(FailureKind.Retryable, failure.Kind);
        Assert.Equal(FailureCause.RateLimited, failure.Cause);
        Assert.Equal(TimeSpan.FromSeconds(37), failure.RetryAfter);
    }

    [Fact]
    public void Usage_counts_cached_tool_use_and_thinking_tokens_where_openai_does()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("""
            {"promptTokenCount":1000,"cachedContentTokenCount":600,"toolUsePromptTokenCount":20,"candidatesTokenCount":50,"thoughtsTokenCount":200,"totalTokenCount":1270}
            """);
        Assert.Equal(new TokenUsage(1020, 250, 600), GeminiResponses.Usage(doc.RootElement));
    }

    [Fact]
    public async Task A_stream_that_ends_after_its_finish_reason_is_complete_and_thought_parts_are_not_content()
    {
        using var request = new Disposer(Request("""{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"""));
        var sse =
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"pondering\",\"thought\":true}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4},\"responseId\":\"r1\"}\r\n\r\n" +
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Answer\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1,\"thoughtsTokenCount\":9},\"responseId\":\"r1\"}\r\n\r\n";
        await using var stream = new GeminiChatStream("google", request.Value, new HttpResponseMessage(), Body(sse), TimeProvider.System);

        var events = await ReadAll(stream);

        Assert.Equal([StreamEventKind.Chunk, StreamEventKind.Content, StreamEventKind.Content, StreamEventKind.Usage, StreamEventKind.End], events.Select(e => e.Kind));
        Assert.Equal("Answer", Delta(events[1].Data).GetProperty("content").GetString());
        Assert.Equal("length", stream.FinishReason);
        Assert.Equal(new TokenUsage(4, 10), stream.Usage);
        Assert.All(events.Take(4), e => Assert.Contains("\"id\":\"r1\"", e.Data));
    }
}
