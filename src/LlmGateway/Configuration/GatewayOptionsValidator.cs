using Microsoft.Extensions.Options;

namespace LlmGateway.Configuration;

/// <summary>
/// Checks the whole Gateway section and reports every problem at once, so an operator fixes a bad file
/// in one go instead of one restart per mistake.
/// </summary>
public sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    private static readonly string[] s_strategies = Routing.RoutingStrategies.All;

    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        var errors = Validate(options);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static bool IsEmbeddingsModel(ModelOptions m) =>
        (Routing.CapabilityNames.Parse(m.Capabilities) & Routing.ModelCapabilities.Embeddings) != 0;

    private static string KindMismatch(bool wantedEmbeddings) => wantedEmbeddings
        ? "a chat model where only embeddings models belong"
        : "an embeddings model where only chat models belong";

    public static List<string> Validate(GatewayOptions o)
    {
        var errors = new List<string>();

        if (!string.Equals(o.Defaults, GatewayConfigurationLayers.DefaultsShipped, StringComparison.OrdinalIgnoreCase) &&
            !string.Equals(o.Defaults, GatewayConfigurationLayers.DefaultsNone, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"Gateway:Defaults is '{o.Defaults}'; expected '{GatewayConfigurationLayers.DefaultsShipped}' or '{GatewayConfigurationLayers.DefaultsNone}'.");
        }

        foreach (var (name, p) in o.Providers)
        {
            var at = $"Gateway:Providers:{name}";
            if (!ProviderTypes.All.Contains(p.Type))
            {
                errors.Add($"{at}:Type is '{p.Type}'; expected one of {string.Join(", ", ProviderTypes.All)}.");
            }
            if (p.Type != ProviderTypes.Mock)
            {
                if (string.IsNullOrWhiteSpace(p.BaseUrl))
                {
                    errors.Add($"{at}:BaseUrl is required for type '{p.Type}'.");
                }
                else if (!Uri.TryCreate(p.BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                {
                    errors.Add($"{at}:BaseUrl '{p.BaseUrl}' is not an absolute http(s) URL.");
                }
            }
            if (p.Type == ProviderTypes.AzureOpenAi && string.IsNullOrWhiteSpace(p.ApiVersion))
            {
                errors.Add($"{at}:ApiVersion is required for type 'azure-openai'.");
            }
            if (p.ApiKeyEnv is { Length: > 0 } env && !IsEnvironmentVariableName(env))
            {
                // A common mistake is pasting the key itself here; say so without echoing it.
                errors.Add($"{at}:ApiKeyEnv must name an environment variable (letters, digits, underscores), not hold a key.");
            }
            if (p.MaxConcurrency <= 0) errors.Add($"{at}:MaxConcurrency must be positive.");
            if (p.Rpm < 0) errors.Add($"{at}:Rpm must be 0 (unlimited) or positive.");
            if (p.Tpm < 0) errors.Add($"{at}:Tpm must be 0 (unlimited) or positive.");
            if (p.ProbeIntervalSeconds < 0) errors.Add($"{at}:ProbeIntervalSeconds must be 0 (off) or positive.");
            if (p.Mock.LatencyMs < 0 || p.Mock.ChunkDelayMs < 0) errors.Add($"{at}:Mock delays must not be negative.");
            if (p.Mock.Chunks <= 0) errors.Add($"{at}:Mock:Chunks must be positive.");
            if (p.Resilience is { } r)
            {
                ValidateResilience(errors, $"{at}:Resilience", r.ApplyTo(o.Resilience));
            }
        }

        if (o.Models.Count == 0)
        {
            errors.Add("Gateway:Models is empty: configure at least one model.");
        }
        foreach (var (name, m) in o.Models)
        {
            var at = $"Gateway:Models:{name}";
            var embeddings = IsEmbeddingsModel(m);
            if (string.Equals(name, GatewayDefaults.AutoModel, StringComparison.OrdinalIgnoreCase))
            {
                errors.Add($"{at}: 'auto' is reserved for the task-type router.");
            }
            if (string.IsNullOrWhiteSpace(m.Provider))
            {
                errors.Add($"{at}:Provider is required.");
            }
            else if (!o.Providers.TryGetValue(m.Provider, out var provider))
            {
                errors.Add($"{at}:Provider '{m.Provider}' is not defined under Gateway:Providers.");
            }
            else if (embeddings && !ProviderTypes.WithEmbeddings.Contains(provider.Type, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{at} lists the embeddings capability, but provider '{m.Provider}' is of type '{provider.Type}', which has no embeddings API; types with one: {string.Join(", ", ProviderTypes.WithEmbeddings)}.");
            }
            if (m.CostPer1kInput < 0 || m.CostPer1kOutput < 0 || m.CostPer1kCachedInput < 0)
            {
                errors.Add($"{at}: costs must not be negative.");
            }
            if (m.ContextWindow <= 0) errors.Add($"{at}:ContextWindow must be positive.");
            // An embeddings model generates no tokens; its MaxOutputTokens is not used.
            if (m.MaxOutputTokens <= 0 && !embeddings) errors.Add($"{at}:MaxOutputTokens must be positive.");
            if (m.Quality is < 0 or > 1) errors.Add($"{at}:Quality must be between 0 and 1.");
            foreach (var f in m.Fallbacks)
            {
                if (!o.Models.ContainsKey(f)) errors.Add($"{at}:Fallbacks names '{f}', which is not a configured model.");
                else if (string.Equals(f, name, StringComparison.OrdinalIgnoreCase)) errors.Add($"{at}:Fallbacks names the model itself.");
                else if (IsEmbeddingsModel(o.Models[f]) != embeddings) errors.Add($"{at}:Fallbacks names '{f}', {KindMismatch(embeddings)}.");
            }
        }

        var r2 = o.Routing;
        if (!s_strategies.Contains(r2.Strategy)) errors.Add($"Gateway:Routing:Strategy is '{r2.Strategy}'; expected one of {string.Join(", ", s_strategies)}.");
        if (r2.Weights.Cost < 0 || r2.Weights.Performance < 0 || r2.Weights.Quality < 0 || r2.Weights.Capabilities < 0)
        {
            errors.Add("Gateway:Routing:Weights must not be negative.");
        }
        else if (r2.Weights.Cost + r2.Weights.Performance + r2.Weights.Quality + r2.Weights.Capabilities <= 0 &&
                 (r2.Strategy == "balanced" || r2.TaskTypes.Values.Any(t => t.Strategy == "balanced")))
        {
            errors.Add("Gateway:Routing:Weights are all 0, so the balanced strategy has nothing to weigh: give at least one a positive weight.");
        }
        if (r2.TaskTypes.Count > 0 && !r2.TaskTypes.ContainsKey(r2.DefaultTaskType))
        {
            errors.Add($"Gateway:Routing:DefaultTaskType '{r2.DefaultTaskType}' is not one of Gateway:Routing:TaskTypes.");
        }
        foreach (var (name, t) in r2.TaskTypes)
        {
            var at = $"Gateway:Routing:TaskTypes:{name}";
            if (t.Strategy is { } s && !s_strategies.Contains(s)) errors.Add($"{at}:Strategy is '{s}'; expected one of {string.Join(", ", s_strategies)}.");
            // Auto embeddings requests use the task type named "embeddings"; every other task type is for chat.
            var forEmbeddings = string.Equals(name, Routing.ModelRouter.EmbeddingsTaskType, StringComparison.OrdinalIgnoreCase);
            foreach (var m in t.Models)
            {
                if (!o.Models.TryGetValue(m, out var model)) errors.Add($"{at}:Models names '{m}', which is not a configured model.");
                else if (IsEmbeddingsModel(model) != forEmbeddings) errors.Add($"{at}:Models names '{m}', {KindMismatch(forEmbeddings)}.");
            }
            for (var i = 0; i < t.Patterns.Count; i++)
            {
                try
                {
                    _ = new System.Text.RegularExpressions.Regex(t.Patterns[i]);
                }
                catch (ArgumentException e)
                {
                    errors.Add($"{at}:Patterns:{i} is not a valid regular expression: {e.Message}");
                }
            }
        }

        ValidateResilience(errors, "Gateway:Resilience", o.Resilience);

        if (o.Cache.TtlSeconds <= 0) errors.Add("Gateway:Cache:TtlSeconds must be positive.");
        if (o.Cache.MaxEntryBytes <= 0) errors.Add("Gateway:Cache:MaxEntryBytes must be positive.");
        o.Conversations.Validate(errors);

        var b = o.Budgets;
        ValidateLimit(errors, "Gateway:Budgets:Global", b.Global);
        foreach (var (name, l) in b.Providers)
        {
            if (!o.Providers.ContainsKey(name)) errors.Add($"Gateway:Budgets:Providers:{name} names a provider that is not configured.");
            ValidateLimit(errors, $"Gateway:Budgets:Providers:{name}", l);
        }
        if (b.MaxCostPerRequestUsd < 0) errors.Add("Gateway:Budgets:MaxCostPerRequestUsd must not be negative.");
        if (b.AlertThresholds.Any(t => t is <= 0 or > 10)) errors.Add("Gateway:Budgets:AlertThresholds must be fractions above 0 (1.0 = 100 %).");
        if (b.FailMode is not ("open" or "closed")) errors.Add($"Gateway:Budgets:FailMode is '{b.FailMode}'; expected open or closed.");
        if (b.ReservationLeaseSeconds is < 2 or > 3600) errors.Add("Gateway:Budgets:ReservationLeaseSeconds must be between 2 and 3600.");

        var a = o.Auth;
        if (a.Mode is not ("none" or "keys")) errors.Add($"Gateway:Auth:Mode is '{a.Mode}'; expected none or keys.");
        if (!string.IsNullOrEmpty(a.AdminKeyEnv) && !IsEnvironmentVariableName(a.AdminKeyEnv))
        {
            errors.Add("Gateway:Auth:AdminKeyEnv must name an environment variable, not hold a key.");
        }
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var hashes = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < a.Keys.Count; i++)
        {
            var k = a.Keys[i];
            var at = $"Gateway:Auth:Keys:{i}";
            if (string.IsNullOrWhiteSpace(k.Id)) errors.Add($"{at}:Id is required.");
            else if (!ids.Add(k.Id)) errors.Add($"{at}:Id '{k.Id}' is used twice.");
            if (k.Sha256.Length != 64 || !k.Sha256.All(Uri.IsHexDigit)) errors.Add($"{at}:Sha256 must be the 64-character hex SHA-256 of the key.");
            if (k.DailyUsd < 0 || k.MonthlyUsd < 0 || k.Rpm < 0 || k.Tpm < 0) errors.Add($"{at}: limits must not be negative.");
            if (k.Models.Any(string.IsNullOrWhiteSpace)) errors.Add($"{at}:Models has an empty entry; list model names or patterns (\"*\" is every model).");
            if (k.Sha256.Length == 64 && !hashes.Add(k.Sha256.ToLowerInvariant())) errors.Add($"{at}:Sha256 is the same as another key's.");
        }

        o.Limits.Validate(errors);
        Http.ServerOptions.Validate(o.Server, errors);
        Batches.BatchOptions.Validate(o.Batches, errors);

        var st = o.Store;
        if (st.TimeoutMs is <= 0 or > 60_000) errors.Add("Gateway:Store:TimeoutMs must be between 1 and 60000.");
        if (st.BreakSeconds < 0) errors.Add("Gateway:Store:BreakSeconds must not be negative.");
        if (st.FailuresToBreak < 1) errors.Add("Gateway:Store:FailuresToBreak must be at least 1.");
        if (st.StartupGraceSeconds is < 0 or > 600 || double.IsNaN(st.StartupGraceSeconds)) errors.Add("Gateway:Store:StartupGraceSeconds must be between 0 and 600.");
        if (st.LedgerMaxEntries < 1) errors.Add("Gateway:Store:LedgerMaxEntries must be positive.");
        if (st.LedgerBufferMax < 1) errors.Add("Gateway:Store:LedgerBufferMax must be positive.");
        if (st.MemoryCacheMaxBytes < 1) errors.Add("Gateway:Store:MemoryCacheMaxBytes must be positive.");
        if (st.KeyPrefix.Length > 100) errors.Add("Gateway:Store:KeyPrefix must be at most 100 characters.");
        if (st.SpoolMaxBytes < 1024) errors.Add("Gateway:Store:SpoolMaxBytes must be at least 1024.");
        if (st.SpoolPath.Length > 0 && !Path.IsPathFullyQualified(st.SpoolPath)) errors.Add($"Gateway:Store:SpoolPath '{st.SpoolPath}' must be an absolute path.");

        PassThrough.PassThroughOptions.Validate(o, errors);
        return errors;
    }

    private static void ValidateResilience(List<string> errors, string at, ResilienceOptions r)
    {
        if (r.MaxRetries < 0) errors.Add($"{at}:MaxRetries must not be negative.");
        if (r.BaseDelayMs < 0) errors.Add($"{at}:BaseDelayMs must not be negative.");
        if (r.MaxDelayMs < r.BaseDelayMs) errors.Add($"{at}:MaxDelayMs must be at least BaseDelayMs.");
        Timeout(errors, at, "FirstTokenTimeoutSeconds", r.FirstTokenTimeoutSeconds);
        Timeout(errors, at, "StreamIdleTimeoutSeconds", r.StreamIdleTimeoutSeconds);
        Timeout(errors, at, "TotalTimeoutSeconds", r.TotalTimeoutSeconds);
        Timeout(errors, at, "AttemptTimeoutSeconds", r.AttemptTimeoutSeconds);
        if (r.CooldownSeconds <= 0) errors.Add($"{at}:CooldownSeconds must be positive.");
        var cb = r.CircuitBreaker;
        if (cb.FailureRatio is <= 0 or > 1) errors.Add($"{at}:CircuitBreaker:FailureRatio must be in (0, 1].");
        if (cb.MinimumThroughput < 2) errors.Add($"{at}:CircuitBreaker:MinimumThroughput must be at least 2.");
        if (cb.SamplingSeconds <= 0) errors.Add($"{at}:CircuitBreaker:SamplingSeconds must be positive.");
        if (cb.BreakSeconds <= 0) errors.Add($"{at}:CircuitBreaker:BreakSeconds must be positive.");
    }

    /// <summary>The longest timeout accepted: 30 days. Every timeout arms a timer, and a timer reaches at most about 49.7 days
    /// (2^32 - 2 ms); a longer one was accepted at start and then failed every request with an exception.</summary>
    internal const int MaxTimeoutSeconds = 30 * 24 * 3600;

    private static void Timeout(List<string> errors, string at, string name, int seconds)
    {
        if (seconds is <= 0 or > MaxTimeoutSeconds) errors.Add($"{at}:{name} must be between 1 and {MaxTimeoutSeconds} seconds (30 days).");
    }

    private static void ValidateLimit(List<string> errors, string at, BudgetLimit l)
    {
        if (l.DailyUsd < 0 || l.MonthlyUsd < 0) errors.Add($"{at}: limits must not be negative (0 = no limit).");
    }

    private static bool IsEnvironmentVariableName(string s) =>
        s.Length <= 128 && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !char.IsAsciiDigit(s[0]);
}
