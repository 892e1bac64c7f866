using LlmGateway.Providers;
using LlmGateway.Providers.Ollama;
using static LlmGateway.Tests.Providers.Translation;

namespace LlmGateway.Tests.Providers;

public class OllamaTranslationTests
{
    [Fact]
    public void Developer_messages_become_system_and_text_parts_are_joined()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"developer","content":"Rules."},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}
            """));

        var messages = Parse(OllamaRequestWriter.Write(request.Value)).GetProperty("messages");

        Assert.Equal("""[{"role":"system","content":"Rules."},{"role":"user","content":"a\nb"}]""", messages.GetRawText());
    }

    [Fact]
    public void An_image_link_is_refused_because_ollama_fetches_no_urls()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"""));
        var e = Assert.Throws<RequestTranslationException>(() => OllamaRequestWriter.Write(request.Value));
        Assert.Equal("messages[0].content", e.Param);
    }

    [Fact]
    public void Tool_choice_none_is_honoured_by_not_offering_the_tools()
    {
        using var request = new Disposer(Request("""{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}"""));
        Assert.False(Parse(OllamaRequestWriter.Write(request.Value)).TryGetProperty("tools", out _));
    }

    [Fact]
    public void A_json_schema_response_format_becomes_the_format_schema()
    {
        using var request = new Disposer(Request("""
            {"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"age":{"type":"integer"}}}}}}
            """));
        Assert.Equal("""{"type":"object","properties":{"age":{"type":"integer"}}}""", Parse(OllamaRequestWriter.Write(request.Value)).GetProperty("format").GetRawText());
    }

    [Theory]
    [InlineData(404, FailureKind.NextCandidate)]
    [InlineData(400, FailureKind.FailRequest)]
    [InlineData(500, FailureKind.Retryable)]
    [InlineData(503, FailureKind.Retryable)]
    public void Error_bodies_are_classified_by_status(int status, FailureKind kind)
    {
        var failure = OllamaResponses.ReadError("local", status, """{"error":"something went wrong"}"""u8, null);
        Assert.Equal(kind, failure.Kind);
        Assert.Contains("something went wrong", failure.Message);
    }

    [Fact]
    public async Task A_cut_stream_estimates_usage_from_the_prompt_and_the_streamed_text()
    {
        using var request = new Disposer(Request("""{"model":"m","stream":true,"messages":[{"role":"user","content":"0123456789012345"}]}"""));
        var ndjson = """
            {"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"12345678"},"done":false}

            """;
        await using var stream = new OllamaChatStream("local", request.Value, new HttpResponseMessage(), Body(ndjson), TimeProvider.System);

        var events = await ReadAll(stream);

        Assert.Equal([StreamEventKind.Chunk, StreamEventKind.Content, StreamEventKind.Failed], events.Select(e => e.Kind));
        Assert.Equal(new TokenUsage(request.Value.Chat.EstimatedPromptTokens, 2), stream.Usage);
    }

    [Fact]
    public async Task The_done_object_gives_the_finish_reason_and_the_reported_usage()
    {
        using var request = new Disposer(Request("""{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"""));
        var ndjson =
            "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n" +
            "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"length\",\"done\":true,\"prompt_eval_count\":26,\"eval_count\":1}\n";
        await using var stream = new OllamaChatStream("local", request.Value, new HttpResponseMessage(), Body(ndjson), TimeProvider.System);

        var events = await ReadAll(stream);

        Assert.Equal([StreamEventKind.Chunk, StreamEventKind.Content, StreamEventKind.Content, StreamEventKind.Usage, StreamEventKind.End], events.Select(e => e.Kind));
        Assert.Equal("length", stream.FinishReason);
        Assert.Equal(new TokenUsage(26, 1), stream.Usage);
        Assert.Contains("\"prompt_tokens\":26", events[3].Data);
    }
}
