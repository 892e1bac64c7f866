using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Http;
using LlmGateway.Messages;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Tests.Messages;

public class MessagesErrorsTests
{
    public static TheoryData<ApiError, int, string> EveryErrorTheChatPathKnows() => new()
    {
        { ApiError.InvalidRequest("bad"), 400, "invalid_request_error" },
        { AuthErrors.MissingKey, 401, "authentication_error" },
        { AuthErrors.InvalidKey, 401, "authentication_error" },
        { AuthErrors.ModelNotAllowed("team-a", "m"), 403, "permission_error" },
        { ApiError.ModelNotFound("nope"), 404, "not_found_error" },
        { ApiError.RequestTooLarge(10), 413, "request_too_large" },
        { AuthErrors.RateLimited("team-a", "requests", 5, TimeSpan.FromSeconds(3)), 429, "rate_limit_error" },
        { ApiError.BudgetExceeded("over budget"), 429, "rate_limit_error" },
        { ApiError.Internal(), 500, "api_error" },
        { ApiError.UpstreamError("all failed"), 502, "api_error" },
        { ApiError.NoHealthyProvider("all cooling down"), 503, "overloaded_error" },
        { ApiError.BudgetUnavailable("store down"), 503, "api_error" },
        { AuthErrors.KeyLookupUnavailable, 503, "api_error" },
        { ApiError.UpstreamTimeout("slow"), 504, "timeout_error" },
        { new ApiError(422, "invalid_request_error", null, "upstream said no"), 422, "invalid_request_error" },
    };

    [Theory]
    [MemberData(nameof(EveryErrorTheChatPathKnows))]
    public async Task Every_gateway_error_is_written_in_anthropics_shape_with_the_gateways_status(ApiError error, int status, string type)
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        http.Response.Headers["x-request-id"] = "req_abc";

        await MessagesErrors.WriteAsync(http.Response, error);

        Assert.Equal(status, http.Response.StatusCode);
        Assert.Equal("application/json", http.Response.ContentType);
        var body = JsonDocument.Parse(((MemoryStream)http.Response.Body).ToArray()).RootElement;
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal(type, body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(error.Message, body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("req_abc", body.GetProperty("request_id").GetString());
        Assert.Equal(2, body.GetProperty("error").EnumerateObject().Count());
    }

    [Fact]
    public async Task X_should_retry_is_kept_so_the_sdk_does_not_multiply_the_gateways_own_retries()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();

        await MessagesErrors.WriteAsync(http.Response, ApiError.UpstreamError("all failed") with { ShouldRetry = false });

        Assert.Equal("false", http.Response.Headers["x-should-retry"].ToString());
    }

    [Fact]
    public async Task Retry_after_is_kept()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();

        await MessagesErrors.WriteAsync(http.Response, AuthErrors.RateLimited("k", "requests", 1, TimeSpan.FromSeconds(2.2)));

        Assert.Equal("3", http.Response.Headers.RetryAfter.ToString());
        var body = JsonDocument.Parse(((MemoryStream)http.Response.Body).ToArray()).RootElement;
        Assert.Equal(http.Response.Headers["x-request-id"].ToString(), body.GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task An_error_any_middleware_writes_on_a_messages_endpoint_takes_anthropics_shape_and_gets_a_request_id()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        http.SetEndpoint(new Endpoint(null, new EndpointMetadataCollection(AnthropicErrorDialect.Instance), "messages"));

        // What the key check does: it knows nothing of dialects.
        await AuthErrors.MissingKey.WriteAsync(http.Response);

        Assert.Equal(401, http.Response.StatusCode);
        var body = JsonDocument.Parse(((MemoryStream)http.Response.Body).ToArray()).RootElement;
        Assert.Equal("authentication_error", body.GetProperty("error").GetProperty("type").GetString());
        var id = http.Response.Headers["x-request-id"].ToString();
        Assert.StartsWith("req_", id);
        Assert.Equal(id, http.Response.Headers["request-id"].ToString());
        Assert.Equal(id, body.GetProperty("request_id").GetString());
    }

    [Fact]
    public async Task Without_the_dialect_an_error_stays_in_openais_shape()
    {
        var http = new DefaultHttpContext();
        http.Response.Body = new MemoryStream();

        await AuthErrors.MissingKey.WriteAsync(http.Response);

        var body = JsonDocument.Parse(((MemoryStream)http.Response.Body).ToArray()).RootElement;
        Assert.Equal("invalid_api_key", body.GetProperty("error").GetProperty("code").GetString());
        Assert.False(body.TryGetProperty("type", out _));
    }
}
