using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>
/// What can be proven here of the deployment files without a container engine: Prometheus' config and
/// rules pass promtool, the compose file resolves and passes keys through from the environment, the
/// files agree with each other on names, paths and ports, and the Dockerfile's project publishes and
/// the published app starts, answers its health checks and passes the image's own HEALTHCHECK command.
/// </summary>
public sealed class DeploymentTests
{
    [Fact]
    public async Task Prometheus_config_and_alert_rules_pass_promtool_including_the_rule_unit_tests()
    {
        foreach (var args in new[]
        {
            new[] { "check", "config", RepoFiles.Path("deploy/prometheus/prometheus.yml") },
            ["check", "rules", RepoFiles.Path("deploy/prometheus/alerts.yml")],
            ["test", "rules", RepoFiles.Path("deploy/prometheus/alerts.test.yml")],
        })
        {
            var (exit, output) = await Tool.RunAsync("promtool", args, workingDirectory: RepoFiles.Path("deploy/prometheus"));
            Assert.True(exit == 0, $"promtool {string.Join(' ', args)} failed:\n{output}");
        }
    }

    [Fact]
    public async Task The_compose_file_resolves_and_passes_provider_keys_through_from_the_environment()
    {
        const string key = "sk-compose-test-0123456789";
        var raw = RepoFiles.Read("docker-compose.yml");
        Assert.DoesNotContain("sk-", raw, StringComparison.Ordinal);

        var withKey = await ComposeConfigAsync(new Dictionary<string, string?> { ["OPENAI_API_KEY"] = key, ["GRAFANA_ADMIN_PASSWORD"] = "grafana-test-password" });
        var gateway = Map(Map(withKey, "services"), "gateway");
        var gatewayEnvironment = Map(gateway, "environment");
        Assert.Equal(key, Scalar(gatewayEnvironment, "OPENAI_API_KEY"));
        Assert.Equal("redis:6379", Scalar(gatewayEnvironment, "ConnectionStrings__Redis"));
        Assert.Equal("none", Scalar(gatewayEnvironment, "Gateway__Auth__Mode"));

        // Published on loopback only unless the operator says otherwise, every service.
        foreach (var (service, port) in new[] { ("gateway", "8080"), ("prometheus", "9090"), ("grafana", "3000") })
        {
            Assert.Equal([("127.0.0.1", port, port)], Ports(Map(Map(withKey, "services"), service)));
        }
        var exposed = await ComposeConfigAsync(new Dictionary<string, string?> { ["GRAFANA_ADMIN_PASSWORD"] = "x", ["PUBLISH_ADDRESS"] = "0.0.0.0", ["GATEWAY_AUTH_MODE"] = "keys" });
        Assert.Equal([("0.0.0.0", "8080", "8080")], Ports(Map(Map(exposed, "services"), "gateway")));
        Assert.Equal("keys", Scalar(Map(Map(Map(exposed, "services"), "gateway"), "environment"), "Gateway__Auth__Mode"));

        // Ollama on the host, reached through host-gateway: localhost would be the container itself.
        Assert.Equal("http://host.docker.internal:11434", Scalar(gatewayEnvironment, "Gateway__Providers__ollama__BaseUrl"));
        Assert.Contains(Seq(gateway, "extra_hosts").Select(n => n.ToString()), h => h.Replace('=', ':') == "host.docker.internal:host-gateway");

        // Grafana has no default password: without one, compose refuses and names the variable.
        var (noPasswordExit, noPasswordOutput) = await Tool.RunAsync("docker-compose", ["-f", "docker-compose.yml", "config"], workingDirectory: RepoFiles.Root,
            environment: new Dictionary<string, string?> { ["GRAFANA_ADMIN_PASSWORD"] = null });
        Assert.NotEqual(0, noPasswordExit);
        Assert.Contains("GRAFANA_ADMIN_PASSWORD", noPasswordOutput, StringComparison.Ordinal);

        var without = await ComposeConfigAsync(new Dictionary<string, string?> { ["OPENAI_API_KEY"] = null, ["GRAFANA_ADMIN_PASSWORD"] = "grafana-test-password" });
        Assert.Equal("", Scalar(Map(Map(Map(without, "services"), "gateway"), "environment"), "OPENAI_API_KEY"));

        var services = Map(without, "services");
        var redis = Map(services, "redis");
        Assert.Contains("--appendonly", Seq(redis, "command").Select(n => n.ToString()));
        Assert.Contains(Volumes(redis), v => v.Target == "/data" && v.Source == "redis-data");

        // Prometheus gets deploy/prometheus, and its config scrapes the gateway service on its port.
        Assert.Contains(Volumes(Map(services, "prometheus")), v => v.Target == "/etc/prometheus" && v.Source.EndsWith("deploy/prometheus", StringComparison.Ordinal));
        Assert.Contains("\"gateway:8080\"", RepoFiles.Read("deploy/prometheus/prometheus.yml"), StringComparison.Ordinal);

        // Grafana gets the provisioning, and the dashboards where the provider looks for them.
        var grafana = Map(services, "grafana");
        Assert.Contains(Volumes(grafana), v => v.Target == "/etc/grafana/provisioning" && v.Source.EndsWith("deploy/grafana/provisioning", StringComparison.Ordinal));
        var provider = (YamlMappingNode)Seq(LoadYaml(RepoFiles.Read("deploy/grafana/provisioning/dashboards/llm-gateway.yml")), "providers")[0];
        var dashboardsPath = Scalar(Map(provider, "options"), "path");
        Assert.Contains(Volumes(grafana), v => v.Target == dashboardsPath && v.Source.EndsWith("deploy/grafana/dashboards", StringComparison.Ordinal));
        Assert.Equal(dashboardsPath + "/llm-gateway.json", Scalar(Map(grafana, "environment"), "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"));
        Assert.Equal("grafana-test-password", Scalar(Map(grafana, "environment"), "GF_SECURITY_ADMIN_PASSWORD"));
        Assert.DoesNotContain("admin}", raw, StringComparison.Ordinal);
    }

    [Fact]
    public void The_dashboard_uses_the_provisioned_datasource_everywhere()
    {
        var datasource = (YamlMappingNode)Seq(LoadYaml(RepoFiles.Read("deploy/grafana/provisioning/datasources/prometheus.yml")), "datasources")[0];
        var uid = Scalar(datasource, "uid");
        Assert.Equal("http://prometheus:9090", Scalar(datasource, "url"));

        var dashboard = JsonDocument.Parse(RepoFiles.Read("deploy/grafana/dashboards/llm-gateway.json")).RootElement;
        Assert.Equal("llm-gateway", dashboard.GetProperty("uid").GetString());
        var refs = new List<string>();
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in e.EnumerateObject())
                {
                    if (p.Name == "datasource" && p.Value.ValueKind == JsonValueKind.Object) refs.Add(p.Value.GetProperty("uid").GetString()!);
                    Walk(p.Value);
                }
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray()) Walk(item);
            }
        }
        Walk(dashboard);
        Assert.NotEmpty(refs);
        Assert.All(refs, r => Assert.Equal(uid, r));
    }

    [Fact]
    public void The_kubernetes_manifests_wire_probes_config_keys_scraping_and_redis_together()
    {
        var docs = new List<YamlMappingNode>();
        foreach (var file in new[] { "configmap.yaml", "gateway.yaml", "redis.yaml", "secret.example.yaml" })
        {
            var yaml = new YamlStream();
            yaml.Load(new StringReader(RepoFiles.Read("deploy/k8s/" + file)));
            docs.AddRange(yaml.Documents.Select(d => (YamlMappingNode)d.RootNode));
        }
        YamlMappingNode Find(string kind, string name) =>
            docs.Single(d => Scalar(d, "kind") == kind && Scalar(Map(d, "metadata"), "name") == name);

        var deployment = Find("Deployment", "llm-gateway");
        var template = Map(Map(deployment, "spec"), "template");
        var podLabels = Map(Map(template, "metadata"), "labels");
        var annotations = Map(Map(template, "metadata"), "annotations");
        Assert.Equal("true", Scalar(annotations, "prometheus.io/scrape"));
        Assert.Equal("8080", Scalar(annotations, "prometheus.io/port"));
        Assert.Equal("/metrics", Scalar(annotations, "prometheus.io/path"));
        Assert.True(int.Parse(Scalar(Map(deployment, "spec"), "replicas")!, System.Globalization.CultureInfo.InvariantCulture) >= 2);

        var container = (YamlMappingNode)Seq(Map(template, "spec"), "containers")[0];
        Assert.Equal("8080", Scalar((YamlMappingNode)Seq(container, "ports")[0], "containerPort"));
        Assert.Equal("/health/ready", Scalar(Map(Map(container, "readinessProbe"), "httpGet"), "path"));
        // The comment over the probes says what /health/ready does with the store (RedisGatewayTests checks it against a real Redis).
        var probeComment = RepoFiles.Read("deploy/k8s/gateway.yaml").Split("readinessProbe:")[0].Split('\n').Reverse().Skip(1).TakeWhile(l => l.TrimStart().StartsWith('#')).ToList();
        Assert.Contains(probeComment, l => l.Contains("FailMode=closed", StringComparison.Ordinal));
        Assert.Contains(probeComment, l => l.Contains("Degraded", StringComparison.Ordinal));
        Assert.Equal("/health/live", Scalar(Map(Map(container, "livenessProbe"), "httpGet"), "path"));

        var env = Seq(container, "env").Cast<YamlMappingNode>().ToDictionary(e => Scalar(e, "name")!);
        var secret = Find("Secret", "llm-gateway-keys");
        foreach (var name in new[] { "OPENAI_API_KEY", "GATEWAY_ADMIN_KEY" })
        {
            var secretRef = Map(Map(env[name], "valueFrom"), "secretKeyRef");
            Assert.Equal("llm-gateway-keys", Scalar(secretRef, "name"));
            Assert.True(Map(secret, "stringData").Children.ContainsKey(Scalar(secretRef, "key")!));
        }
        Assert.DoesNotContain("sk-", RepoFiles.Read("deploy/k8s/gateway.yaml") + RepoFiles.Read("deploy/k8s/configmap.yaml"), StringComparison.Ordinal);

        // GATEWAY_CONFIG names the file the ConfigMap volume holds.
        var mount = Seq(container, "volumeMounts").Cast<YamlMappingNode>().Single(m => Scalar(m, "name") == "config");
        var volume = Seq(Map(template, "spec"), "volumes").Cast<YamlMappingNode>().Single(v => Scalar(v, "name") == "config");
        var configMapName = Scalar(Map(volume, "configMap"), "name")!;
        var configMap = Find("ConfigMap", configMapName);
        var fileName = Assert.Single(Map(configMap, "data").Children.Keys.Select(k => k.ToString()));
        Assert.Equal(Scalar(mount, "mountPath") + "/" + fileName, Scalar(env["GATEWAY_CONFIG"], "value"));

        // The Service selects the gateway pods; the Redis the gateway names is a Service that selects the Redis pod.
        var service = Find("Service", "llm-gateway");
        AssertSelects(Map(Map(service, "spec"), "selector"), podLabels);
        var redisAddress = Scalar(env["ConnectionStrings__Redis"], "value")!.Split(':');
        var redisService = Find("Service", redisAddress[0]);
        Assert.Equal(redisAddress[1], Scalar((YamlMappingNode)Seq(Map(redisService, "spec"), "ports")[0], "port"));
        var redis = Find("Deployment", redisAddress[0]);
        AssertSelects(Map(Map(redisService, "spec"), "selector"), Map(Map(Map(Map(redis, "spec"), "template"), "metadata"), "labels"));
        var redisContainer = (YamlMappingNode)Seq(Map(Map(Map(redis, "spec"), "template"), "spec"), "containers")[0];
        Assert.Contains("--appendonly", Seq(redisContainer, "args").Select(a => a.ToString()));

        // Every file of the kustomization exists (the example Secret is left for the operator to create).
        var kustomization = LoadYaml(RepoFiles.Read("deploy/k8s/kustomization.yaml"));
        Assert.All(Seq(kustomization, "resources"), r => Assert.True(File.Exists(RepoFiles.Path("deploy/k8s/" + r))));
    }

    [Fact]
    public async Task The_dockerfile_project_publishes_and_the_published_app_serves_health_metrics_and_chat_and_passes_the_healthcheck()
    {
        var dockerfile = RepoFiles.Read("Dockerfile");
        var publishLine = dockerfile.Split('\n').Single(l => l.StartsWith("RUN dotnet publish ", StringComparison.Ordinal));
        var project = publishLine.Split(' ')[3];
        Assert.Equal("src/LlmGateway/LlmGateway.csproj", project);
        foreach (var line in dockerfile.Split('\n').Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            foreach (var source in parts[1..^1]) Assert.True(File.Exists(RepoFiles.Path(source)) || Directory.Exists(RepoFiles.Path(source)), $"{line}: {source} is missing");
        }

        var output = Directory.CreateTempSubdirectory("llm-gateway-publish-").FullName;
        Process? app = null;
        try
        {
            var (exit, log) = await Tool.RunAsync("dotnet", ["publish", project, "-c", "Release", "-o", output, "--disable-build-servers", "-nologo"],
                workingDirectory: RepoFiles.Root, timeout: TimeSpan.FromMinutes(5));
            Assert.True(exit == 0, "dotnet publish failed:\n" + log);
            Assert.True(File.Exists(Path.Combine(output, "appsettings.json")), "appsettings.json is not published next to the app");

            // Started as the image starts it, with the Kubernetes ConfigMap's Gateway section as GATEWAY_CONFIG: a
            // file that is missing or fails validation stops start-up, so answering proves the ConfigMap loads.
            var config = Path.Combine(output, "k8s-gateway.yaml");
            await File.WriteAllTextAsync(config, ConfigMapGatewayYaml());
            var port = RepoFiles.FreePort();
            var start = new ProcessStartInfo("dotnet") { WorkingDirectory = output, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.Combine(output, "LlmGateway.dll"));
            start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
            start.Environment["GATEWAY_CONFIG"] = config;
            start.Environment["Serilog__MinimumLevel__Default"] = "Warning";
            start.Environment.Remove("OPENAI_API_KEY");
            start.Environment.Remove("ASPNETCORE_ENVIRONMENT");
            start.Environment.Remove("DOTNET_ENVIRONMENT");
            app = Process.Start(start)!;
            var appLog = new StringBuilder();
            app.OutputDataReceived += (_, e) => { lock (appLog) appLog.AppendLine(e.Data); };
            app.ErrorDataReceived += (_, e) => { lock (appLog) appLog.AppendLine(e.Data); };
            app.BeginOutputReadLine();
            app.BeginErrorReadLine();

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            var started = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    using var live = await http.GetAsync("/health/live");
                    if (live.StatusCode == HttpStatusCode.OK) break;
                }
                catch (HttpRequestException)
                {
                }
                Assert.False(app.HasExited, "the published app exited:\n" + appLog);
                Assert.True(started.Elapsed < TimeSpan.FromSeconds(60), "the published app did not answer /health/live:\n" + appLog);
                await Task.Delay(100);
            }

            using (var ready = await http.GetAsync("/health/ready")) Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            using (var chat = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"mock-echo","messages":[{"role":"user","content":"from the published app"}]}""", Encoding.UTF8, "application/json")))
            {
                Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
                Assert.Contains("from the published app", await chat.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            var metrics = MetricsText.Parse(await http.GetStringAsync("/metrics"));
            Assert.Equal(1, metrics.Value("llm_gateway_requests_total", ("model", "mock-echo"), ("provider", "mock"), ("status", "200"), ("task_type", "general")));

            // The image's HEALTHCHECK, run as Docker would run it (the script the image copies), following the port
            // of each of the variables the image honours, and failing when nothing answers.
            var healthcheck = HealthcheckCommand(dockerfile);
            Assert.Equal(["bash", "/usr/local/bin/gateway-healthcheck"], healthcheck);
            Assert.Contains("COPY deploy/docker/healthcheck.sh /usr/local/bin/gateway-healthcheck", dockerfile, StringComparison.Ordinal);
            Assert.Contains("ENV ASPNETCORE_HTTP_PORTS=8080", dockerfile, StringComparison.Ordinal);
            var script = RepoFiles.Path("deploy/docker/healthcheck.sh");
            async Task<(int Exit, string Output)> CheckAsync(Dictionary<string, string?> variables)
            {
                foreach (var name in new[] { "ASPNETCORE_URLS", "ASPNETCORE_HTTP_PORTS" }) variables.TryAdd(name, null);
                return await Tool.RunAsync("bash", [script], environment: variables, timeout: TimeSpan.FromSeconds(20));
            }
            var p = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var variables in new[]
            {
                new Dictionary<string, string?> { ["ASPNETCORE_HTTP_PORTS"] = p },
                new Dictionary<string, string?> { ["ASPNETCORE_HTTP_PORTS"] = p + ";9" },
                new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = $"http://+:{p}", ["ASPNETCORE_HTTP_PORTS"] = "9" },
                new Dictionary<string, string?> { ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{p}/;http://127.0.0.1:9" },
            })
            {
                var (checkExit, checkOutput) = await CheckAsync(variables);
                Assert.True(checkExit == 0, $"HEALTHCHECK failed against a live app with {string.Join(", ", variables.Where(v => v.Value is not null))}: {checkOutput}");
            }
            Assert.NotEqual(0, (await CheckAsync(new() { ["ASPNETCORE_HTTP_PORTS"] = RepoFiles.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture) })).Exit);

            // A listener that accepts and never answers: the script's own timeout ends the check, with a failure.
            using var silent = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            silent.Start();
            var silentPort = ((IPEndPoint)silent.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var (hungExit, hungOutput) = await CheckAsync(new() { ["ASPNETCORE_HTTP_PORTS"] = silentPort, ["HEALTHCHECK_TIMEOUT_SECONDS"] = "1" });
            Assert.True(hungExit != 0, "HEALTHCHECK passed against a listener that never answers: " + hungOutput);
        }
        finally
        {
            if (app is { HasExited: false })
            {
                app.Kill(entireProcessTree: true);
                await app.WaitForExitAsync();
            }
            app?.Dispose();
            Directory.Delete(output, recursive: true);
        }
    }

    /// <summary>The exec-form CMD of the Dockerfile's HEALTHCHECK (continuation lines joined).</summary>
    private static string[] HealthcheckCommand(string dockerfile)
    {
        var joined = dockerfile.Replace("\\\n", " ", StringComparison.Ordinal);
        var line = joined.Split('\n').Single(l => l.StartsWith("HEALTHCHECK ", StringComparison.Ordinal));
        var json = line[(line.IndexOf("CMD [", StringComparison.Ordinal) + "CMD ".Length)..];
        return JsonSerializer.Deserialize<string[]>(json)!;
    }

    private static string ConfigMapGatewayYaml()
    {
        var configMap = LoadYaml(RepoFiles.Read("deploy/k8s/configmap.yaml"));
        return Scalar(Map(configMap, "data"), "gateway.yaml")!;
    }

    private static async Task<YamlMappingNode> ComposeConfigAsync(Dictionary<string, string?> environment)
    {
        var (exit, output) = await Tool.RunAsync("docker-compose", ["-f", "docker-compose.yml", "config"], workingDirectory: RepoFiles.Root, environment: environment);
        Assert.True(exit == 0, "docker-compose config failed:\n" + output);
        return LoadYaml(output);
    }

    /// <summary>(host address, published, target) of a service's ports, in either of compose's output forms.</summary>
    private static List<(string HostIp, string Published, string Target)> Ports(YamlMappingNode service) =>
        [.. Seq(service, "ports").Select(p =>
        {
            if (p is YamlMappingNode m) return (Scalar(m, "host_ip") ?? "", Scalar(m, "published") ?? "", Scalar(m, "target") ?? "");
            var parts = ((YamlScalarNode)p).Value!.Split('/')[0].Split(':');
            return parts.Length == 3 ? (parts[0], parts[1], parts[2]) : ("", parts[0], parts[^1]);
        })];

    private static IEnumerable<(string Source, string Target)> Volumes(YamlMappingNode service) =>
        Seq(service, "volumes").Select(v => v is YamlScalarNode s
            ? (s.Value!.Split(':')[0], s.Value!.Split(':')[1])
            : (Scalar((YamlMappingNode)v, "source") ?? "", Scalar((YamlMappingNode)v, "target")!));

    private static void AssertSelects(YamlMappingNode selector, YamlMappingNode labels)
    {
        Assert.NotEmpty(selector.Children);
        foreach (var (k, v) in selector.Children) Assert.Equal(v.ToString(), labels.Children[k].ToString());
    }

    private static YamlMappingNode LoadYaml(string text)
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(text));
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) => (YamlMappingNode)node.Children[new YamlScalarNode(key)];

    private static YamlSequenceNode Seq(YamlMappingNode node, string key) => (YamlSequenceNode)node.Children[new YamlScalarNode(key)];

    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var v) ? ((YamlScalarNode)v).Value : null;
}
