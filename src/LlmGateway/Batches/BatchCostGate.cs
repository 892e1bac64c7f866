namespace LlmGateway.Batches;

/// <summary>
/// The batch's <c>max_cost_usd</c>. An item is admitted only when what the batch has spent, plus what
/// the items in flight have reserved, leaves room for the item's cheapest candidate; it then reserves
/// its worst case (capped at the room, which the router enforces through X-Max-Cost-Usd), and when it
/// ends the reservation is replaced by what it actually cost. So the batch never commits to more than
/// the cap, as far as worst-case estimates hold.
/// </summary>
public sealed class BatchCostGate(decimal capUsd)
{
    private readonly object _lock = new();
    private decimal _spent;
    private decimal _reserved;
    private int _inFlight;
    private bool _stopped;
    private TaskCompletionSource _released = NewSignal();

    public decimal CapUsd { get; } = capUsd;

    public decimal SpentUsd
    {
        get { lock (_lock) return _spent; }
    }

    public decimal ReservedUsd
    {
        get { lock (_lock) return _reserved; }
    }

    /// <summary>True once an item was refused: the cap is reached and no later item is admitted.</summary>
    public bool Stopped
    {
        get { lock (_lock) return _stopped; }
    }

    /// <summary>
    /// Admits an item whose candidates cost between <paramref name="cheapestUsd"/> and
    /// <paramref name="dearestUsd"/> at worst. When it does not fit but items are in flight, the answer
    /// is to wait for <see cref="Decision.Released"/> and ask again, since an item usually costs less than
    /// its worst case. When nothing is in flight and it still does not fit, the cap is reached: this
    /// and every later item is refused, so the batch stops at a prefix of its items.
    /// </summary>
    public Decision TryAdmit(decimal cheapestUsd, decimal dearestUsd)
    {
        lock (_lock)
        {
            if (_stopped) return Decision.Refused;
            var room = CapUsd - _spent - _reserved;
            if (cheapestUsd <= room)
            {
                var reservation = Math.Min(dearestUsd, room);
                _reserved += reservation;
                _inFlight++;
                return new Decision(DecisionKind.Admitted, reservation, null);
            }
            if (_inFlight > 0) return new Decision(DecisionKind.Wait, 0, _released.Task);
            _stopped = true;
            return Decision.Refused;
        }
    }

    /// <summary>Gives an item's reservation back and charges what it really cost.</summary>
    public void Settle(decimal reservationUsd, decimal actualUsd)
    {
        TaskCompletionSource released;
        lock (_lock)
        {
            _reserved -= reservationUsd;
            _spent += actualUsd;
            _inFlight--;
            released = _released;
            _released = NewSignal();
        }
        released.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public enum DecisionKind
    {
        Admitted,
        Wait,
        Refused,
    }

    /// <param name="ReservationUsd">What the admitted item may spend: its X-Max-Cost-Usd.</param>
    /// <param name="Released">Completes when an item in flight settles (for <see cref="DecisionKind.Wait"/>).</param>
    public readonly record struct Decision(DecisionKind Kind, decimal ReservationUsd, Task? Released)
    {
        public static readonly Decision Refused = new(DecisionKind.Refused, 0, null);
    }
}
