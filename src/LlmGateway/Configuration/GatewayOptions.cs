namespace LlmGateway.Configuration;

/// <summary>
/// The <c>Gateway</c> configuration section. Names follow the external contract (shared CONTRACT.md);
/// defaults live here and in <see cref="GatewayDefaults"/>, nowhere else.
/// </summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>
    /// <c>shipped</c> (the default): the shipped appsettings.json is the first layer. <c>none</c>: it says
    /// nothing under Gateway, so the operator's own layers are the whole configuration
    /// (see <see cref="GatewayConfigurationLayers"/>).
    /// </summary>
    public string Defaults { get; set; } = GatewayConfigurationLayers.DefaultsShipped;

    public Dictionary<string, ProviderOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public Dictionary<string, ModelOptions> Models { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public RoutingOptions Routing { get; set; } = new();
    public ResilienceOptions Resilience { get; set; } = new();
    public CacheOptions Cache { get; set; } = new();
    public BudgetOptions Budgets { get; set; } = new();
    public AuthOptions Auth { get; set; } = new();
    public LimitsOptions Limits { get; set; } = new();
    public LoggingOptions Logging { get; set; } = new();
    public StoreOptions Store { get; set; } = new();
    public Batches.BatchOptions Batches { get; set; } = new();
    public PassThrough.PassThroughOptions PassThrough { get; set; } = new();
    public Conversations.ConversationOptions Conversations { get; set; } = new();
    public Http.ServerOptions Server { get; set; } = new();
}

public static class ProviderTypes
{
    public const string OpenAi = "openai";
    public const string AzureOpenAi = "azure-openai";
    public const string Anthropic = "anthropic";
    public const string Gemini = "gemini";
    public const string Ollama = "ollama";
    public const string Mock = "mock";

    public static readonly string[] All = [OpenAi, AzureOpenAi, Anthropic, Gemini, Ollama, Mock];

    /// <summary>The types with an embeddings API the gateway speaks (Anthropic has none).</summary>
    public static readonly string[] WithEmbeddings = [OpenAi, AzureOpenAi, Gemini, Ollama, Mock];
}

public sealed class ProviderOptions
{
    public string Type { get; set; } = "";
    public string? BaseUrl { get; set; }

    /// <summary>Name of the environment variable that holds the key. The key itself is never in a file.</summary>
    public string? ApiKeyEnv { get; set; }

    /// <summary>Counts as local for local-only routing.</summary>
    public bool? Local { get; set; }

    /// <summary>azure-openai only.</summary>
    public string? ApiVersion { get; set; }

    public int MaxConcurrency { get; set; } = GatewayDefaults.MaxConcurrency;
    public int Rpm { get; set; }
    public int Tpm { get; set; }

    /// <summary>
    /// Seconds between active health probes (a cheap models/tags call) so an idle provider still has a
    /// known status; 0, the default, is off, since a paid provider may bill or rate-limit even those.
    /// </summary>
    public int ProbeIntervalSeconds { get; set; }

    /// <summary>Overrides of <c>Gateway:Resilience</c> for this provider; unset values inherit.</summary>
    public ResilienceOverrides? Resilience { get; set; }

    /// <summary>Settings of the built-in <c>mock</c> provider type.</summary>
    public MockProviderOptions Mock { get; set; } = new();

    /// <summary>Local unless said otherwise: Ollama and the mock run on the machine.</summary>
    public bool IsLocal => Local ?? (Type is ProviderTypes.Ollama or ProviderTypes.Mock);
}

public sealed class MockProviderOptions
{
    /// <summary>Delay before the response (non-streaming) or the first chunk (streaming).</summary>
    public int LatencyMs { get; set; }

    /// <summary>Delay between streamed chunks.</summary>
    public int ChunkDelayMs { get; set; }

    /// <summary>How many content chunks a streamed answer is cut into (at most one per word).</summary>
    public int Chunks { get; set; } = 8;
}

public sealed class ModelOptions
{
    public string Provider { get; set; } = "";
    public string? UpstreamModel { get; set; }
    public int Priority { get; set; } = 100;
    public decimal CostPer1kInput { get; set; }
    public decimal CostPer1kOutput { get; set; }
    public decimal? CostPer1kCachedInput { get; set; }
    public int ContextWindow { get; set; } = GatewayDefaults.ContextWindow;
    public int MaxOutputTokens { get; set; } = GatewayDefaults.MaxOutputTokens;
    public List<string> Capabilities { get; set; } = [];
    public double Quality { get; set; } = 0.5;
    public List<string> Fallbacks { get; set; } = [];
}

public sealed class RoutingOptions
{
    public string Strategy { get; set; } = "priority";
    public RoutingWeights Weights { get; set; } = new();
    public bool LocalOnly { get; set; }
    public string DefaultTaskType { get; set; } = "general";
    public Dictionary<string, TaskTypeOptions> TaskTypes { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class RoutingWeights
{
    public double Cost { get; set; } = 0.3;
    public double Performance { get; set; } = 0.4;
    public double Quality { get; set; } = 0.2;
    public double Capabilities { get; set; } = 0.1;
}

public sealed class TaskTypeOptions
{
    public List<string> Models { get; set; } = [];
    public string? Strategy { get; set; }
    public List<string> Patterns { get; set; } = [];

    /// <summary>Whose Patterns are tried first (lowest first, then by name): configuration binding does not keep the file's order.</summary>
    public int Priority { get; set; } = 100;
}

public sealed class ResilienceOptions
{
    public int MaxRetries { get; set; } = 2;
    public int BaseDelayMs { get; set; } = 200;
    public int MaxDelayMs { get; set; } = 10_000;
    public int FirstTokenTimeoutSeconds { get; set; } = 30;
    public int StreamIdleTimeoutSeconds { get; set; } = 30;
    public int TotalTimeoutSeconds { get; set; } = 600;

    /// <summary>
    /// The longest one non-streaming call may take before it is abandoned and retried or failed over;
    /// a hung upstream otherwise holds the client for the whole <see cref="TotalTimeoutSeconds"/>.
    /// Streams have <see cref="FirstTokenTimeoutSeconds"/> and <see cref="StreamIdleTimeoutSeconds"/> instead.
    /// </summary>
    public int AttemptTimeoutSeconds { get; set; } = 120;

    /// <summary>How long a deployment cools down after an upstream 429 or 529 that says no Retry-After of its own.</summary>
    public int CooldownSeconds { get; set; } = 5;

    public CircuitBreakerOptions CircuitBreaker { get; set; } = new();
}

/// <summary>Per-provider overrides: null means "inherit from Gateway:Resilience".</summary>
public sealed class ResilienceOverrides
{
    public int? MaxRetries { get; set; }
    public int? BaseDelayMs { get; set; }
    public int? MaxDelayMs { get; set; }
    public int? FirstTokenTimeoutSeconds { get; set; }
    public int? StreamIdleTimeoutSeconds { get; set; }
    public int? TotalTimeoutSeconds { get; set; }
    public int? AttemptTimeoutSeconds { get; set; }
    public int? CooldownSeconds { get; set; }
    public CircuitBreakerOptions? CircuitBreaker { get; set; }

    public ResilienceOptions ApplyTo(ResilienceOptions global) => new()
    {
        MaxRetries = MaxRetries ?? global.MaxRetries,
        BaseDelayMs = BaseDelayMs ?? global.BaseDelayMs,
        MaxDelayMs = MaxDelayMs ?? global.MaxDelayMs,
        FirstTokenTimeoutSeconds = FirstTokenTimeoutSeconds ?? global.FirstTokenTimeoutSeconds,
        StreamIdleTimeoutSeconds = StreamIdleTimeoutSeconds ?? global.StreamIdleTimeoutSeconds,
        TotalTimeoutSeconds = TotalTimeoutSeconds ?? global.TotalTimeoutSeconds,
        AttemptTimeoutSeconds = AttemptTimeoutSeconds ?? global.AttemptTimeoutSeconds,
        CooldownSeconds = CooldownSeconds ?? global.CooldownSeconds,
        CircuitBreaker = CircuitBreaker ?? global.CircuitBreaker,
    };
}

public sealed class CircuitBreakerOptions
{
    public double FailureRatio { get; set; } = 0.5;
    public int MinimumThroughput { get; set; } = 5;
    public int SamplingSeconds { get; set; } = 30;
    public int BreakSeconds { get; set; } = 30;
}

public sealed class CacheOptions
{
    public bool Enabled { get; set; } = true;
    public int TtlSeconds { get; set; } = 3600;
    public bool OnlyDeterministic { get; set; } = true;
    public int MaxEntryBytes { get; set; } = 1_048_576;

    /// <summary>
    /// With gateway keys on, each key has a cache of its own: one key's answers (and what its prompts reveal)
    /// are never served to another. True shares one cache among all keys (more hits, for keys of one team).
    /// </summary>
    public bool SharedAcrossKeys { get; set; }
}

public sealed class BudgetOptions
{
    public BudgetLimit Global { get; set; } = new();
    public Dictionary<string, BudgetLimit> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public decimal MaxCostPerRequestUsd { get; set; }
    public List<double> AlertThresholds { get; set; } = [];
    public string FailMode { get; set; } = "open";

    /// <summary>
    /// A reservation lives this long unless the instance that made it renews it (it does, every third of this,
    /// while the request runs): the bound on how long a crashed instance's holds block budget.
    /// </summary>
    public int ReservationLeaseSeconds { get; set; } = 60;
}

/// <summary>
/// Tuning of the store behind the cache, budgets and ledger (<c>ConnectionStrings:Redis</c> picks Redis or
/// the embedded in-memory store). The defaults suit one Redis on the same network.
/// </summary>
public sealed class StoreOptions
{
    /// <summary>Prepended to every Redis key, so several gateways (or tests) can share one Redis without seeing each other.</summary>
    public string KeyPrefix { get; set; } = "llmgw:";

    /// <summary>Connect, sync and per-call timeout. A slow store costs a request at most this much.</summary>
    public int TimeoutMs { get; set; } = 250;

    /// <summary>How long the store is skipped after <see cref="FailuresToBreak"/> calls in a row failed.</summary>
    public int BreakSeconds { get; set; } = 5;
    public int FailuresToBreak { get; set; } = 3;

    /// <summary>
    /// After the store first connects, calls get 4 × <see cref="TimeoutMs"/> (at least 1 s) and timeouts do not trip
    /// the breaker for this long: a new connection's first burst is slow (scripts, JIT, thread pool) without Redis being down.
    /// </summary>
    public double StartupGraceSeconds { get; set; } = 10;

    /// <summary>The ledger keeps about this many records (a capped Redis stream, or a ring in memory).</summary>
    public int LedgerMaxEntries { get; set; } = 100_000;

    /// <summary>Ledger records held in memory while the store is unreachable; beyond this the oldest are dropped (and counted).</summary>
    public int LedgerBufferMax { get; set; } = 100_000;

    /// <summary>Total size of the in-memory response cache; the oldest entries go first when it is full.</summary>
    public long MemoryCacheMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// Where usage records and budget spend the store could not take yet are kept on disk (with Redis only), so a
    /// restart or a crash during a Redis outage loses none of them: the next start on this host writes them.
    /// Empty: <c>{temp}/llmgw-spool/{KeyPrefix}</c>. Give each deployment sharing a host its own path (a volume in a container).
    /// </summary>
    public string SpoolPath { get; set; } = "";

    /// <summary>The most each spool file may hold; beyond it new records are dropped (and counted, and logged).</summary>
    public long SpoolMaxBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>The spool directory this configuration uses.</summary>
    public string SpoolDirectory()
    {
        if (SpoolPath.Length > 0) return SpoolPath;
        var name = new string([.. KeyPrefix.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')]);
        return Path.Combine(Path.GetTempPath(), "llmgw-spool", name.Length == 0 ? "default" : name);
    }
}

public sealed class BudgetLimit
{
    public decimal DailyUsd { get; set; }
    public decimal MonthlyUsd { get; set; }
}

public sealed class AuthOptions
{
    public string Mode { get; set; } = "none";
    public string AdminKeyEnv { get; set; } = "GATEWAY_ADMIN_KEY";

    /// <summary>
    /// The variable holding the key a Prometheus scrape presents (<c>Authorization: Bearer</c>) to see per-key
    /// series on /metrics (key ids and their spend); the admin key works too. Without either, /metrics leaves them out.
    /// </summary>
    public string MetricsKeyEnv { get; set; } = "GATEWAY_METRICS_KEY";
    public List<KeyOptions> Keys { get; set; } = [];
}

public sealed class KeyOptions
{
    public string Id { get; set; } = "";
    public string Sha256 { get; set; } = "";
    public decimal DailyUsd { get; set; }
    public decimal MonthlyUsd { get; set; }
    public int Rpm { get; set; }
    public int Tpm { get; set; }
    /// <summary>
    /// Model names or patterns the key may use; empty means every model. Not initialised to ["*"]:
    /// the configuration binder appends to an initialised list, so a key limited to one model
    /// would have been given "*" as well.
    /// </summary>
    public List<string> Models { get; set; } = [];
    public bool LocalOnly { get; set; }
}

/// <summary>
/// <c>Gateway:Limits</c>: every size a client controls, each checked before anything is allocated for it
/// (a 400 naming the parameter). Defaults are OpenAI's own limits where it has one, so an SDK that works
/// against OpenAI works here; the defaults live here and nowhere else.
/// </summary>
public sealed class LimitsOptions
{
    public int MaxRequestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>How long a client may take to send its request headers (slow clients can't pin connections).</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 10;

    public const int DefaultResponseWriteTimeoutSeconds = 30;

    /// <summary>
    /// How long one write to a client may wait on it (a client that stopped reading) before the connection is cut
    /// and the upstream call behind it cancelled; recorded as the client's outcome (499), never the provider's.
    /// </summary>
    public int ResponseWriteTimeoutSeconds { get; set; } = DefaultResponseWriteTimeoutSeconds;

    /// <summary>Chat <c>messages</c> entries: far above any real conversation, and each one is work for every translating provider.</summary>
    public int MaxMessages { get; set; } = 10_000;

    /// <summary>Chat <c>tools</c> entries (OpenAI allows 128; some compatible servers more).</summary>
    public int MaxTools { get; set; } = 512;

    /// <summary>Chat <c>n</c>: answers per request, each of which may use max_tokens (OpenAI's own limit).</summary>
    public int MaxN { get; set; } = 128;

    /// <summary>
    /// Embeddings <c>dimensions</c>: the longest vector a client may ask for. The largest hosted models
    /// return 3072 (OpenAI, Gemini) or 4096; the built-in mock allocates what is asked, so this bounds it
    /// (at the defaults one mock answer is at most 2048 x 4096 floats, about 100 MB of JSON).
    /// </summary>
    public int MaxEmbeddingDimensions { get; set; } = 4096;

    /// <summary>Embeddings <c>input</c> entries in one request (OpenAI's own limit).</summary>
    public int MaxEmbeddingInputs { get; set; } = 2048;

    /// <summary>Adds every problem with the section to <paramref name="errors"/>.</summary>
    public void Validate(List<string> errors)
    {
        if (MaxRequestBytes <= 0) errors.Add("Gateway:Limits:MaxRequestBytes must be positive.");
        if (RequestHeadersTimeoutSeconds is < 1 or > 300) errors.Add("Gateway:Limits:RequestHeadersTimeoutSeconds must be between 1 and 300.");
        if (ResponseWriteTimeoutSeconds is < 1 or > 3600) errors.Add("Gateway:Limits:ResponseWriteTimeoutSeconds must be between 1 and 3600.");
        if (MaxMessages is < 1 or > 1_000_000) errors.Add("Gateway:Limits:MaxMessages must be between 1 and 1000000.");
        if (MaxTools is < 0 or > 100_000) errors.Add("Gateway:Limits:MaxTools must be between 0 and 100000.");
        if (MaxN is < 1 or > 1024) errors.Add("Gateway:Limits:MaxN must be between 1 and 1024.");
        if (MaxEmbeddingDimensions is < 1 or > 65_536) errors.Add("Gateway:Limits:MaxEmbeddingDimensions must be between 1 and 65536.");
        if (MaxEmbeddingInputs is < 1 or > 100_000) errors.Add("Gateway:Limits:MaxEmbeddingInputs must be between 1 and 100000.");
    }
}

public sealed class LoggingOptions
{
    /// <summary>Off by default: prompt and completion text never reach the logs unless an operator opts in.</summary>
    public bool IncludeContent { get; set; }
}

/// <summary>Defaults that more than one place needs.</summary>
public static class GatewayDefaults
{
    /// <summary>
    /// Calls in flight per provider. A stream holds its slot (and one upstream connection) for its whole
    /// length, so the limit must cover the streams an instance serves at once; 256 turned away 744 of
    /// 1,000 concurrent streams. An open stream costs about 103 KB (the benchmark's 1,000 open streams:
    /// RSS 92 to 192 MB), so a full 1,024 is about 105 MB; no queue, see ProviderLimits.
    /// </summary>
    public const int MaxConcurrency = 1024;
    public const int ContextWindow = 128_000;
    public const int MaxOutputTokens = 4_096;
    public const string AutoModel = "auto";
}
