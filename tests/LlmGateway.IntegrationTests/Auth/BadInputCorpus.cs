using System.Text;
using System.Text.Json;

namespace LlmGateway.IntegrationTests.Auth;

/// <summary>
/// Generated request bodies that are wrong in every way a client, a fuzzer or an attacker might
/// send, each one certainly invalid (so "4xx" is the only right answer). A fixed seed makes a
/// failure reproducible: the failing case's name and index say how to rebuild it.
/// </summary>
public static class BadInputCorpus
{
    public sealed record Case(string Kind, int Index, byte[] Body, string? ContentType);

    private const string Model = "mock-echo";

    /// <summary>A valid request using most validated fields; every case breaks it or replaces it.</summary>
    private static readonly string s_valid = JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["model"] = Model,
        ["stream"] = false,
        ["stream_options"] = new Dictionary<string, object> { ["include_usage"] = true },
        ["max_tokens"] = 50,
        ["temperature"] = 0.5,
        ["top_p"] = 1,
        ["n"] = 1,
        ["seed"] = 7,
        ["tools"] = new[] { new Dictionary<string, object> { ["type"] = "function", ["function"] = new Dictionary<string, string> { ["name"] = "f" } } },
        ["response_format"] = new Dictionary<string, string> { ["type"] = "text" },
        ["metadata"] = new Dictionary<string, string> { ["team"] = "blue" },
        ["messages"] = new object[]
        {
            new Dictionary<string, string> { ["role"] = "system", ["content"] = "be brief" },
            new Dictionary<string, object> { ["role"] = "user", ["content"] = new[] { new Dictionary<string, string> { ["type"] = "text", ["text"] = "hello" } } },
        },
    });

    public static string Valid => s_valid;

    /// <summary>Values that are the wrong type or out of range for each field the gateway checks.</summary>
    private static readonly (string Field, string[] Values)[] s_wrong =
    [
        ("model", ["1", "true", "null", "[]", "{}", "\"\"", "[\"mock-echo\"]"]),
        ("messages", ["\"hi\"", "1", "{}", "[]", "null", "[1]", "[null]", "[[]]", "[\"user\"]", "[{}]", "[{\"role\":1}]", "[{\"role\":\"wizard\",\"content\":\"x\"}]",
            "[{\"role\":\"user\",\"content\":1}]", "[{\"role\":\"user\",\"content\":true}]", "[{\"role\":\"user\",\"content\":{}}]", "[{\"role\":\"user\",\"content\":[1]}]",
            "[{\"role\":\"user\",\"content\":[{}]}]", "[{\"role\":\"user\",\"content\":[{\"type\":1}]}]", "[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]",
            "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":5}]}]", "[{\"role\":null,\"content\":\"x\"}]"]),
        ("stream", ["\"true\"", "1", "[]", "{}"]),
        ("stream_options", ["\"yes\"", "1", "[]", "{\"include_usage\":\"yes\"}", "{\"include_usage\":1}"]),
        ("max_tokens", ["-1", "0", "1.5", "\"5\"", "1e400", "-1e400", "99999999999", "true", "[]", "1" + new string('0', 5000)]),
        ("max_completion_tokens", ["-5", "0.5", "\"x\"", "1e400"]),
        ("temperature", ["-0.1", "2.1", "\"hot\"", "1e400", "-1e400", "[]", "true", "1e308"]),
        ("top_p", ["1.5", "-1", "\"x\"", "1e400"]),
        ("n", ["0", "129", "1.5", "\"2\"", "1e400", "-1"]),
        ("seed", ["1.5", "\"1\"", "1e400", "1e19", "99999999999999999999", "{}"]),
        ("tools", ["{}", "\"x\"", "1", "[1]", "[null]", "[\"f\"]"]),
        ("response_format", ["\"json\"", "{}", "{\"type\":1}", "[]", "1"]),
        ("metadata", ["\"x\"", "1", "[]", "{\"task_type\":1}", "{\"task_type\":[]}", "{\"task_type\":\"a\\u0001b\"}", "{\"task_type\":\"line\\nbreak\"}", "{\"task_type\":\"caf\\u00e9\"}"]),
    ];

    public static List<Case> Generate(int seed, int maxRequestBytes)
    {
        var random = new Random(seed);
        var cases = new List<Case>();
        void Add(string kind, byte[] body, string? contentType = "application/json") => cases.Add(new Case(kind, cases.Count, body, contentType));
        void AddText(string kind, string body, string? contentType = "application/json") => Add(kind, Encoding.UTF8.GetBytes(body), contentType);
        var valid = Encoding.UTF8.GetBytes(s_valid);

        // Random bytes, some made to start like JSON so they get past the first byte.
        for (var i = 0; i < 610; i++)
        {
            var bytes = new byte[random.Next(1, 2000)];
            random.NextBytes(bytes);
            if (i % 3 == 0) bytes[0] = (byte)'{';
            Add("random-bytes", bytes, ContentType(random));
        }

        // Every kind of cut: a proper prefix of an object is never a whole one.
        for (var i = 0; i < 600; i++)
        {
            Add("truncated", valid.AsSpan(0, random.Next(1, valid.Length)).ToArray(), ContentType(random));
        }

        // One bracket or brace removed or doubled (none of them is inside a string): unbalanced.
        var brackets = Enumerable.Range(0, valid.Length).Where(i => valid[i] is (byte)'{' or (byte)'}' or (byte)'[' or (byte)']').ToArray();
        for (var i = 0; i < 400; i++)
        {
            var at = brackets[random.Next(brackets.Length)];
            var body = new List<byte>(valid);
            if (i % 2 == 0) body.RemoveAt(at); else body.Insert(at, valid[at]);
            Add("unbalanced", [.. body]);
        }

        // Nesting past the parser's depth limit (64), closed or not, in a field or as the root.
        for (var i = 0; i < 200; i++)
        {
            var depth = i % 4 == 0 ? random.Next(10_000, 100_000) : random.Next(65, 2_000);
            var open = i % 2 == 0 ? "[" : "{\"a\":";
            var close = i % 2 == 0 ? "]" : "}";
            var nested = new StringBuilder(depth * 6);
            for (var d = 0; d < depth; d++) nested.Append(open);
            nested.Append('1');
            if (i % 5 != 0) for (var d = 0; d < depth; d++) nested.Append(close);
            AddText("deep", i % 3 == 0 ? nested.ToString() : s_valid[..^1] + ",\"extra\":" + nested + "}");
        }

        // Wrong types and out-of-range values, one field at a time and several at once.
        for (var i = 0; i < 800; i++)
        {
            var fields = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(s_valid)!.ToDictionary(p => p.Key, p => p.Value.GetRawText());
            var howMany = i % 4 == 0 ? random.Next(2, 5) : 1;
            for (var k = 0; k < howMany; k++)
            {
                var (field, values) = s_wrong[random.Next(s_wrong.Length)];
                fields[field] = values[random.Next(values.Length)];
            }
            if (i % 10 == 0) fields.Remove("model");
            if (i % 10 == 5) fields.Remove("messages");
            AddText("wrong-type", "{" + string.Join(",", fields.Select(f => $"\"{f.Key}\":{f.Value}")) + "}");
        }

        // Bytes that are not UTF-8 inside strings, and escapes that are not text.
        byte[][] badUtf8 = [[0xC3, 0x28], [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xE2, 0x82]];
        for (var i = 0; i < 200; i++)
        {
            var marker = Encoding.UTF8.GetBytes("hello");
            var at = valid.AsSpan().IndexOf(marker);
            if (i % 4 == 3)
            {
                AddText("bad-escape", s_valid.Replace("hello", i % 2 == 0 ? "\\ud800" : "\\udc00x", StringComparison.Ordinal));
                continue;
            }
            var bad = badUtf8[random.Next(badUtf8.Length)];
            Add("bad-utf8", [.. valid.AsSpan(0, at), .. bad, .. valid.AsSpan(at + marker.Length)]);
        }

        // Huge strings where a number or a short string belongs, and bodies over the size limit.
        for (var i = 0; i < 30; i++)
        {
            var size = random.Next(100_000, maxRequestBytes - 1_000);
            var field = i % 3 == 0 ? "temperature" : i % 3 == 1 ? "stream" : "seed";
            AddText("huge-string", s_valid[..^1] + $",\"{field}\":\"" + new string('x', size) + "\"}");
        }
        for (var i = 0; i < 10; i++)
        {
            AddText("huge-model-name", s_valid.Replace($"\"{Model}\"", "\"" + new string('m', random.Next(10_000, 200_000)) + "\"", StringComparison.Ordinal));
        }
        for (var i = 0; i < 10; i++)
        {
            AddText("over-limit", s_valid[..^1] + ",\"pad\":\"" + new string('p', maxRequestBytes + random.Next(1, 100_000)) + "\"}");
        }

        // Empty and absurd arrays.
        AddText("absurd-array", s_valid.Replace("\"messages\":[", "\"messages\":[" + string.Concat(Enumerable.Repeat("{\"role\":\"user\",\"content\":\"x\"},", 10_001)), StringComparison.Ordinal));
        AddText("absurd-array", s_valid.Replace("\"tools\":[", "\"tools\":[" + string.Concat(Enumerable.Repeat("{\"type\":\"function\"},", 513)), StringComparison.Ordinal));
        AddText("absurd-array", s_valid.Replace("\"tools\":[", "\"tools\":[" + string.Concat(Enumerable.Repeat("1,", 100_000)), StringComparison.Ordinal));

        // Not an object, not JSON, JSON5-isms the parser must not accept.
        string[] odd =
        [
            "", " ", "\n\n", "null", "true", "1", "\"text\"", "[]", "[{}]", "{}", "{\"model\":\"mock-echo\"}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "{'model':'mock-echo'}", "{model:\"mock-echo\"}", s_valid[..^1] + ",}", s_valid + "garbage", s_valid + s_valid, "/* comment */" + s_valid,
            s_valid.Replace("0.5", "NaN", StringComparison.Ordinal), s_valid.Replace("0.5", "Infinity", StringComparison.Ordinal), s_valid.Replace("0.5", "-Infinity", StringComparison.Ordinal),
            s_valid.Replace("0.5", "0x10", StringComparison.Ordinal), s_valid.Replace("0.5", ".5", StringComparison.Ordinal), s_valid.Replace("0.5", "+1", StringComparison.Ordinal),
            s_valid.Replace("\"hello\"", "\"hel\nlo\"", StringComparison.Ordinal), s_valid.Replace("\"hello\"", "\"hel\u0000lo\"", StringComparison.Ordinal),
            s_valid.Replace("\"hello\"", "\"\\x41\"", StringComparison.Ordinal), s_valid.Replace("\"hello\"", "\"\\u12\"", StringComparison.Ordinal),
        ];
        for (var i = 0; i < 140; i++)
        {
            AddText("odd", odd[i % odd.Length], ContentType(random));
        }
        return cases;
    }

    private static string? ContentType(Random random) => random.Next(5) switch
    {
        0 => null,
        1 => "text/plain",
        2 => "application/json; charset=utf-16",
        3 => "application/x-www-form-urlencoded",
        _ => "application/json",
    };
}
