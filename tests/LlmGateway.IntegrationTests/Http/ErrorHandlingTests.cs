using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmGateway.Http;
using LlmGateway.IntegrationTests.Infrastructure;
using LlmGateway.IntegrationTests.Telemetry;
using LlmGateway.Routing;
using LlmGateway.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmGateway.IntegrationTests.Http;

/// <summary>
/// A failure no step answers (an exception out of an endpoint) is ASP.NET Core's error handler's: logged once, a 500
/// in OpenAI's shape. For the model-call endpoints the request telemetry catches it first, as when the error handler
/// awaited it (ErrorHandlingExtensions.UseOpenAiErrorsAndRequestTelemetry): the span is marked, the gauge let go.
/// </summary>
public sealed class ErrorHandlingTests
{
    private const string AdminKeyVariable = "LLMGATEWAY_ERROR_HANDLING_TESTS_ADMIN_KEY";
    private const string AdminKey = "error-handling-tests-admin-key-91c3";
    private const string ExceptionHandlerCategory = "Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware";

    private static GatewayFactory Gateway(ConcurrentQueue<LogEntry> logs)
    {
        Environment.SetEnvironmentVariable(AdminKeyVariable, AdminKey);
        var settings = GatewayFactory.OpenAiSettings("http://127.0.0.1:9");
        settings["Gateway:Auth:AdminKeyEnv"] = AdminKeyVariable;
        return new GatewayFactory(settings)
        {
            TestServices = s =>
            {
                s.AddSingleton<IModelRouter, FailingRouter>();
                s.AddSingleton<ILoggerProvider>(new CapturingLoggerProvider(logs));
            },
        };
    }

    private static async Task AssertInternalErrorAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        var expected = JsonDocument.Parse(ApiError.Internal().ToJson()).RootElement.GetProperty("error");
        Assert.Equal(expected.GetProperty("type").GetString(), error.GetProperty("type").GetString());
        Assert.Equal(expected.GetProperty("code").GetString(), error.GetProperty("code").GetString());
        Assert.Equal(expected.GetProperty("message").GetString(), error.GetProperty("message").GetString());
        Assert.DoesNotContain(FailingRouter.Message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Every answer, error or not, names its request (the contract), this one too although the handler cleared the headers.
        Assert.StartsWith("req_", Assert.Single(response.Headers.GetValues("x-request-id")), StringComparison.Ordinal);
    }

    private static void AssertLoggedOnce(ConcurrentQueue<LogEntry> logs) =>
        Assert.Single(logs, l => l.Category == ExceptionHandlerCategory && l.Level == LogLevel.Error && l.Exception?.Message == FailingRouter.Message);

    [Fact]
    public async Task A_failure_in_a_model_call_endpoint_is_a_500_in_OpenAI_shape_logged_once_with_the_span_marked_and_the_gauge_let_go()
    {
        using var spans = new SpanRecorder();
        var stopped = spans.Stopped;
        var logs = new ConcurrentQueue<LogEntry>();
        await using var gateway = Gateway(logs);
        using var client = gateway.CreateClient();

        using var response = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"test-model","messages":[{"role":"user","content":"fail, please"}]}""", Encoding.UTF8, "application/json"));

        await AssertInternalErrorAsync(response);
        AssertLoggedOnce(logs);
        // Other tests' gateways may be traced while this listener is on: this one's failed span is the one with this exception.
        var span = Assert.Single(stopped, a => a.OperationName == GatewayTracing.RequestOperation
            && a.Events.Any(e => e.Name == "exception" && e.Tags.Any(t => t.Key == "exception.message" && (string?)t.Value == FailingRouter.Message)));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal(nameof(InvalidOperationException), span.StatusDescription);
        var metrics = await MetricsText.ScrapeAsync(client);
        Assert.Equal(0, metrics.Value("llm_gateway_inflight_requests"));
    }

    [Fact]
    public async Task A_failure_in_an_endpoint_without_request_telemetry_is_the_same_500_logged_once()
    {
        var logs = new ConcurrentQueue<LogEntry>();
        await using var gateway = Gateway(logs);
        using var client = gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/route/explain")
        {
            Content = new StringContent("""{"model":"test-model","messages":[{"role":"user","content":"fail, please"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);

        using var response = await client.SendAsync(request);

        await AssertInternalErrorAsync(response);
        AssertLoggedOnce(logs);
    }

    /// <summary>Routing that fails the way a bug would: an exception no step of the pipeline turns into an answer.</summary>
    private sealed class FailingRouter : IModelRouter
    {
        public const string Message = "routing bug for ErrorHandlingTests";

        public RouteDecision Route(GatewayRequest request, RoutingContext context) => throw new InvalidOperationException(Message);

        public IReadOnlyList<TaskTypeRoute> TaskTypes => [];
    }

    private sealed record LogEntry(string Category, LogLevel Level, Exception? Exception);

    private sealed class CapturingLoggerProvider(ConcurrentQueue<LogEntry> entries) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue(new LogEntry(category, logLevel, exception));
        }
    }
}
