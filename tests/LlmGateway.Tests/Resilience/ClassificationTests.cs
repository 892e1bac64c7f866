using System.Net;
using System.Text;
using LlmGateway.Providers;
using Microsoft.Extensions.Time.Testing;

namespace LlmGateway.Tests.Resilience;

/// <summary>Every provider outcome is one of: retry this provider, next candidate, or fail the request.</summary>
public class ClassificationTests
{
    [Theory]
    [InlineData(429, FailureKind.Retryable)]
    [InlineData(500, FailureKind.Retryable)]
    [InlineData(502, FailureKind.Retryable)]
    [InlineData(503, FailureKind.Retryable)]
    [InlineData(504, FailureKind.Retryable)]
    [InlineData(529, FailureKind.Retryable)]
    [InlineData(408, FailureKind.Retryable)]
    [InlineData(401, FailureKind.NextCandidate)]
    [InlineData(403, FailureKind.NextCandidate)]
    [InlineData(404, FailureKind.NextCandidate)]
    [InlineData(402, FailureKind.NextCandidate)]
    [InlineData(501, FailureKind.NextCandidate)]
    [InlineData(400, FailureKind.FailRequest)]
    [InlineData(422, FailureKind.FailRequest)]
    [InlineData(413, FailureKind.ContextLength)]
    public void Upstream_statuses_are_classified(int status, FailureKind expected)
    {
        var failure = ProviderHttp.FromOpenAiError("p", status, Encoding.UTF8.GetBytes("""{"error":{"message":"something","type":"x","code":null}}"""), null);
        Assert.Equal(expected, failure.Kind);
        Assert.Equal(status, failure.UpstreamStatus);
    }

    [Fact]
    public void A_400_that_says_the_prompt_is_too_long_is_a_context_length_failure()
    {
        var byCode = ProviderHttp.FromOpenAiError("p", 400, Encoding.UTF8.GetBytes("""{"error":{"message":"too many tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"""), null);
        var byMessage = ProviderHttp.FromOpenAiError("p", 400, Encoding.UTF8.GetBytes("""{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error"}}"""), null);
        Assert.Equal(FailureKind.ContextLength, byCode.Kind);
        Assert.Equal(FailureKind.ContextLength, byMessage.Kind);
    }

    [Fact]
    public void A_bad_parameter_400_keeps_the_upstream_verdict_for_the_client()
    {
        var failure = ProviderHttp.FromOpenAiError("p", 400, Encoding.UTF8.GetBytes("""{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"""), null);
        Assert.Equal(FailureKind.FailRequest, failure.Kind);
        var error = failure.ToApiError();
        Assert.Equal(400, error.Status);
        Assert.Equal("invalid_value", error.Code);
        Assert.Equal("Invalid value for 'temperature'.", error.Message);
    }

    [Fact]
    public void A_429_for_an_exhausted_quota_goes_to_the_next_candidate_instead_of_retrying()
    {
        var quota = ProviderHttp.FromOpenAiError("p", 429, Encoding.UTF8.GetBytes("""{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}"""), null);
        var load = ProviderHttp.FromOpenAiError("p", 429, Encoding.UTF8.GetBytes("""{"error":{"message":"Rate limit reached.","type":"requests","code":"rate_limit_exceeded"}}"""), TimeSpan.FromSeconds(1));
        Assert.Equal(FailureKind.NextCandidate, quota.Kind);
        Assert.Equal(FailureKind.Retryable, load.Kind);
        Assert.Equal(TimeSpan.FromSeconds(1), load.RetryAfter);
    }

    [Fact]
    public void Connection_failures_and_timeouts_are_retryable()
    {
        Assert.Equal(FailureKind.Retryable, ProviderHttp.FromException("p", new HttpRequestException("Connection refused")).Kind);
        Assert.Equal(FailureKind.Retryable, ProviderHttp.FromException("p", new IOException("reset")).Kind);
        Assert.True(ProviderFailure.Timeout("p", "no first token").IsTimeout);
        Assert.Equal(FailureKind.Retryable, ProviderFailure.Timeout("p", "no first token").Kind);
    }

    [Fact]
    public void A_secret_in_an_upstream_error_never_reaches_the_message()
    {
        var failure = ProviderHttp.FromOpenAiError("p", 401, Encoding.UTF8.GetBytes("""{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwxyz.","type":"invalid_request_error","code":"invalid_api_key"}}"""), null);
        Assert.DoesNotContain("abcdefghijklmnop", failure.Message);
        Assert.Contains("[redacted]", failure.Message);
    }

    [Theory]
    [InlineData("retry-after-ms", "1500", 1500)]
    [InlineData("retry-after", "7", 7000)]
    public void Retry_After_is_read_from_either_header(string header, string value, int expectedMs)
    {
        using var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        response.Headers.TryAddWithoutValidation(header, value);
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), ProviderHttp.ReadRetryAfter(response, TimeProvider.System));
    }

    [Fact]
    public void Retry_After_as_an_http_date_is_the_time_until_then()
    {
        var time = new FakeTimeProvider();
        using var response = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(time.GetUtcNow().AddSeconds(30));
        Assert.Equal(TimeSpan.FromSeconds(30), ProviderHttp.ReadRetryAfter(response, time));
    }
}
