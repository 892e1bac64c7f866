using System.Text;
using LlmGateway.Budgets;
using LlmGateway.Pipeline;
using LlmGateway.Configuration;
using LlmGateway.Providers.Mock;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Budgets;

/// <summary>
/// A reservation is a lease the instance renews while its request runs: a long request keeps its hold, and the
/// holds of an instance that died (it renews nothing) lapse within one lease. The clock is a FakeTimeProvider.
/// </summary>
public sealed class ReservationLeaseTests : IDisposable
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(60);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2030, 3, 14, 12, 0, 0, TimeSpan.Zero));
    private readonly MemoryStore _store;
    private readonly Candidate _candidate;
    private readonly IOptions<GatewayOptions> _options;
    private readonly List<IDisposable> _disposables = [];

    public ReservationLeaseTests()
    {
        var o = new GatewayOptions();
        o.Budgets.Global = new BudgetLimit { DailyUsd = 1 };
        o.Budgets.ReservationLeaseSeconds = (int)Lease.TotalSeconds;
        _options = Options.Create(o);
        _store = new MemoryStore(new StoreOptions(), _time);
        // Input free, $1 per 1k output tokens: max_tokens 100 makes every request's most $0.10.
        var model = new ModelOptions { Provider = "mock", CostPer1kInput = 0, CostPer1kOutput = 1 };
        _candidate = new Candidate("m", model, new MockProvider("mock", new ProviderOptions { Type = "mock" }, _time));
    }

    public void Dispose()
    {
        foreach (var d in _disposables) d.Dispose();
    }

    private BudgetService Instance() =>
        new(_options, _store, new ConfiguredKeyBudgets(_options), _time, new NullGatewayEvents(), NullLogger<BudgetService>.Instance);

    private GatewayContext Request()
    {
        var chat = ChatRequest.TryParse(Encoding.UTF8.GetBytes("""{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}"""), out _)!;
        _disposables.Add(chat);
        var record = new RequestRecord { RequestId = "req_" + Guid.NewGuid().ToString("N"), StartedAt = _time.GetUtcNow() };
        return new GatewayContext(chat, record, 0, _time);
    }

    private async Task<decimal> ReservedAsync(BudgetService budgets) =>
        (await budgets.GetStatusAsync()).Statuses.Single(s => s.Scope == "global").ReservedUsd;

    [Fact]
    public async Task A_request_running_for_many_leases_keeps_its_hold_while_its_instance_renews_it()
    {
        var budgets = Instance();
        var admission = await budgets.AdmitAsync(Request(), _candidate, default);

        for (var i = 0; i < 10; i++)
        {
            _time.Advance(Lease / 2);
            await budgets.RenewLeasesAsync();
        }

        Assert.Equal(0.10m, await ReservedAsync(budgets));
        await admission.Ticket!.SettleAsync(0.04m);
        var status = (await budgets.GetStatusAsync()).Statuses.Single(s => s.Scope == "global");
        Assert.Equal((0.04m, 0m), (status.SpentUsd, status.ReservedUsd));
    }

    [Fact]
    public async Task Requests_that_end_in_any_order_leave_the_others_renewed_and_their_own_never_renewed_again()
    {
        var budgets = Instance();
        var tickets = new List<IAdmissionTicket>();
        for (var i = 0; i < 5; i++) tickets.Add((await budgets.AdmitAsync(Request(), _candidate, default)).Ticket!);

        // The newest, the oldest and one between end; the two left are held through many leases.
        await tickets[4].SettleAsync(0.01m);
        await tickets[0].ReleaseAsync();
        await tickets[2].SettleAsync(0.01m);
        for (var i = 0; i < 6; i++)
        {
            _time.Advance(Lease / 2);
            await budgets.RenewLeasesAsync();
        }
        Assert.Equal(0.20m, await ReservedAsync(budgets));

        await tickets[1].SettleAsync(0.01m);
        await tickets[3].SettleAsync(0.01m);
        await budgets.RenewLeasesAsync();
        var status = (await budgets.GetStatusAsync()).Statuses.Single(s => s.Scope == "global");
        Assert.Equal((0.04m, 0m), (status.SpentUsd, status.ReservedUsd));
    }

    [Fact]
    public async Task The_holds_of_an_instance_that_died_are_released_within_one_lease()
    {
        var crashed = Instance();
        await crashed.AdmitAsync(Request(), _candidate, default);
        await crashed.AdmitAsync(Request(), _candidate, default);
        var survivor = Instance();
        var running = await survivor.AdmitAsync(Request(), _candidate, default);
        Assert.Equal(0.30m, await ReservedAsync(survivor));

        // The crashed instance renews nothing any more; the survivor keeps renewing its own.
        _time.Advance(Lease / 2);
        await survivor.RenewLeasesAsync();
        Assert.Equal(0.30m, await ReservedAsync(survivor));
        _time.Advance(Lease / 2);
        await survivor.RenewLeasesAsync();

        Assert.Equal(0.10m, await ReservedAsync(survivor));
        await running.Ticket!.SettleAsync(0.10m);
        var status = (await survivor.GetStatusAsync()).Statuses.Single(s => s.Scope == "global");
        Assert.Equal((0.10m, 0m), (status.SpentUsd, status.ReservedUsd));
    }

    [Fact]
    public void The_lease_must_be_between_2_seconds_and_an_hour()
    {
        var o = new GatewayOptions();
        o.Providers["mock"] = new ProviderOptions { Type = "mock" };
        o.Models["m"] = new ModelOptions { Provider = "mock" };
        o.Budgets.ReservationLeaseSeconds = 1;
        Assert.Contains(GatewayOptionsValidator.Validate(o), e => e.Contains("Gateway:Budgets:ReservationLeaseSeconds"));
        o.Budgets.ReservationLeaseSeconds = 30;
        Assert.DoesNotContain(GatewayOptionsValidator.Validate(o), e => e.Contains("ReservationLeaseSeconds"));
    }
}
