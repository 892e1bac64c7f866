using System.Diagnostics;
using System.Diagnostics.Metrics;
using LlmGateway.Telemetry;

namespace LlmGateway.Batches;

/// <summary>
/// Batch progress for Prometheus: <c>llm_gateway_batch_items_total{status}</c> and
/// <c>llm_gateway_batches_inflight</c>. Each item is also an ordinary chat request, so
/// <c>llm_gateway_requests_total</c> and the rest count it as well.
/// </summary>
public sealed class BatchMetrics
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Skipped = "skipped";

    private readonly Counter<long> _items;
    private long _inflight;

    public BatchMetrics(IMeterFactory meterFactory)
    {
        // The gateway's meter (the factory hands back the same one), so the /metrics exporter sees these too.
        var meter = meterFactory.Create(GatewayMetrics.MeterName);
        _items = meter.CreateCounter<long>("llm_gateway.batch.items", "{item}",
            "Items of /v1/batch/chat/completions by status: succeeded, failed, skipped (not run: the batch's max_cost_usd was reached).");
        meter.CreateObservableGauge("llm_gateway.batches.inflight", () => Volatile.Read(ref _inflight), "{batch}",
            "Batches being run right now.");
    }

    public void BatchStarted() => Interlocked.Increment(ref _inflight);

    public void BatchEnded() => Interlocked.Decrement(ref _inflight);

    public void Item(string status) => _items.Add(1, new TagList { { "status", status } });
}
