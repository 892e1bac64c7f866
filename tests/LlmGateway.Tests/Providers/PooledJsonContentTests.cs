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

        using var content = PooledJsonContent.Write(16, default, text, static (w, t) =>
        {
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
        var content = PooledJsonContent.Write(64, default, 1, static (w, n) => w.WriteNumberValue(n));
        Assert.Equal("1"u8.ToArray(), content.Written.ToArray());

        content.Dispose();
        content.Dispose();

        Assert.Throws<ObjectDisposedException>(() => content.Written.Length);
    }

    [Fact]
    public void A_writer_that_throws_leaves_nothing_behind()
    {
        Assert.Throws<InvalidOperationException>(() => PooledJsonContent.Write(64, default, 0, static (_, _) => throw new InvalidOperationException("bad state")));
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
}
