using LlmGateway.Admin;
using LlmGateway.ChatCompletions;
using LlmGateway.Configuration;
using LlmGateway.Health;
using LlmGateway.Http;
using LlmGateway.Models;
using LlmGateway.Providers;
using LlmGateway.Resilience;
using LlmGateway.Telemetry;

var builder = WebApplication.CreateBuilder(args);

// Configuration: appsettings.json, appsettings.{Environment}.json, the GATEWAY_CONFIG file (JSON or
// YAML), environment variables, command line; validated at start-up with every problem listed.
builder.Configuration.AddGatewayConfigFile();
builder.Services.AddGatewayOptions();
builder.Services.AddSingleton(TimeProvider.System);

// Logs: Serilog JSON lines; one line per request comes from the request recorder.
builder.AddGatewayLogging();

// The chat path: providers, routing, resilience, the handler and its observers.
builder.Services.AddProviders();
builder.Services.AddResilience();
builder.Services.AddChatCompletions();

// Admin endpoints (all under /admin, behind the admin key), health and the OpenAPI page.
builder.Services.AddAdmin();
builder.Services.AddGatewayHealth();
builder.Services.AddEndpointsApiExplorer();
builder.Services.AddSwaggerGen();

var app = builder.Build();

app.UseOpenAiErrors();
app.UseSwagger();
app.UseSwaggerUI();

app.MapChatCompletions();
app.MapModels();
app.MapResilience();
app.MapGatewayHealth();
app.MapOpenAiNotFound();

app.Run();

/// <summary>Visible to WebApplicationFactory in the integration tests.</summary>
public partial class Program;
