using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Pipeline;
using LlmGateway.Providers;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Usage;

/// <summary>
/// With the embedded store the ledger keeps no queue and runs no writer: a finished request's record is in the store
/// when the request's end has been observed, with no batch window between the two and no background wake-up paid
/// per record.
/// </summary>
public class UsageLedgerEmbeddedTests
{
    private static RequestRecord Record(string id, string taskType = "general") => new()
    {
        RequestId = id, StartedAt = new DateTimeOffset(2026, 12, 3, 14, 0, 0, TimeSpan.Zero), TaskType = taskType,
        RequestedModel = "m", Model = "m", Provider = "openai", Status = 200, Usage = new TokenUsage(10, 5), CostUsd = 0.0001m,
        Attempts = 1, CacheResult = "bypass", Duration = TimeSpan.FromMilliseconds(3),
    };

    [Fact]
    public async Task A_record_is_in_the_embedded_store_as_soon_as_its_request_ends_with_no_writer_running()
    {
        var store = new MemoryStore(new StoreOptions(), new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 14, 0, 0, TimeSpan.Zero)));
        // Never started: whatever would wait for a background writer stays unwritten.
        using var ledger = new UsageLedger(store, Options.Create(new GatewayOptions()), new NullGatewayEvents(), NullLogger<UsageLedger>.Instance);

        ledger.OnRequestCompleted(Record("req_1"));
        // Too long for the thread's buffer: the serializer's own array, written the same way.
        ledger.OnRequestCompleted(Record("req_2", taskType: new string('t', 3000)));

        var stored = await store.ReadLedgerAsync(0, null, 10);
        Assert.Equal(["req_1", "req_2"], stored.Select(r => JsonDocument.Parse(r.Data).RootElement.GetProperty("request_id").GetString()));
        Assert.Equal(3000, JsonDocument.Parse(stored[1].Data).RootElement.GetProperty("task_type").GetString()!.Length);
        Assert.Equal(0, ledger.Buffered);
    }
}
