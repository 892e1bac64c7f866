namespace LlmGateway.IntegrationTests.Infrastructure;

/// <summary>
/// Reads an SSE response the way a careful client would: event by event, noting how the connection
/// ended. A stream that breaks after it started ends with an error event and an aborted connection,
/// so reading it whole with ReadAsStringAsync throws; this keeps the events and the error apart.
/// Send with HttpCompletionOption.ResponseHeadersRead, or the client buffers (and throws) before this reads.
/// </summary>
public static class SseClient
{
    public sealed record Result(List<string> Events, Exception? Error)
    {
        public bool SawDone => Events.Contains("[DONE]");
    }

    public static async Task<Result> ReadAllAsync(HttpResponseMessage response, Action<string>? onEvent = null)
    {
        var events = new List<string>();
        try
        {
            using var stream = await response.Content.ReadAsStreamAsync();
            using var reader = new StreamReader(stream);
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                events.Add(line[6..]);
                onEvent?.Invoke(line[6..]);
            }
            return new Result(events, null);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            return new Result(events, e);
        }
    }
}
