using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Providers.OpenAi;

namespace LlmGateway.Tests.Providers;

public class PooledJsonContentTests
{
    [Fact]
    public async Task A_body_larger_than_the_first_buffer_is_sent_whole_with_its_length_and_type()
    {
        var text = string.Concat(Enumerable.Range(0, 20_000).Select(i => (char)('a' + i % 26)));

        using var content = PooledJsonContent.Write(16, text, static (output, t) =>
        {
            using var w = new Utf8JsonWriter(output);
            w.WriteStartObject();
            w.WriteString("text"u8, t);
            w.WriteEndObject();
        });
        using var sent = new MemoryStream();
        await content.CopyToAsync(sent);

        var expected = Encoding.UTF8.GetBytes($$"""{"text":"{{text}}"}""");
        Assert.Equal(expected, sent.ToArray());
        Assert.Equal(expected.Length, content.Headers.ContentLength);
        Assert.Equal("application/json", content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void Once_disposed_its_buffer_is_gone_and_a_second_dispose_does_nothing()
    {
        var content = PooledJsonContent.Write(64, 1, static (output, n) =>
        {
            using var w = new Utf8JsonWriter(output);
            w.WriteNumberValue(n);
        });
        Assert.Equal("1"u8.ToArray(), content.Written.ToArray());

        content.Dispose();
        content.Dispose();

        Assert.Throws<ObjectDisposedException>(() => content.Written.Length);
    }

    [Fact]
    public void A_writer_that_throws_leaves_nothing_behind()
    {
        Assert.Throws<InvalidOperationException>(() => PooledJsonContent.Write(64, 0, static (_, _) => throw new InvalidOperationException("bad state")));
    }

    [Fact]
    public void The_openai_chat_body_is_the_clients_with_the_upstream_model()
    {
        var body = """{"model":"alias","messages":[{"role":"user","content":"l'été \"quoted\" 東京"}],"temperature":0.2,"max_tokens":256,"x_vendor":{"a":[1,2.50,true,null]}}""";
        using var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes(body), out var error)!;
        Assert.Null(error);

        using var content = OpenAiRequestWriter.Content(chat, "gpt-4o-mini");

        Assert.Equal(body.Replace("\"alias\"", "\"gpt-4o-mini\"", StringComparison.Ordinal), Encoding.UTF8.GetString(content.Written));
    }

    [Theory]
    // The client's spacing and escapes stay as they came; only what the gateway changes is written anew.
    [InlineData("""{ "model" : "alias", "messages" : [ {"role":"user","content":"caf\u00e9"} ] , "n":1 }""", """{"model":"gpt-4o-mini","messages" : [ {"role":"user","content":"caf\u00e9"} ] , "n":1}""")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"model":"alias"}""", """{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}""")]
    // A name written with an escape is still the model.
    [InlineData("""{"mod\u0065l":"alias","messages":[{"role":"user","content":"hi"}]}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""")]
    // The model sent twice: each is renamed (the body is spliced from its document, not from where the model lies).
    [InlineData("""{"model":"a","messages":[{"role":"user","content":"hi"}],"model":"alias"}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}""")]
    // A stream always asks for usage: added, or set within the client's options (the rest of them kept).
    [InlineData("""{"messages":[{"role":"user","content":"hi"}] , "model" : "alias" , "stream" : true }""", """{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini","stream" : true,"stream_options":{"include_usage":true}}""")]
    [InlineData("""{"model":"alias","stream":true,"messages":[{"role":"user","content":"hi"}]}""", """{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}""")]
    [InlineData("""{"stream_options":{"include_usage":false,"x":1},"model":"alias","stream":true,"messages":[{"role":"user","content":"hi"}]}""", """{"stream_options":{"x":1,"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"stream_options":{"x":1,"include_usage":false,"y":2},"model":"alias","stream":true,"messages":[{"role":"user","content":"hi"}]}""", """{"stream_options":{"x":1,"y":2,"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":"alias","stream":true,"stream_options":null,"messages":[{"role":"user","content":"hi"}]}""", """{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""")]
    // Not streamed: the client's stream_options go as they came.
    [InlineData("""{"model":"alias","stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}""", """{"model":"gpt-4o-mini","stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}]}""")]
    // metadata.task_type is the gateway's: taken out, and metadata with it when nothing else is left.
    [InlineData("""{"model":"alias","metadata":{"task_type":"code"},"messages":[{"role":"user","content":"hi"}],"n":1}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"n":1}""")]
    [InlineData("""{"metadata":{"task_type":"code"},"model":"alias","messages":[{"role":"user","content":"hi"}]}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":"alias","messages":[{"role":"user","content":"hi"}],"metadata":{"user":"u1","task_type":"code","team":"t"}}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"user":"u1","team":"t"}}""")]
    [InlineData("""{"model":"alias","messages":[{"role":"user","content":"hi"}],"metadata":{"user":"u1"}}""", """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"user":"u1"}}""")]
    public void The_openai_chat_body_changes_only_what_the_gateway_changes(string body, string expected)
    {
        using var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes(body), out var error)!;
        Assert.Null(error);

        using var content = OpenAiRequestWriter.Content(chat, "gpt-4o-mini");

        Assert.Equal(expected, Encoding.UTF8.GetString(content.Written));
    }

    [Fact]
    public void An_upstream_model_name_that_needs_escapes_is_escaped()
    {
        using var chat = ChatRequest.TryParse("""{"model":"alias","messages":[{"role":"user","content":"hi"}]}"""u8.ToArray(), out _)!;

        using var content = OpenAiRequestWriter.Content(chat, "odd \"name\" été");

        Assert.Equal("odd \"name\" été", JsonDocument.Parse(content.Written.ToArray()).RootElement.GetProperty("model").GetString());
    }
}
