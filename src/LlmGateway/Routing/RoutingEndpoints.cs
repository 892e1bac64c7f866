using System.Buffers;
using System.Text.Json;
using LlmGateway.Admin;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Http;
using LlmGateway.Resilience;
using LlmGateway.Usage;
using Microsoft.Extensions.Options;

namespace LlmGateway.Routing;

public static partial class RoutingEndpoints
{
    /// <summary>
    /// The router, its strategies and the latency it learns from traffic. Named AddModelRouting, not
    /// AddRouting: ASP.NET Core's own AddRouting(IServiceCollection) would make that call ambiguous.
    /// </summary>
    public static IServiceCollection AddModelRouting(this IServiceCollection services)
    {
        services.AddSingleton<IRoutingStrategy, PriorityStrategy>();
        services.AddSingleton<IRoutingStrategy, CostStrategy>();
        services.AddSingleton<IRoutingStrategy, LatencyStrategy>();
        services.AddSingleton<IRoutingStrategy, OrderedStrategy>();
        services.AddSingleton<IRoutingStrategy>(sp => new BalancedStrategy(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.Routing.Weights));
        services.AddSingleton<LatencyTracker>();
        services.AddSingleton<IRequestObserver>(sp => sp.GetRequiredService<LatencyTracker>());
        services.AddSingleton<IModelRouter, ModelRouter>();
        services.AddHostedService<RouterWarmUp>();
        return services;
    }

    /// <summary>
    /// Builds the router at start-up, not on the first request: its patterns are compiled and warmed
    /// then, and a strategy name nobody registered stops start-up instead of failing requests. Then
    /// says, per task type, which models auto can actually reach (their provider has its key), so an
    /// operator sees a task type that can only fail before a client does.
    /// </summary>
    private sealed partial class RouterWarmUp(IServiceProvider services, ILogger<RouterWarmUp> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var router = services.GetRequiredService<IModelRouter>();
            foreach (var route in router.TaskTypes)
            {
                var reachable = route.Models.Where(static c => c.Provider.IsUsable).Select(static c => c.ModelName).ToList();
                if (reachable.Count > 0)
                {
                    LogReachable(logger, route.TaskType, string.Join(", ", reachable), route.Models.Count - reachable.Count);
                }
                else
                {
                    var why = route.Models.Count == 0
                        ? "it lists no model and no real model is configured"
                        : string.Join("; ", route.Models.Select(static c => $"{c.ModelName}: provider '{c.Provider.Name}': {c.Provider.UnusableReason}"));
                    LogUnreachable(logger, route.TaskType, why);
                }
            }
            return Task.CompletedTask;
        }

        [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "Task type {TaskType}: auto can reach {Models} ({Unreachable} more without their provider's key)")]
        private static partial void LogReachable(ILogger logger, string taskType, string models, int unreachable);

        [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "Task type {TaskType}: auto can reach no model, its requests will fail with 503 ({Reasons})")]
        private static partial void LogUnreachable(ILogger logger, string taskType, string reasons);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary><c>POST /admin/route/explain</c>: the routing decision for a request body and its headers, without calling any provider.</summary>
    public static IEndpointRouteBuilder MapModelRouting(this IEndpointRouteBuilder app)
    {
        app.MapAdminGroup().MapPost("/route/explain", ExplainAsync)
            .WithName("ExplainRoute")
            .WithSummary("Why a chat request (or, with ?operation=embeddings, an embeddings request) would go where it goes: task type, every candidate with its estimates and score, what was removed and why, the final order")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .Produces(StatusCodes.Status400BadRequest)
            .Produces(StatusCodes.Status413PayloadTooLarge);
        return app;
    }

    private static async Task<IResult> ExplainAsync(HttpContext http, IModelRouter router, IOptions<GatewayOptions> options)
    {
        var max = options.Value.Limits.MaxRequestBytes;
        var body = await ReadBodyAsync(http.Request, max, http.RequestAborted).ConfigureAwait(false);
        if (body is null) return ApiError.RequestTooLarge(max).ToResult();

        var operation = http.Request.Query["operation"].ToString();
        if (operation.Length > 0 && operation is not ("chat" or "embeddings"))
        {
            return ApiError.InvalidRequest("'operation' must be chat or embeddings.", "operation").ToResult();
        }
        using GatewayRequest? request = operation == "embeddings"
            ? Embeddings.EmbeddingsRequest.TryParse(body, out var parseError)
            : ChatRequest.TryParse(body, out parseError);
        if (request is null) return parseError!.ToResult();
        if (request.CheckLimits(options.Value.Limits) is { } limitError) return limitError.ToResult();

        var hints = GatewayHeaders.ReadHints(http.Request.Headers, out _);
        var decision = router.Route(request, new RoutingContext(hints));
        return Results.Bytes(RouteExplanation.Write(request, decision), "application/json");
    }

    /// <summary>The body, or null when it is over <paramref name="max"/> bytes (read no further than that).</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int max, CancellationToken cancellationToken)
    {
        if (request.ContentLength > max) return null;
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > max) return null;
                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return buffer.ToArray();
    }
}

/// <summary>The explain endpoint's JSON: everything the router weighed, in the order it weighed it.</summary>
public static class RouteExplanation
{
    public static byte[] Write(GatewayRequest request, RouteDecision d)
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = ApiError.JsonOptions.Encoder, Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("model"u8, request.Model);
            w.WriteString("task_type"u8, d.TaskType);
            w.WriteString("task_type_source"u8, d.TaskTypeSource);
            WriteStringOrNull(w, "task_type_detail"u8, d.TaskTypeDetail);
            w.WriteString("strategy"u8, d.Strategy);
            w.WriteString("score"u8, d.ScoreMeaning);

            if (d.Input is { } input)
            {
                w.WriteNumber("estimated_prompt_tokens"u8, input.PromptTokens);
                if (input.MaxTokens is { } mt) w.WriteNumber("max_tokens"u8, mt); else w.WriteNull("max_tokens"u8);
                WriteStringOrNull(w, "local_only"u8, input.LocalOnlySource);
                w.WriteBoolean("no_fallback"u8, input.NoFallback);
                if (input.MaxCostUsd is { } limit) w.WriteNumber("max_cost_usd"u8, Trim(limit)); else w.WriteNull("max_cost_usd"u8);
                WriteStringOrNull(w, "max_cost_source"u8, input.MaxCostSource);
                w.WriteStartArray("required_capabilities"u8);
                foreach (var cap in CapabilityNames.Describe(input.Required).Split(", ", StringSplitOptions.RemoveEmptyEntries)) w.WriteStringValue(cap);
                w.WriteEndArray();
            }

            w.WriteStartArray("order"u8);
            foreach (var c in d.Candidates) w.WriteStringValue(c.ModelName);
            w.WriteEndArray();

            w.WriteStartArray("candidates"u8);
            var rank = 0;
            foreach (var c in d.Evaluated) WriteCandidate(w, c, c.Removed is null ? ++rank : null);
            w.WriteEndArray();

            w.WriteStartArray("removed"u8);
            foreach (var r in d.Removed)
            {
                w.WriteStartObject();
                w.WriteString("model"u8, r.ModelName);
                w.WriteString("filter"u8, r.Filter);
                w.WriteString("reason"u8, r.Reason);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            if (d.Error is { } e)
            {
                // What the client would get, status included.
                w.WriteStartObject("error"u8);
                w.WriteNumber("status"u8, e.Status);
                w.WriteString("type"u8, e.Type);
                WriteStringOrNull(w, "code"u8, e.Code);
                WriteStringOrNull(w, "param"u8, e.Param);
                w.WriteString("message"u8, e.Message);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("error"u8);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteCandidate(Utf8JsonWriter w, RouteCandidate c, int? rank)
    {
        var m = c.Model;
        w.WriteStartObject();
        w.WriteString("model"u8, c.ModelName);
        w.WriteString("provider"u8, c.Candidate.Provider.Name);
        if (rank is { } r) w.WriteNumber("rank"u8, r); else w.WriteNull("rank"u8);
        w.WriteBoolean("local"u8, c.Candidate.Provider.Options.IsLocal);
        w.WriteNumber("priority"u8, m.Priority);
        w.WriteNumber("quality"u8, m.Quality);
        w.WriteStartArray("capabilities"u8);
        foreach (var cap in m.Capabilities) w.WriteStringValue(cap);
        w.WriteEndArray();
        w.WriteNumber("context_window"u8, m.ContextWindow);
        w.WriteNumber("estimated_cost_usd"u8, Trim(c.EstimatedCostUsd));
        w.WriteNumber("max_cost_usd"u8, Trim(c.MaxCostUsd));
        w.WriteStartObject("latency"u8);
        if (c.Latency.TimeToFirstTokenMs is { } ttft) w.WriteNumber("ttft_ms"u8, Math.Round(ttft, 3)); else w.WriteNull("ttft_ms"u8);
        if (c.Latency.DurationMs is { } duration) w.WriteNumber("duration_ms"u8, Math.Round(duration, 3)); else w.WriteNull("duration_ms"u8);
        w.WriteNumber("samples"u8, c.Latency.Samples);
        w.WriteEndObject();
        w.WriteString("circuit"u8, c.Circuit switch
        {
            CircuitState.Closed => "closed",
            CircuitState.HalfOpen => "half-open",
            CircuitState.Open => "open",
            _ => "unknown",
        });
        if (c.Score is { } score) w.WriteNumber("score"u8, Math.Round(score, 6)); else w.WriteNull("score"u8);
        if (c.Removed is { } removed)
        {
            w.WriteStartObject("removed"u8);
            w.WriteString("filter"u8, removed.Filter);
            w.WriteString("reason"u8, removed.Reason);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("removed"u8);
        }
        w.WriteEndObject();
    }

    /// <summary>0.16390 reads as 0.1639: a decimal keeps the scale of its arithmetic, which says nothing here.</summary>
    private static decimal Trim(decimal value) => value / 1.000000000000000000000000000000000m;

    private static void WriteStringOrNull(Utf8JsonWriter w, ReadOnlySpan<byte> name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }
}
