using LlmGateway.Configuration;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Routing;

/// <summary>
/// Latency per model as real traffic sees it, for the latency and balanced strategies: time to the
/// first token (streams) and time to the whole answer, each an exponentially weighted average
/// (<see cref="RoutingDefaults.LatencySmoothing"/>) so recent behaviour counts most. Fed by every
/// finished request, as an <see cref="IRequestObserver"/>; per instance, in memory.
/// </summary>
public sealed class LatencyTracker : IRequestObserver
{
    // The configured models are known at start-up and never change, so the map is read-only after
    // construction and needs no locking; each entry locks itself.
    private readonly Dictionary<string, ModelLatency> _models = new(StringComparer.OrdinalIgnoreCase);

    public LatencyTracker(IOptions<GatewayOptions> options)
    {
        foreach (var name in options.Value.Models.Keys) _models[name] = new ModelLatency();
    }

    public void OnRequestCompleted(RequestRecord record)
    {
        // Only clean answers of one model say how fast that model is: a failure's time is the
        // resilience story, a fallback's duration includes another model's, a cache hit no model's.
        if (record.Outcome != RequestOutcomes.Ok || record.Status != StatusCodes.Status200OK) return;
        if (record.Fallbacks > 0 || record.CacheResult == "hit" || record.Model.Length == 0) return;
        Observe(record.Model, record.TimeToFirstToken, record.Duration);
    }

    public void Observe(string model, TimeSpan? timeToFirstToken, TimeSpan duration)
    {
        if (_models.TryGetValue(model, out var latency)) latency.Add(timeToFirstToken?.TotalMilliseconds, duration.TotalMilliseconds);
    }

    public LatencyEstimate Get(string model) => _models.TryGetValue(model, out var latency) ? latency.Snapshot() : default;

    private sealed class ModelLatency
    {
        private readonly Lock _lock = new();
        private double? _ttft;
        private double? _duration;
        private long _samples;

        public void Add(double? ttftMs, double durationMs)
        {
            lock (_lock)
            {
                if (ttftMs is { } t) _ttft = Smooth(_ttft, t);
                _duration = Smooth(_duration, durationMs);
                _samples++;
            }
        }

        public LatencyEstimate Snapshot()
        {
            lock (_lock)
            {
                return new LatencyEstimate(_ttft, _duration, _samples);
            }
        }

        private static double Smooth(double? average, double sample) =>
            average is { } a ? a + RoutingDefaults.LatencySmoothing * (sample - a) : sample;
    }
}
