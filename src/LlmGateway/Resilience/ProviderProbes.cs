using System.Net.Http.Headers;
using LlmGateway.Configuration;
using LlmGateway.Providers;

namespace LlmGateway.Resilience;

/// <summary>
/// The cheap request that shows whether a provider answers, for the active probe. One per wire
/// format: a provider type without one is simply not probed. Register more as
/// <c>services.AddSingleton&lt;IProviderProbe, ...&gt;()</c> (Ollama's <c>GET /api/tags</c>, say).
/// </summary>
public interface IProviderProbe
{
    bool Handles(string providerType);

    /// <summary>A request that spends no tokens: a model list, a tags call.</summary>
    HttpRequestMessage CreateRequest(string provider, ProviderOptions options);
}

/// <summary>OpenAI-compatible servers and Azure OpenAI: list the models, with the provider's own key.</summary>
public sealed class OpenAiModelsProbe : IProviderProbe
{
    public bool Handles(string providerType) => providerType is ProviderTypes.OpenAi or ProviderTypes.AzureOpenAi;

    public HttpRequestMessage CreateRequest(string provider, ProviderOptions options)
    {
        var baseUrl = options.BaseUrl!.TrimEnd('/');
        var azure = options.Type == ProviderTypes.AzureOpenAi;
        var uri = azure
            ? $"{baseUrl}/openai/models?api-version={Uri.EscapeDataString(options.ApiVersion ?? "")}"
            : baseUrl + "/models";
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        var key = options.ApiKeyEnv is { Length: > 0 } env ? Environment.GetEnvironmentVariable(env) : null;
        if (!string.IsNullOrEmpty(key))
        {
            if (azure) request.Headers.TryAddWithoutValidation("api-key", key);
            else request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return request;
    }
}

/// <summary>
/// Probes every provider with <see cref="ProviderOptions.ProbeIntervalSeconds"/> above 0, once at
/// start and then every interval, so an idle provider still has a known status. A probe feeds the
/// admin view and the provider-up signal, never the circuit: a models list answering says the
/// endpoint is up, not that chat completions work.
/// </summary>
public sealed class ProviderProber(
    ProviderResilienceRegistry providers,
    Microsoft.Extensions.Options.IOptions<GatewayOptions> options,
    IEnumerable<IProviderProbe> probes,
    TimeProvider time,
    ILogger<ProviderProber> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var loops = new List<Task>();
        foreach (var provider in providers.All)
        {
            if (provider.ProbeInterval <= TimeSpan.Zero) continue;
            var config = options.Value.Providers[provider.Name];
            var probe = probes.FirstOrDefault(p => p.Handles(provider.Type));
            if (probe is null)
            {
                logger.LogWarning("Provider {Provider} asks for a probe every {Interval}, but type {Type} has none; it is not probed.",
                    provider.Name, provider.ProbeInterval, provider.Type);
                continue;
            }
            loops.Add(ProbeLoopAsync(provider, config, probe, stoppingToken));
        }
        return Task.WhenAll(loops);
    }

    private async Task ProbeLoopAsync(ProviderResilience provider, ProviderOptions config, IProviderProbe probe, CancellationToken stoppingToken)
    {
        using var client = ProviderHttp.CreateInvoker(config);
        while (!stoppingToken.IsCancellationRequested)
        {
            await ProbeOnceAsync(provider, config, probe, client, stoppingToken).ConfigureAwait(false);
            try
            {
                await Task.Delay(provider.ProbeInterval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    internal async Task ProbeOnceAsync(ProviderResilience provider, ProviderOptions config, IProviderProbe probe, HttpMessageInvoker client, CancellationToken stoppingToken)
    {
        // A probe gets no longer than a first token would, and never longer than its own interval.
        var limit = provider.FirstTokenTimeout < provider.ProbeInterval ? provider.FirstTokenTimeout : provider.ProbeInterval;
        using var timeout = new TimedCancellation(time, stoppingToken);
        timeout.CancelAfter(limit);
        var started = time.GetTimestamp();
        try
        {
            using var request = probe.CreateRequest(provider.Name, config);
            using var response = await client.SendAsync(request, timeout.Token).ConfigureAwait(false);
            var latency = time.GetElapsedTime(started);
            if (response.IsSuccessStatusCode)
            {
                provider.Probed(true, latency, null, (int)response.StatusCode);
                return;
            }
            var body = await ProviderHttp.ReadBoundedAsync(response.Content, timeout.Token).ConfigureAwait(false);
            var failure = ProviderHttp.FromOpenAiError(provider.Name, (int)response.StatusCode, body, null);
            provider.Probed(false, latency, "Probe: " + failure.Message, failure.UpstreamStatus);
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            provider.Probed(false, TimeSpan.Zero, $"Probe: provider '{provider.Name}' did not answer within {limit.TotalSeconds:0.#} s.", 0);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            provider.Probed(false, TimeSpan.Zero, "Probe: " + ProviderHttp.FromException(provider.Name, e).Message, 0);
        }
    }
}
