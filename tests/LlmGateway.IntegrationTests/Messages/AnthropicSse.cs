using System.Text.Json;
using LlmGateway.IntegrationTests.Infrastructure;

namespace LlmGateway.IntegrationTests.Messages;

/// <summary>
/// Reads Anthropic's server-sent events as a client does (event line, data line, blank line), noting
/// how the connection ended, and checks the framing Anthropic's SDKs rely on: each event's name is its
/// data's type. Send with HttpCompletionOption.ResponseHeadersRead.
/// </summary>
public static class AnthropicSse
{
    public sealed record Result(List<(string Name, JsonElement Data)> Events, Exception? Error)
    {
        public IEnumerable<string> Names => Events.Select(e => e.Name);

        public string Text => string.Concat(Events.Where(e => e.Name == "content_block_delta" && e.Data.GetProperty("delta").GetProperty("type").GetString() == "text_delta")
            .Select(e => e.Data.GetProperty("delta").GetProperty("text").GetString()));

        public string InputJson(int index) => string.Concat(Events.Where(e => e.Name == "content_block_delta" && e.Data.GetProperty("index").GetInt32() == index &&
                e.Data.GetProperty("delta").GetProperty("type").GetString() == "input_json_delta")
            .Select(e => e.Data.GetProperty("delta").GetProperty("partial_json").GetString()));

        public JsonElement Single(string name) => Events.Single(e => e.Name == name).Data;
    }

    /// <summary>
    /// A stream the gateway breaks: read to the error event, then to the connection the held <paramref name="grace"/>
    /// lets it abort (see <see cref="BrokenStream"/>); a clean end fails.
    /// </summary>
    public static async Task<Result> ReadBrokenAsync(HttpResponseMessage response, ManualTimeProvider grace, Action<string, JsonElement>? onEvent = null)
    {
        var result = await BrokenStream.ReadAsync(grace, errorRead => ReadAllAsync(response, (name, data) =>
        {
            onEvent?.Invoke(name, data);
            if (name == "error") errorRead();
        }));
        Assert.NotNull(result.Error); // aborted: a clean end would pass the cut answer off as complete
        return result;
    }

    public static async Task<Result> ReadAllAsync(HttpResponseMessage response, Action<string, JsonElement>? onEvent = null)
    {
        var events = new List<(string, JsonElement)>();
        try
        {
            using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new StreamReader(stream);
            string? name = null;
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    var data = JsonDocument.Parse(line[6..]).RootElement;
                    Assert.Equal(name, data.GetProperty("type").GetString());
                    events.Add((name!, data));
                    onEvent?.Invoke(name!, data);
                }
                else if (line.Length == 0) name = null;
                else Assert.Fail($"Unexpected SSE line: {line}");
            }
            return new Result(events, null);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return new Result(events, e);
        }
    }
}
