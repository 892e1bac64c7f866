using LlmGateway.Http;
using LlmGateway.Streaming;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Http;

public class DeliveriesTests
{
    private static (DefaultHttpContext Http, FakeTimeProvider Time) Context()
    {
        var time = new FakeTimeProvider();
        // DefaultHttpContext's Abort() cancels nothing: RequestAborted stays uncancelled, as it is in Kestrel for
        // the moment between the abort and the thread-pool item that signals the token.
        var http = new DefaultHttpContext { RequestServices = new ServiceCollection().AddSingleton<TimeProvider>(time).BuildServiceProvider() };
        return (http, time);
    }

    [Fact]
    public async Task A_write_cut_off_by_the_write_timeout_is_the_client_gone_even_before_RequestAborted_is_signalled()
    {
        var (http, time) = Context();
        var stalled = new TaskCompletionSource();
        var write = ClientWriteTimeout.RunAsync(http, new ValueTask(stalled.Task));
        time.Advance(TimeSpan.FromSeconds(LlmGateway.Configuration.LimitsOptions.DefaultResponseWriteTimeoutSeconds + 1));
        stalled.SetException(new IOException("the connection was aborted"));
        await Assert.ThrowsAsync<IOException>(async () => await write);

        Assert.False(http.RequestAborted.IsCancellationRequested);
        Assert.Equal(Delivery.ClientGone, Deliveries.Undelivered(http));
    }

    [Fact]
    public void A_write_that_failed_otherwise_is_a_failed_write()
    {
        var (http, _) = Context();
        _ = ClientWriteTimeout.For(http);
        Assert.Equal(Delivery.WriteFailed, Deliveries.Undelivered(http));
    }
}
