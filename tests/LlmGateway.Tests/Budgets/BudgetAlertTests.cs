using System.Text;
using LlmGateway.Budgets;
using LlmGateway.Configuration;
using LlmGateway.Providers.Mock;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Budgets;

/// <summary>
/// Budget alerts on the embedded store: each threshold is logged once per window, by the settle that reaches it,
/// with the spend it reached. The settle judges them from the counters' states it leaves, not by reading them back.
/// </summary>
public sealed class BudgetAlertTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 3, 14, 12, 0, 0, TimeSpan.Zero));
    private readonly Candidate _candidate;
    private readonly List<IDisposable> _disposables = [];
    private readonly Collecting _log = new();
    private readonly BudgetService _budgets;

    public BudgetAlertTests()
    {
        var o = new GatewayOptions();
        o.Budgets.Global = new BudgetLimit { DailyUsd = 1, MonthlyUsd = 10 };
        o.Budgets.AlertThresholds = [0.5, 0.8, 1.0];
        var options = Options.Create(o);
        // Input free, $1 per 1k output tokens: max_tokens 100 makes every request's most $0.10.
        var model = new ModelOptions { Provider = "mock", CostPer1kInput = 0, CostPer1kOutput = 1 };
        _candidate = new Candidate("m", model, new MockProvider("mock", new ProviderOptions { Type = "mock" }, _time));
        _budgets = new BudgetService(options, new MemoryStore(new StoreOptions(), _time), new ConfiguredKeyBudgets(options), _time, new NullGatewayEvents(), _log);
    }

    public void Dispose()
    {
        foreach (var d in _disposables) d.Dispose();
    }

    private async Task SpendAsync(decimal costUsd)
    {
        var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes("""{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"""), out _)!;
        _disposables.Add(chat);
        var record = new RequestRecord { RequestId = "req_" + Guid.NewGuid().ToString("N"), StartedAt = _time.GetUtcNow() };
        var admission = await _budgets.AdmitAsync(new GatewayContext(chat, record, 0, _time), _candidate, default);
        Assert.NotNull(admission.Ticket);
        await admission.Ticket.SettleAsync(costUsd);
    }

    [Fact]
    public async Task Each_threshold_is_logged_once_by_the_settle_that_reaches_it_with_the_spend_it_reached()
    {
        await SpendAsync(0.3m);
        Assert.Empty(_log.Warnings);

        await SpendAsync(0.3m);
        var alert = Assert.Single(_log.Warnings);
        Assert.StartsWith("Budget alert: global has spent 50% of its daily budget ($0.6 of $1)", alert);

        await SpendAsync(0.1m); // 70 %: nothing new
        Assert.Single(_log.Warnings);

        await SpendAsync(0.15m);
        await SpendAsync(0.05m); // 90 %: 80 % is logged once
        Assert.Equal(2, _log.Warnings.Count);
        Assert.Contains("80% of its daily budget ($0.85 of $1)", _log.Warnings[1]);

        await SpendAsync(0.3m);
        Assert.Equal(3, _log.Warnings.Count);
        Assert.Contains("100% of its daily budget ($1.2 of $1)", _log.Warnings[2]);
        // The month's $10 is far from its first threshold.
        Assert.DoesNotContain(_log.Warnings, w => w.Contains("monthly", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_settle_that_jumps_past_several_thresholds_logs_the_highest()
    {
        await SpendAsync(0.9m);
        var alert = Assert.Single(_log.Warnings);
        Assert.Contains("80% of its daily budget ($0.9 of $1)", alert);
    }

    private sealed class Collecting : ILogger<BudgetService>
    {
        public List<string> Warnings { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning) Warnings.Add(formatter(state, exception));
        }
    }
}
