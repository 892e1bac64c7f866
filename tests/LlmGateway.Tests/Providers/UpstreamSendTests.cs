using System.Net;
using LlmGateway.Providers;

namespace LlmGateway.Tests.Providers;

/// <summary>
/// <see cref="ProviderHttp.Send"/>: the one upstream send, whose transport exceptions become failures; and
/// <see cref="ProviderHttp.IsTransportFailure"/>, which every upstream send and read asks which exceptions those are.
/// </summary>
public class UpstreamSendTests
{
    private sealed class FakeHandler(Func<CancellationToken, Task<HttpResponseMessage>> send) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => send(cancellationToken);
    }

    private static Task<(HttpResponseMessage? Response, ProviderFailure? Failure)> SendAsync(Func<CancellationToken, Task<HttpResponseMessage>> handler, CancellationToken cancellationToken = default) =>
        SendThroughAsync(new HttpMessageInvoker(new FakeHandler(handler)), cancellationToken);

    private static async Task<(HttpResponseMessage? Response, ProviderFailure? Failure)> SendThroughAsync(HttpMessageInvoker client, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, "http://upstream.test/v1/chat/completions");
        return await ProviderHttp.Send(client, message, "p", cancellationToken);
    }

    [Fact]
    public async Task An_answer_is_given_whatever_its_status()
    {
        var (response, failure) = await SendAsync(_ => Task.FromResult(new HttpResponseMessage(HttpStatusCode.TooManyRequests)));

        Assert.Null(failure);
        Assert.Equal(HttpStatusCode.TooManyRequests, response!.StatusCode);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_send_that_ends_later_resumes_the_caller_with_its_answer_or_its_failure(bool answers)
    {
        var answer = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var sending = SendAsync(_ => answer.Task);
        Assert.False(sending.IsCompleted);

        if (answers) answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        else answer.SetException(new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused"));
        var (response, failure) = await sending;

        Assert.Equal(answers, response is not null);
        Assert.Equal(answers, failure is null);
        // A connection refused is retryable, and says the upstream could not be reached at all.
        if (!answers) Assert.True(failure!.Kind == FailureKind.Retryable && failure.Unreachable);
    }

    [Fact]
    public async Task A_handler_that_throws_before_its_task_is_classified_as_one_whose_task_failed()
    {
        var (response, failure) = await SendAsync(_ => throw new IOException("reset"));

        Assert.Null(response);
        Assert.Equal(FailureKind.Retryable, failure!.Kind);
        Assert.Contains("the connection broke", failure.Message);
    }

    [Fact]
    public async Task The_callers_cancellation_is_thrown_even_when_it_surfaces_as_a_transport_exception()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(_ => Task.FromException<HttpResponseMessage>(new HttpRequestException("aborted")), cancelled.Token));
        await Assert.ThrowsAsync<TaskCanceledException>(() => SendAsync(token => Task.FromCanceled<HttpResponseMessage>(token), cancelled.Token));
    }

    [Fact]
    public async Task A_bug_is_thrown_not_held_against_the_provider()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => SendAsync(_ => Task.FromException<HttpResponseMessage>(new InvalidOperationException("bug"))));
    }

    [Theory]
    [InlineData(typeof(HttpRequestException), false, true)]
    [InlineData(typeof(IOException), false, true)]
    [InlineData(typeof(InvalidDataException), false, true)]
    [InlineData(typeof(HttpRequestException), true, false)]
    [InlineData(typeof(InvalidOperationException), false, false)]
    [InlineData(typeof(TaskCanceledException), false, false)]
    public void Only_the_transport_failing_counts_against_the_provider_never_the_callers_cancellation(Type exception, bool callerCancelled, bool counts)
    {
        Assert.Equal(counts, ProviderHttp.IsTransportFailure((Exception)Activator.CreateInstance(exception)!, new CancellationToken(callerCancelled)));
    }
}
