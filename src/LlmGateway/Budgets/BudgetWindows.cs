using System.Collections.Concurrent;
using System.Globalization;
using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Budgets;

/// <summary>Budget scopes and windows as they are named in /admin/budgets and the budget gauges.</summary>
public static class BudgetScopes
{
    public const string Global = "global";
    public static string Provider(string name) => "provider:" + name;
    public static string Key(string id) => "key:" + id;

    public const string Daily = "daily";
    public const string Monthly = "monthly";
}

/// <summary>One limited scope in one window: the store counter that tracks it and its limit.</summary>
public sealed record ScopeCounter(string Scope, string Window, decimal LimitUsd, DateTimeOffset WindowEnd, CounterLimit Counter)
{
    public string Key => Counter.Key;
}

/// <summary>
/// The counters an attempt falls under, with the lists the store takes built once with them: every reserve and
/// settle passes them, and copying them out per call was two arrays per request.
/// </summary>
internal sealed class AttemptCounters
{
    public AttemptCounters(ScopeCounter[] scopes)
    {
        Scopes = scopes;
        Limits = new CounterLimit[scopes.Length];
        Refs = new CounterRef[scopes.Length];
        for (var i = 0; i < scopes.Length; i++)
        {
            Limits[i] = scopes[i].Counter;
            Refs[i] = scopes[i].Counter.Ref;
        }
    }

    public ScopeCounter[] Scopes { get; }
    public CounterLimit[] Limits { get; }
    public CounterRef[] Refs { get; }
    public int Length => Scopes.Length;
    public ScopeCounter this[int index] => Scopes[index];
}

/// <summary>
/// The counters of the current UTC day and month. Built once per day (and per scope on first use),
/// so admitting a request allocates nothing to find its counters.
/// </summary>
internal sealed class WindowSet
{
    /// <summary>Counters outlive their window by a day, so a late settle still finds its counter.</summary>
    private static readonly TimeSpan s_keep = TimeSpan.FromDays(1);

    /// <summary>
    /// By provider, key and the key's limits: a key revoked and created again under the same id with another limit
    /// (or a config key whose limit changed) gets counters with its new limit at once, not at the next day.
    /// </summary>
    private readonly ConcurrentDictionary<(string Provider, string Key, decimal DailyUsd, decimal MonthlyUsd), AttemptCounters> _byAttempt = new();
    private readonly ConcurrentDictionary<string, ScopeCounter[]> _byProvider = new(StringComparer.OrdinalIgnoreCase);

    public WindowSet(DateTimeOffset now)
    {
        var day = now.UtcDateTime.Date;
        DayEnd = new DateTimeOffset(day.AddDays(1), TimeSpan.Zero);
        MonthEnd = new DateTimeOffset(new DateTime(day.Year, day.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1));
        DayId = "d:" + day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        MonthId = "m:" + day.ToString("yyyy-MM", CultureInfo.InvariantCulture);
    }

    public DateTimeOffset DayEnd { get; }
    public DateTimeOffset MonthEnd { get; }
    public string DayId { get; }
    public string MonthId { get; }

    /// <summary>The daily and monthly counters of one scope, for the windows that have a limit.</summary>
    public void AddCounters(List<ScopeCounter> into, string scope, BudgetLimit? limit)
    {
        if (limit is null) return;
        if (limit.DailyUsd > 0) into.Add(Counter(scope, BudgetScopes.Daily, DayId, DayEnd, limit.DailyUsd));
        if (limit.MonthlyUsd > 0) into.Add(Counter(scope, BudgetScopes.Monthly, MonthId, MonthEnd, limit.MonthlyUsd));
    }

    /// <summary>Every counter an attempt on <paramref name="provider"/> by <paramref name="keyId"/> must fit under.</summary>
    public AttemptCounters ForAttempt(string provider, string? keyId, BudgetLimit? global, BudgetLimit? providerLimit, BudgetLimit? keyLimit) =>
        _byAttempt.GetOrAdd((provider, keyLimit is null ? "" : keyId ?? "", keyLimit?.DailyUsd ?? 0, keyLimit?.MonthlyUsd ?? 0), static (k, s) =>
        {
            var list = new List<ScopeCounter>(6);
            s.Set.AddCounters(list, BudgetScopes.Global, s.Global);
            s.Set.AddCounters(list, BudgetScopes.Provider(k.Provider), s.ProviderLimit);
            if (k.Key.Length > 0) s.Set.AddCounters(list, BudgetScopes.Key(k.Key), s.KeyLimit);
            return new AttemptCounters([.. list]);
        }, (Set: this, Global: global, ProviderLimit: providerLimit, KeyLimit: keyLimit));

    /// <summary>The counters of one provider's own scope (what the router asks about).</summary>
    public ScopeCounter[] ForProvider(string provider, BudgetLimit limit) =>
        _byProvider.GetOrAdd(provider, static (p, s) =>
        {
            var list = new List<ScopeCounter>(2);
            s.Set.AddCounters(list, BudgetScopes.Provider(p), s.Limit);
            return [.. list];
        }, (Set: this, Limit: limit));

    private static ScopeCounter Counter(string scope, string window, string windowId, DateTimeOffset end, decimal limit) =>
        new(scope, window, limit, end, new CounterLimit($"budget:{scope}:{windowId}", Nanos.FromUsd(limit), end + s_keep));
}
