using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LlmGateway.Configuration;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Usage;

namespace LlmGateway.Telemetry;

/// <summary>
/// Spans of the ActivitySource "LlmGateway": one per chat request (started by
/// <see cref="RequestTelemetryMiddleware"/>, filled in from the request's record) and one per upstream attempt
/// (started and ended around each candidate by the <see cref="CandidateExecutor"/>), with the GenAI
/// semantic-convention attributes. With no listener (no OTLP endpoint) each call costs one check.
/// </summary>
public static class GatewayTracing
{
    public const string SourceName = "LlmGateway";
    public const string RequestOperation = "llm_gateway.request";
    public const string AttemptOperation = "llm_gateway.attempt";

    public static readonly ActivitySource Source = new(SourceName, typeof(GatewayTracing).Assembly.GetName().Version?.ToString());

    internal static Activity? StartRequest() => Source.StartActivity(RequestOperation, ActivityKind.Internal);

    /// <summary>Starts the span of one attempt on a candidate; dispose it when the attempt is over.</summary>
    public static Activity? StartAttempt(Candidate candidate)
    {
        var activity = Source.StartActivity(AttemptOperation, ActivityKind.Client);
        if (activity is not { IsAllDataRequested: true }) return activity;
        var upstreamModel = candidate.Model.UpstreamModel ?? candidate.ModelName;
        activity.DisplayName = "chat " + upstreamModel;
        activity.SetTag("gen_ai.operation.name", "chat");
        activity.SetTag("gen_ai.system", GenAiSystem(candidate.Provider.Options.Type));
        activity.SetTag("gen_ai.request.model", upstreamModel);
        activity.SetTag("llm_gateway.provider", candidate.Provider.Name);
        activity.SetTag("llm_gateway.model", candidate.ModelName);
        return activity;
    }

    /// <summary>Records how the attempt ended: the failure, or what the committed answer said so far.</summary>
    public static void EndAttempt(Activity? activity, Execution? execution, ProviderFailure? failure)
    {
        if (activity is not { IsAllDataRequested: true }) return;
        if (failure is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, failure.Message);
            activity.SetTag("error.type", failure.UpstreamStatus > 0
                ? failure.UpstreamStatus.ToString(CultureInfo.InvariantCulture)
                : failure.Cause.ToString());
            activity.SetTag("llm_gateway.failure_kind", failure.Kind.ToString());
            return;
        }
        if (execution?.Response is not { } response) return;
        if (response.Stream is null)
        {
            activity.SetTag("gen_ai.response.model", ReadModel(response.Body.Span));
            SetUsage(activity, response.Usage);
            if (response.FinishReason is { } finish) activity.SetTag("gen_ai.response.finish_reasons", new[] { finish });
        }
        else if (execution.Pending.Count > 0)
        {
            // A stream: its usage comes at the end and lands on the request span; the model is in every chunk.
            activity.SetTag("gen_ai.response.model", ReadModel(execution.Pending[0].Data));
        }
    }

    /// <summary>Fills the request span (the current activity, when it is one) from the finished request's record.</summary>
    internal static void CompleteRequest(RequestRecord record)
    {
        if (Activity.Current is not { IsAllDataRequested: true } activity || activity.Source != Source || activity.OperationName != RequestOperation) return;
        activity.DisplayName = record.Model.Length > 0 ? "chat " + record.Model : "chat";
        activity.SetTag("gen_ai.operation.name", "chat");
        activity.SetTag("gen_ai.request.model", record.RequestedModel);
        if (record.Model.Length > 0) activity.SetTag("gen_ai.response.model", record.Model);
        if (!record.Usage.IsEmpty) SetUsage(activity, record.Usage);
        activity.SetTag("llm_gateway.request_id", record.RequestId);
        activity.SetTag("llm_gateway.provider", record.Provider);
        activity.SetTag("llm_gateway.task_type", record.TaskType);
        activity.SetTag("llm_gateway.stream", record.Stream);
        activity.SetTag("llm_gateway.attempts", record.Attempts);
        activity.SetTag("llm_gateway.fallbacks", record.Fallbacks);
        activity.SetTag("llm_gateway.cache", record.CacheResult);
        activity.SetTag("llm_gateway.cost_usd", (double)record.CostUsd);
        activity.SetTag("llm_gateway.outcome", record.Outcome);
        activity.SetTag("http.response.status_code", record.Status);
        // Server-side failures only: a 4xx is the client's mistake, not the gateway's (as for HTTP server spans).
        if (record.Outcome == RequestOutcomes.Broken || record.Status >= 500 || record.Status == 0)
        {
            activity.SetStatus(ActivityStatusCode.Error, record.ErrorCode);
            activity.SetTag("error.type", record.ErrorCode ?? record.Status.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A retry inside the current attempt shows as an event on its span.</summary>
    internal static void RecordRetry()
    {
        if (Activity.Current is { IsAllDataRequested: true } activity && activity.Source == Source) activity.AddEvent(new ActivityEvent("retry"));
    }

    private static void SetUsage(Activity activity, TokenUsage usage)
    {
        activity.SetTag("gen_ai.usage.input_tokens", usage.Prompt);
        activity.SetTag("gen_ai.usage.output_tokens", usage.Completion);
    }

    /// <summary>The gen_ai.system value of the semantic conventions for each provider type.</summary>
    private static string GenAiSystem(string type) => type switch
    {
        ProviderTypes.OpenAi => "openai",
        ProviderTypes.AzureOpenAi => "az.ai.openai",
        ProviderTypes.Anthropic => "anthropic",
        ProviderTypes.Gemini => "gcp.gemini",
        _ => type,
    };

    /// <summary>The top-level "model" of an OpenAI completion or chunk, read forward-only.</summary>
    internal static string? ReadModel(ReadOnlySpan<byte> json) => JsonScanner.FindString(json, "model"u8);
}
