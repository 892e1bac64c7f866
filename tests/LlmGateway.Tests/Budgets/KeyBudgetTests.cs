using System.Text;
using LlmGateway.Budgets;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Providers.Mock;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LlmGateway.Tests.Budgets;

/// <summary>
/// The key:&lt;id&gt; scope. Nothing sets a request's key id over HTTP until the keys capability lands,
/// so these drive the real budget service and the real in-memory store directly.
/// </summary>
public sealed class KeyBudgetTests : IDisposable
{
    private readonly GatewayOptions _options = new();
    private readonly Candidate _candidate;
    private readonly BudgetService _budgets;
    private readonly List<IDisposable> _disposables = [];

    public KeyBudgetTests()
    {
        _options.Auth.Keys.Add(new KeyOptions { Id = "team-a", Sha256 = new string('a', 64), DailyUsd = 0.25m });
        _options.Auth.Keys.Add(new KeyOptions { Id = "team-b", Sha256 = new string('b', 64) });
        var providerOptions = new ProviderOptions { Type = "mock" };
        // Input free, $1 per 1k output tokens: max_tokens 100 makes every request's most $0.10.
        var model = new ModelOptions { Provider = "mock", CostPer1kInput = 0, CostPer1kOutput = 1 };
        _candidate = new Candidate("m", model, new MockProvider("mock", providerOptions, TimeProvider.System));
        var options = Options.Create(_options);
        _budgets = new BudgetService(options, new MemoryStore(new StoreOptions(), TimeProvider.System), new ConfiguredKeyBudgets(options),
            TimeProvider.System, new NullGatewayEvents(), NullLogger<BudgetService>.Instance);
    }

    private GatewayContext Request(string? keyId)
    {
        var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes("""{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"""), out _)!;
        _disposables.Add(chat);
        var record = new RequestRecord { RequestId = "req_" + Guid.NewGuid().ToString("N"), StartedAt = DateTimeOffset.UtcNow, KeyId = keyId };
        return new GatewayContext(chat, record, 0, TimeProvider.System);
    }

    [Fact]
    public async Task A_key_with_a_daily_limit_is_held_to_it()
    {
        var first = await _budgets.AdmitAsync(Request("team-a"), _candidate, default);
        await first.Ticket!.SettleAsync(0.10m);
        var second = await _budgets.AdmitAsync(Request("team-a"), _candidate, default);
        var third = await _budgets.AdmitAsync(Request("team-a"), _candidate, default);

        Assert.Null(first.Refusal);
        Assert.Null(second.Refusal);
        Assert.NotNull(third.Refusal);
        Assert.Equal(FailureCause.Budget, third.Refusal!.Cause);
        Assert.Contains("key 'team-a'", third.Refusal.Message);
        Assert.Equal(429, third.Refusal.ToApiError().Status);
        Assert.Equal("insufficient_quota", third.Refusal.ToApiError().Type);

        var status = Assert.Single(_budgets.Snapshot(), s => s.Scope == "key:team-a");
        Assert.Equal(BudgetScopes.Daily, status.Window);
        Assert.Equal(0.25m, status.LimitUsd);
        Assert.Equal(0.10m, status.SpentUsd);
        Assert.Equal(0.10m, status.ReservedUsd);
        Assert.Equal(0.05m, status.RemainingUsd);
    }

    [Fact]
    public async Task Keys_without_limits_and_requests_without_a_key_are_not_budgeted()
    {
        var unlimited = await _budgets.AdmitAsync(Request("team-b"), _candidate, default);
        var anonymous = await _budgets.AdmitAsync(Request(null), _candidate, default);

        Assert.Equal(Admission.Granted, unlimited);
        Assert.Equal(Admission.Granted, anonymous);
        Assert.DoesNotContain(_budgets.Snapshot(), s => s.Scope == "key:team-b");
    }

    [Fact]
    public async Task Releasing_or_settling_a_ticket_twice_counts_once()
    {
        var admitted = await _budgets.AdmitAsync(Request("team-a"), _candidate, default);
        await admitted.Ticket!.SettleAsync(0.10m);
        await admitted.Ticket.SettleAsync(0.10m);
        await admitted.Ticket.ReleaseAsync();

        var status = Assert.Single(_budgets.Snapshot(), s => s.Scope == "key:team-a");
        Assert.Equal(0.10m, status.SpentUsd);
        Assert.Equal(0m, status.ReservedUsd);
    }

    /// <summary>A key whose limit an operator changes while the gateway runs (revoked and created again under its id).</summary>
    private sealed class ChangingKeyBudgets : IKeyBudgetSource
    {
        public BudgetLimit? Limit { get; set; }
        public BudgetLimit? Find(string keyId) => keyId == "team-c" ? Limit : null;
        public IEnumerable<KeyValuePair<string, BudgetLimit>> All() => Limit is { } l ? [new("team-c", l)] : [];
    }

    [Fact]
    public async Task A_key_created_again_under_its_id_with_a_lower_limit_is_held_to_the_new_one_the_same_day()
    {
        var keys = new ChangingKeyBudgets { Limit = new BudgetLimit { DailyUsd = 1m } };
        using var budgets = new BudgetService(Options.Create(_options), new MemoryStore(new StoreOptions(), TimeProvider.System), keys,
            TimeProvider.System, new NullGatewayEvents(), NullLogger<BudgetService>.Instance);
        var first = await budgets.AdmitAsync(Request("team-c"), _candidate, default);
        await first.Ticket!.SettleAsync(0.10m);

        // $0.10 spent today: under the old $1, over the new $0.15 once this request's most ($0.10) is added.
        keys.Limit = new BudgetLimit { DailyUsd = 0.15m };
        var after = await budgets.AdmitAsync(Request("team-c"), _candidate, default);

        Assert.Null(first.Refusal);
        Assert.NotNull(after.Refusal);
        Assert.Equal(FailureCause.Budget, after.Refusal!.Cause);
        Assert.Equal(0.15m, Assert.Single(budgets.Snapshot(), s => s.Scope == "key:team-c").LimitUsd);
    }

    /// <summary>
    /// With the embedded store, what the router and /admin/budgets see of the counters is the store's own state, read
    /// where it is: every admission and settlement shows at once, without the refresh (which never runs here).
    /// </summary>
    [Fact]
    public async Task Holds_and_spend_on_the_embedded_store_show_at_once_and_a_spent_provider_is_skipped_at_once()
    {
        var options = new GatewayOptions();
        options.Budgets.Providers["mock"] = new BudgetLimit { DailyUsd = 0.25m };
        using var budgets = new BudgetService(Options.Create(options), new MemoryStore(new StoreOptions(), TimeProvider.System), new ConfiguredKeyBudgets(Options.Create(options)),
            TimeProvider.System, new NullGatewayEvents(), NullLogger<BudgetService>.Instance);

        var first = await budgets.AdmitAsync(Request(null), _candidate, default);
        var held = Assert.Single(budgets.Snapshot(), s => s.Scope == "provider:mock");
        Assert.Equal(0m, held.SpentUsd);
        Assert.Equal(0.10m, held.ReservedUsd);
        Assert.False(budgets.IsProviderExhausted("mock"));

        await first.Ticket!.SettleAsync(0.15m);
        var second = await budgets.AdmitAsync(Request(null), _candidate, default);
        await second.Ticket!.SettleAsync(0.10m);

        var spent = Assert.Single(budgets.Snapshot(), s => s.Scope == "provider:mock");
        Assert.Equal(0.25m, spent.SpentUsd);
        Assert.Equal(0m, spent.ReservedUsd);
        Assert.True(budgets.IsProviderExhausted("mock"));
        Assert.Contains("provider 'mock' is spent", budgets.ExhaustedReason("mock"));
    }

    public void Dispose()
    {
        foreach (var d in _disposables) d.Dispose();
        _budgets.Dispose();
    }
}
