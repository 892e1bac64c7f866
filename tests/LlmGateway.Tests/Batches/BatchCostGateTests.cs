using LlmGateway.Batches;
using static LlmGateway.Batches.BatchCostGate;

namespace LlmGateway.Tests.Batches;

public sealed class BatchCostGateTests
{
    [Fact]
    public void Items_are_admitted_while_their_worst_case_fits_beside_the_reservations_in_flight()
    {
        var gate = new BatchCostGate(0.05m);

        var a = gate.TryAdmit(0.02m, 0.02m);
        var b = gate.TryAdmit(0.02m, 0.02m);
        var c = gate.TryAdmit(0.02m, 0.02m);

        Assert.Equal(DecisionKind.Admitted, a.Kind);
        Assert.Equal(DecisionKind.Admitted, b.Kind);
        Assert.Equal(0.04m, gate.ReservedUsd);
        // 0.01 of room: not enough, but the two in flight may cost less than they reserved.
        Assert.Equal(DecisionKind.Wait, c.Kind);
        Assert.False(c.Released!.IsCompleted);
    }

    [Fact]
    public void A_settled_item_replaces_its_reservation_with_its_real_cost_and_wakes_the_waiter()
    {
        var gate = new BatchCostGate(0.05m);
        var a = gate.TryAdmit(0.02m, 0.02m);
        gate.TryAdmit(0.02m, 0.02m);
        var waiting = gate.TryAdmit(0.02m, 0.02m);

        gate.Settle(a.ReservationUsd, 0.005m);

        Assert.True(waiting.Released!.IsCompleted);
        Assert.Equal(0.005m, gate.SpentUsd);
        Assert.Equal(0.02m, gate.ReservedUsd);
        Assert.Equal(DecisionKind.Admitted, gate.TryAdmit(0.02m, 0.02m).Kind);
    }

    [Fact]
    public void With_nothing_in_flight_an_item_that_does_not_fit_stops_the_batch_for_good()
    {
        var gate = new BatchCostGate(0.05m);
        var a = gate.TryAdmit(0.03m, 0.03m);
        gate.Settle(a.ReservationUsd, 0.03m);

        Assert.Equal(DecisionKind.Refused, gate.TryAdmit(0.03m, 0.03m).Kind);
        Assert.True(gate.Stopped);
        // A cheaper item after it is refused too: a batch stops at a prefix of its items.
        Assert.Equal(DecisionKind.Refused, gate.TryAdmit(0m, 0.001m).Kind);
    }

    [Fact]
    public void An_item_whose_dearest_candidate_does_not_fit_reserves_only_the_room_left()
    {
        var gate = new BatchCostGate(0.05m);

        var d = gate.TryAdmit(0.01m, 0.20m);

        Assert.Equal(DecisionKind.Admitted, d.Kind);
        Assert.Equal(0.05m, d.ReservationUsd); // the router keeps to candidates under this
        Assert.Equal(DecisionKind.Wait, gate.TryAdmit(0.01m, 0.01m).Kind);
    }

    [Fact]
    public void Concurrent_admissions_never_reserve_past_the_cap()
    {
        var gate = new BatchCostGate(1m);
        var admitted = 0;
        Parallel.For(0, 1000, _ =>
        {
            if (gate.TryAdmit(0.003m, 0.003m).Kind == DecisionKind.Admitted) Interlocked.Increment(ref admitted);
        });

        Assert.Equal(333, admitted);
        Assert.True(gate.ReservedUsd <= 1m);
    }
}
