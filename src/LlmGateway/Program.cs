using LlmGateway.Admin;
using LlmGateway.Auth;
using LlmGateway.Batches;
using LlmGateway.Budgets;
using LlmGateway.Caching;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Conversations;
using LlmGateway.Embeddings;
using LlmGateway.Health;
using LlmGateway.Messages;
using LlmGateway.Http;
using LlmGateway.Models;
using LlmGateway.PassThrough;
using LlmGateway.Providers;
using LlmGateway.Responses;
using LlmGateway.Resilience;
using LlmGateway.Routing;
using LlmGateway.Storage;
using LlmGateway.Telemetry;
using LlmGateway.Usage;

// Configuration: appsettings.json, appsettings.{Environment}.json, the GATEWAY_CONFIG file (JSON or
// YAML), environment variables, command line; read once (no file watch), validated at start-up with every problem listed.
var builder = WebApplication.CreateBuilder(ConfigurationReload.Off(args));
builder.Configuration.AddGatewayConfigFile();
builder.Services.AddGatewayOptions();
// Listen address: --urls, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS or Kestrel:Endpoints; http://localhost:8080 when none is given.
builder.UseDefaultListenAddressWhenNoneGiven();
// Network I/O: requests run on the socket event threads (Gateway:Server:IoScheduling, see IoScheduling for why).
builder.UseIoScheduling();
builder.Services.AddSingleton(TimeProvider.System);

// Logs: Serilog JSON lines; one line per request comes from the request recorder.
builder.AddGatewayLogging();

// The pipeline every ingress runs (and its request observers), the providers, routing and resilience it
// uses, and the ingresses: chat completions (and embeddings), the Anthropic Messages API, batches.
builder.Services.AddGatewayPipeline();
builder.Services.AddProviders();
builder.Services.AddModelRouting();
builder.Services.AddResilience();
builder.Services.AddChatCompletions();
builder.Services.AddMessages();
builder.Services.AddBatches();

// Pass-through: the OpenAI endpoints the gateway doesn't translate, forwarded by YARP to Gateway:PassThrough:Provider.
builder.Services.AddPassThrough();

// The store (embedded, or Redis when ConnectionStrings:Redis is set) and what lives in it (conversations too).
builder.Services.AddStorage();
builder.Services.AddResponseCache();
builder.Services.AddBudgets();
builder.Services.AddUsageLedger();
builder.Services.AddConversations();
builder.Services.AddResponses();

// Hardening and callers: Kestrel's limits (headers, slow clients, body size), gateway keys with
// their model allow-lists and RPM/TPM limits, and /admin/keys.
builder.Services.AddRequestLimits();
builder.Services.AddGatewayAuth();
// Routing: no per-request check for the authorization, CORS and antiforgery metadata no endpoint has (RouteShortcut.AddGatewayRouting).
builder.Services.AddGatewayRouting();

// Telemetry: Prometheus metrics at /metrics, request and attempt spans (OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
builder.Services.AddTelemetry();

// Admin endpoints (all under /admin, behind the admin key), health and the OpenAPI page.
builder.Services.AddAdmin();
builder.Services.AddGatewayHealth();
builder.Services.AddEndpointsApiExplorer();
builder.Services.AddSwaggerGen();

var app = builder.Build();

// Routing first, where the host would put it, with the chat completions route matched before it (see RouteShortcut).
app.UseRoutingWithShortcut(ChatCompletionsEndpoints.Path, ChatCompletionsEndpoints.EndpointName);
// Errors as OpenAI's JSON, and inside that handler the in-flight gauge and request span of the model-call endpoints:
// one middleware, one async level (ErrorHandlingExtensions says why).
app.UseOpenAiErrorsAndRequestTelemetry();
app.UseGatewayAuth();
// The OpenAPI page's files, in a branch only /swagger enters: as a middleware of its own it was one more async
// frame and state-machine box on every request (an allocation profile of the miss path, 2026-12-02).
app.UseWhen(http => http.Request.Path.StartsWithSegments("/swagger"), swagger => swagger.UseSwaggerUI());

// The OpenAPI document as an endpoint, not a middleware every request passes through.
app.MapSwagger();
app.MapChatCompletions();
app.MapMessages();
app.MapEmbeddings();
app.MapBatches();
app.MapModels();
app.MapModelRouting();
app.MapGatewayConfig();
app.MapResilience();
app.MapGatewayHealth();
app.MapGatewayAuth();
app.MapTelemetry();
app.MapCaching();
app.MapBudgets();
app.MapUsage();
app.MapConversations();
app.MapResponses();
app.MapPassThrough();
app.MapOpenAiNotFound();

app.Run();

/// <summary>Visible to WebApplicationFactory in the integration tests.</summary>
public partial class Program;
