using System.Text;
using System.Text.Json;
using LlmGateway.Pipeline;
using LlmGateway.Responses;

namespace LlmGateway.Tests.Responses;

/// <summary>
/// Malformed Responses bodies of every kind: each is a 400 (or a request whose chat translation the
/// pipeline accepts), never an exception that would become a 500.
/// </summary>
public class ResponsesBadInputTests
{
    private const string Valid = """
        {"model":"m","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://x/y.png"}]},
         {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"ok"}],
         "tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"auto","text":{"format":{"type":"json_schema","name":"n","schema":{}}},
         "max_output_tokens":5,"temperature":1,"top_p":1,"metadata":{"task_type":"t"},"stream":true,"store":true,"reasoning":{"effort":"low"}}
        """;

    private static readonly (string Field, string[] Values)[] s_wrong =
    [
        ("model", ["1", "true", "null", "[]", "{}", "\"\""]),
        ("input", ["1", "true", "{}", "[1]", "[null]", "[[]]", "[\"x\"]", "[{}]", "[{\"role\":1,\"content\":\"x\"}]", "[{\"type\":1}]", "[{\"type\":\"message\"}]",
            "[{\"role\":\"user\",\"content\":1}]", "[{\"role\":\"user\",\"content\":[1]}]", "[{\"role\":\"user\",\"content\":[{}]}]", "[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\"}]}]",
            "[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\"}]}]", "[{\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":1}]}]",
            "[{\"type\":\"function_call\",\"call_id\":1,\"name\":\"f\",\"arguments\":\"{}\"}]", "[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":{}}]",
            "[{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":1}]", "[{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":[1]}]"]),
        ("instructions", ["1", "[]", "{}", "true"]),
        ("tools", ["{}", "\"x\"", "1", "[1]", "[null]", "[{}]", "[{\"type\":1}]", "[{\"type\":\"function\",\"name\":1}]", "[{\"type\":\"function\",\"name\":\"f\",\"parameters\":1}]"]),
        ("tool_choice", ["1", "\"sometimes\"", "{}", "{\"type\":1}", "{\"type\":\"function\"}", "[]"]),
        ("text", ["1", "\"x\"", "{\"format\":1}", "{\"format\":{}}", "{\"format\":{\"type\":\"xml\"}}", "{\"format\":{\"type\":\"json_schema\"}}", "{\"format\":{\"type\":\"json_schema\",\"name\":\"n\",\"schema\":1}}", "{\"verbosity\":1}", "{\"x\":1}"]),
        ("max_output_tokens", ["0", "-1", "1.5", "\"5\"", "1e400", "99999999999", "true"]),
        ("temperature", ["-0.1", "2.1", "\"hot\"", "1e400", "[]"]),
        ("top_p", ["1.5", "-1", "\"x\""]),
        ("metadata", ["1", "\"x\"", "[]"]),
        ("stream", ["\"yes\"", "1"]),
        ("store", ["\"yes\"", "1"]),
        ("previous_response_id", ["1", "\"\"", "\"resp_\"", "\"resp_a b\"", "\"resp_" + new string('a', 200) + "\""]),
        ("reasoning", ["1", "{\"effort\":1}", "{\"x\":1}"]),
        ("include", ["1", "[1]"]),
        ("parallel_tool_calls", ["1", "\"yes\""]),
        ("user", ["1", "{}"]),
    ];

    public static IEnumerable<object[]> Cases()
    {
        var valid = JsonDocument.Parse(Valid).RootElement;
        foreach (var (field, values) in s_wrong)
        {
            foreach (var value in values)
            {
                var body = new StringBuilder("{");
                foreach (var p in valid.EnumerateObject())
                {
                    if (p.Name == field) continue;
                    body.Append(JsonSerializer.Serialize(p.Name)).Append(':').Append(p.Value.GetRawText()).Append(',');
                }
                body.Append(JsonSerializer.Serialize(field)).Append(':').Append(value).Append('}');
                yield return [field + "=" + value[..Math.Min(value.Length, 40)], Encoding.UTF8.GetBytes(body.ToString())];
            }
        }
        var bytes = Encoding.UTF8.GetBytes(Valid);
        for (var cut = 0; cut < bytes.Length; cut += 17) yield return [$"cut at {cut}", bytes[..cut]];
        yield return ["not UTF-8", new byte[] { (byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}' }];
        yield return ["lone surrogate", Encoding.UTF8.GetBytes("""{"model":"m","input":"\ud800"}""")];
        yield return ["lone surrogate in a tool name", Encoding.UTF8.GetBytes("""{"model":"m","input":"x","tools":[{"type":"function","name":"\udc00"}]}""")];
        yield return ["deep nesting", Encoding.UTF8.GetBytes("{\"model\":\"m\",\"input\":\"x\",\"metadata\":" + new string('[', 500) + new string(']', 500) + "}")];
        yield return ["empty", Array.Empty<byte>()];
        yield return ["a number", "5"u8.ToArray()];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_malformed_body_is_a_400_never_an_exception(string name, byte[] body)
    {
        using var request = ResponsesRequest.Parse(body, out var error);
        if (request is null)
        {
            Assert.NotNull(error);
            Assert.Equal(400, error!.Status);
            Assert.False(string.IsNullOrEmpty(error.Message), name);
            return;
        }
        // What parses must translate into a chat request the pipeline accepts.
        using var chat = ChatRequest.TryParse(request.ToChatBody([]), out var chatError);
        Assert.True(chat is not null, $"{name}: the translation was refused: {chatError?.Message}");
    }
}
