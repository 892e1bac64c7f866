using System.Text;
using LlmGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace LlmGateway.Tests.Configuration;

/// <summary>
/// The layering rules on real configuration providers (a JSON file named appsettings.json as the
/// shipped layer, JSON and YAML streams and files, in-memory values, the command line), bound to
/// <see cref="GatewayOptions"/> as the gateway binds them.
/// </summary>
public sealed class GatewayConfigurationLayersTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("llmgw-layers-");

    public void Dispose() => _dir.Delete(recursive: true);

    private const string Shipped = """
        {
          "Gateway": {
            "Providers": {
              "openai": { "Type": "openai", "BaseUrl": "https://api.openai.com/v1", "ApiKeyEnv": "OPENAI_API_KEY" },
              "mock": { "Type": "mock" }
            },
            "Models": {
              "a": { "Provider": "openai", "Capabilities": [ "tools", "vision", "json" ], "Fallbacks": [ "b" ] },
              "b": { "Provider": "openai", "Priority": 7 },
              "mock-echo": { "Provider": "mock" }
            },
            "Routing": {
              "TaskTypes": {
                "general": { "Models": [ "a", "b", "mock-echo" ], "Strategy": "balanced" },
                "sql": { "Models": [ "b" ], "Patterns": [ "sql", "join" ] }
              }
            },
            "Budgets": { "AlertThresholds": [ 0.5, 0.8, 1.0 ] },
            "Auth": { "Keys": [ { "Id": "k1", "Sha256": "aa", "Models": [ "a", "b" ] }, { "Id": "k2", "Sha256": "bb" } ] }
          }
        }
        """;

    private IConfigurationBuilder WithShipped()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "appsettings.json"), Shipped);
        return new ConfigurationBuilder().SetBasePath(_dir.FullName).AddJsonFile("appsettings.json");
    }

    private static IConfigurationBuilder Json(IConfigurationBuilder builder, string json) =>
        builder.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));

    private IConfigurationBuilder Yaml(IConfigurationBuilder builder, string yaml)
    {
        var name = $"layer-{Guid.NewGuid():N}.yaml";
        File.WriteAllText(Path.Combine(_dir.FullName, name), yaml);
        return builder.Add(new YamlConfigurationSource { Path = name, FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_dir.FullName) });
    }

    private static GatewayOptions Bind(IConfigurationBuilder builder)
    {
        var options = new GatewayOptions();
        GatewayConfigurationLayers.Effective(builder.Build()).Bind(options);
        return options;
    }

    [Fact]
    public void Without_later_layers_the_shipped_file_binds_as_written()
    {
        var o = Bind(WithShipped());
        Assert.Equal(["a", "b", "mock-echo"], o.Routing.TaskTypes["general"].Models);
        Assert.Equal(["tools", "vision", "json"], o.Models["a"].Capabilities);
        Assert.Equal(2, o.Auth.Keys.Count);
        Assert.Equal([0.5, 0.8, 1.0], o.Budgets.AlertThresholds);
    }

    [Fact]
    public void A_later_list_replaces_the_earlier_one_whole_shorter_or_empty()
    {
        var o = Bind(Json(WithShipped(), """
            { "Gateway": {
                "Models": { "a": { "Capabilities": [ "tools" ], "Fallbacks": [] } },
                "Budgets": { "AlertThresholds": [ 0.9 ] },
                "Auth": { "Keys": [ { "Id": "only", "Sha256": "cc" } ] } } }
            """));
        Assert.Equal(["tools"], o.Models["a"].Capabilities);
        Assert.Empty(o.Models["a"].Fallbacks);
        Assert.Equal([0.9], o.Budgets.AlertThresholds);
        var key = Assert.Single(o.Auth.Keys);
        Assert.Equal("only", key.Id);
        Assert.Empty(key.Models); // not k1's models carried over item by item
        Assert.Equal("openai", o.Models["a"].Provider); // the rest of the map entry merges
    }

    [Fact]
    public void Maps_merge_by_key_and_null_or_an_empty_value_removes_an_entry()
    {
        var o = Bind(WithShipped()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Gateway:Models:b:Priority"] = "3", ["Gateway:Models:c:Provider"] = "openai" })
            .AddCommandLine(["--Gateway:Models:mock-echo="]));
        Assert.Equal(3, o.Models["b"].Priority);
        Assert.Equal(["a", "b", "c"], o.Models.Keys.Order(StringComparer.Ordinal));

        var yaml = Bind(Yaml(WithShipped(), """
            Gateway:
              Providers:
                mock: null
              Models:
                mock-echo: ~
            """));
        Assert.False(yaml.Providers.ContainsKey("mock"));
        Assert.False(yaml.Models.ContainsKey("mock-echo"));
        Assert.True(yaml.Providers.ContainsKey("openai"));
    }

    [Fact]
    public void Task_types_named_after_the_shipped_file_are_the_only_ones_and_an_empty_map_keeps_a_shipped_one()
    {
        var o = Bind(Yaml(WithShipped(), """
            Gateway:
              Routing:
                TaskTypes:
                  general:
                    Models: [ a ]
                  code:
                    Models: [ b ]
                    Patterns: [ code ]
            """));
        Assert.Equal(["code", "general"], o.Routing.TaskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["a"], o.Routing.TaskTypes["general"].Models);
        Assert.Equal("balanced", o.Routing.TaskTypes["general"].Strategy);

        var kept = Bind(Json(WithShipped(), """{ "Gateway": { "Routing": { "TaskTypes": { "general": { "Models": [ "a" ] }, "sql": {} } } } }"""));
        Assert.Equal(["general", "sql"], kept.Routing.TaskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["sql", "join"], kept.Routing.TaskTypes["sql"].Patterns);
    }

    [Fact]
    public void Removing_a_shipped_task_type_alone_keeps_the_others()
    {
        var o = Bind(Yaml(WithShipped(), """
            Gateway:
              Routing:
                TaskTypes:
                  sql: null
            """));
        Assert.Equal(["general"], o.Routing.TaskTypes.Keys);
    }

    [Fact]
    public void A_later_layer_that_names_no_task_type_keeps_the_shipped_ones()
    {
        var o = Bind(WithShipped().AddInMemoryCollection(new Dictionary<string, string?> { ["Gateway:Routing:Strategy"] = "cost" }));
        Assert.Equal(["general", "sql"], o.Routing.TaskTypes.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("cost", o.Routing.Strategy);
    }

    [Fact]
    public void Defaults_none_leaves_out_the_shipped_file_under_Gateway()
    {
        var o = Bind(Json(WithShipped(), """{ "Gateway": { "Defaults": "none", "Models": { "mine": { "Provider": "p" } } } }"""));
        Assert.Equal(["mine"], o.Models.Keys);
        Assert.Empty(o.Providers);
        Assert.Empty(o.Routing.TaskTypes);
        Assert.Empty(o.Budgets.AlertThresholds);
        Assert.Equal("none", o.Defaults);
    }

    [Fact]
    public void Plain_dotnet_merging_would_have_kept_the_shipped_items_the_reason_for_all_this()
    {
        // The behaviour the layering replaces, shown on the same providers: .NET's own view merges item by item.
        var root = Json(WithShipped(), """{ "Gateway": { "Routing": { "TaskTypes": { "general": { "Models": [ "mine" ] } } } } }""").Build();
        var plain = new GatewayOptions();
        root.GetSection("Gateway").Bind(plain);
        Assert.Equal(["mine", "b", "mock-echo"], plain.Routing.TaskTypes["general"].Models);

        var layered = new GatewayOptions();
        GatewayConfigurationLayers.Effective(root).Bind(layered);
        Assert.Equal(["mine"], layered.Routing.TaskTypes["general"].Models);
    }
}
