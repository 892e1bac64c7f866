using System.Collections.Frozen;
using System.Globalization;
using LlmGateway.Configuration;
using LlmGateway.Usage;

namespace LlmGateway.Telemetry;

/// <summary>
/// Label values with bounded cardinality. Model, provider and task type names reach the record from
/// clients (a model name in any casing, an X-Task-Type header), so only configured names become label
/// values, in their configured spelling; anything else is <c>other</c>, and nothing at all is <c>none</c>.
/// </summary>
public sealed class MetricLabels
{
    public const string None = "none";
    public const string Other = "other";

    /// <summary>The status label of a stream that failed after it had started (its HTTP status was already 200).</summary>
    public const string Broken = "broken";

    private static readonly string[] s_statusCodes = CreateStatusCodes();

    private readonly FrozenDictionary<string, string> _models;
    private readonly FrozenDictionary<string, string> _providers;
    private readonly FrozenDictionary<string, string> _taskTypes;
    private readonly FrozenDictionary<string, string> _deployments;

    public MetricLabels(GatewayOptions options)
    {
        _models = Canonical(options.Models.Keys);
        _providers = Canonical(options.Providers.Keys);
        _deployments = Canonical(options.Models.Select(m => m.Value.UpstreamModel ?? m.Key));
        _taskTypes = Canonical([.. options.Routing.TaskTypes.Keys, options.Routing.DefaultTaskType, Routing.ModelRouter.EmbeddingsTaskType]);
    }

    public string Model(string? name) => Lookup(_models, name);

    public string Provider(string? name) => Lookup(_providers, name);

    public string TaskType(string? name) => Lookup(_taskTypes, name);

    /// <summary>A deployment's upstream model name, as configured (with the provider label it names one deployment).</summary>
    public string Deployment(string? upstreamModel) => Lookup(_deployments, upstreamModel);

    /// <summary>
    /// The HTTP status code sent to the client, as text; <c>broken</c> for a stream that failed after it
    /// started; 499 when the client went away first. A record with no status is a request an unexpected
    /// exception ended: the client got a 500.
    /// </summary>
    public static string Status(RequestRecord record)
    {
        if (record.Outcome == RequestOutcomes.Broken) return Broken;
        var status = record.Status == 0 ? 500 : record.Status;
        return status is >= 100 and < 600 ? s_statusCodes[status - 100] : Other;
    }

    /// <summary>hit, miss, bypass or off; anything else is <c>other</c>.</summary>
    public static string CacheResult(string? result) => result switch
    {
        "hit" => "hit",
        "miss" => "miss",
        "bypass" => "bypass",
        "off" => "off",
        null or "" => None,
        _ => Other,
    };

    private static string Lookup(FrozenDictionary<string, string> known, string? name) =>
        string.IsNullOrEmpty(name) ? None : known.TryGetValue(name, out var canonical) ? canonical : Other;

    private static FrozenDictionary<string, string> Canonical(IEnumerable<string> names)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            if (!string.IsNullOrEmpty(name)) map.TryAdd(name, name);
        }
        return map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    private static string[] CreateStatusCodes()
    {
        var codes = new string[500];
        for (var i = 0; i < codes.Length; i++) codes[i] = (i + 100).ToString(CultureInfo.InvariantCulture);
        return codes;
    }
}
