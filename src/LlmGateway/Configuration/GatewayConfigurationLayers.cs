using System.Reflection;
using Microsoft.Extensions.Configuration.Json;

namespace LlmGateway.Configuration;

/// <summary>
/// The <c>Gateway</c> section as an operator states it, layer by layer (appsettings.json, the
/// environment's file, the GATEWAY_CONFIG file, environment variables, the command line, in that
/// order). .NET's own configuration merges every path separately, so a list given in a later layer
/// only overwrites the earlier list's first items (<c>["my-model"]</c> over <c>["a","b","c"]</c> is
/// <c>["my-model","b","c"]</c>) and nothing can be taken away. Here each layer (configuration provider)
/// is read on its own and merged by the shape of <see cref="GatewayOptions"/>:
/// <list type="bullet">
/// <item>a list (Models, Fallbacks, Patterns, Capabilities, AlertThresholds, Keys, ...) given in a later
/// layer replaces the earlier list as a whole; <c>[]</c> empties it;</item>
/// <item>a map (Providers, Models, TaskTypes, Budgets:Providers) merges by key, and an entry set to
/// <c>null</c> (JSON or YAML) or to an empty value (<c>Gateway__Models__mock-echo=</c>) is removed;</item>
/// <item>task types are a set the operator owns: once a layer after the shipped appsettings.json names
/// any task type, only the task types named after appsettings.json exist (each merged over the
/// shipped one of the same name; <c>"sql": {}</c> keeps the shipped <c>sql</c> as it is), so no shipped
/// pattern routes the operator's traffic unless kept;</item>
/// <item><c>Gateway:Defaults: none</c> in any layer leaves out everything the shipped appsettings.json
/// says under Gateway: the operator's file is then the whole configuration.</item>
/// </list>
/// Outside the Gateway section configuration is .NET's own.
/// </summary>
public static class GatewayConfigurationLayers
{
    /// <summary>The file the gateway ships with; everything after it is the operator's.</summary>
    public const string ShippedFile = "appsettings.json";

    public const string DefaultsShipped = "shipped";
    public const string DefaultsNone = "none";

    private static readonly string[] s_taskTypesPath = ["Routing", "TaskTypes"];

    /// <summary>The effective Gateway section, after every layer, as a configuration of its own.</summary>
    public static IConfigurationSection Effective(IConfiguration configuration)
    {
        var layers = Layers(configuration);

        // Gateway:Defaults decides whether the shipped file takes part; the last layer that says wins.
        var defaults = DefaultsShipped;
        foreach (var layer in layers)
        {
            if (layer.Gateway.Children.TryGetValue(nameof(GatewayOptions.Defaults), out var d) && d.HasValue && !string.IsNullOrEmpty(d.Value)) defaults = d.Value;
        }
        var skipShipped = string.Equals(defaults, DefaultsNone, StringComparison.OrdinalIgnoreCase);

        var merged = new Node();
        HashSet<string>? ownedTaskTypes = null;
        foreach (var layer in layers)
        {
            if (layer.Shipped && skipShipped) continue;
            if (!layer.Shipped && Find(layer.Gateway, s_taskTypesPath) is { } taskTypes)
            {
                // Only a task type that is defined or kept counts: "sql: null" alone removes sql and
                // leaves the other shipped task types in place.
                foreach (var (name, taskType) in taskTypes.Children)
                {
                    if (!taskType.IsRemoval) (ownedTaskTypes ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase)).Add(name);
                }
            }
            Merge(merged, layer.Gateway, typeof(GatewayOptions));
        }
        if (ownedTaskTypes is not null && Find(merged, s_taskTypesPath) is { } mergedTaskTypes)
        {
            foreach (var name in mergedTaskTypes.Children.Keys.ToList())
            {
                if (!ownedTaskTypes.Contains(name)) mergedTaskTypes.Children.Remove(name);
            }
        }

        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        Flatten(merged, GatewayOptions.SectionName, typeof(GatewayOptions), data);
        return new ConfigurationBuilder().AddInMemoryCollection(data).Build().GetSection(GatewayOptions.SectionName);
    }

    /// <summary>What each layer says under Gateway, in order, and whether it is the shipped file.</summary>
    private static List<(Node Gateway, bool Shipped)> Layers(IConfiguration configuration)
    {
        var result = new List<(Node, bool)>();
        if (configuration is IConfigurationRoot root)
        {
            foreach (var provider in root.Providers)
            {
                var node = Read(provider, GatewayOptions.SectionName);
                if (node.HasValue || node.Children.Count > 0) result.Add((node, IsShipped(provider)));
            }
        }
        else
        {
            // Not a root (a section handed over in a test): one layer, read through the merged view.
            result.Add((Read(configuration.GetSection(GatewayOptions.SectionName)), false));
        }
        return result;
    }

    private static bool IsShipped(IConfigurationProvider provider) =>
        provider is JsonConfigurationProvider { Source.Path: { } path } &&
        string.Equals(Path.GetFileName(path), ShippedFile, StringComparison.OrdinalIgnoreCase);

    /// <summary>Describes the layers for <c>/admin/config</c>: which sources say anything under Gateway.</summary>
    public static IReadOnlyList<string> Describe(IConfiguration configuration)
    {
        var names = new List<string>();
        if (configuration is not IConfigurationRoot root) return names;
        foreach (var provider in root.Providers)
        {
            var node = Read(provider, GatewayOptions.SectionName);
            if (!node.HasValue && node.Children.Count == 0) continue;
            names.Add(provider switch
            {
                FileConfigurationProvider { Source.Path: { } path } => Path.GetFileName(path) + (IsShipped(provider) ? " (shipped)" : ""),
                Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationProvider => "environment variables",
                Microsoft.Extensions.Configuration.CommandLine.CommandLineConfigurationProvider => "command line",
                Microsoft.Extensions.Configuration.Memory.MemoryConfigurationProvider => "in memory (set by the host or a test)",
                _ => provider.GetType().Name,
            });
        }
        return names;
    }

    private sealed class Node
    {
        public bool HasValue;
        public string? Value;
        public Dictionary<string, Node> Children { get; } = new(StringComparer.OrdinalIgnoreCase);

        public Node Clone()
        {
            var copy = new Node { HasValue = HasValue, Value = Value };
            foreach (var (k, v) in Children) copy.Children[k] = v.Clone();
            return copy;
        }

        /// <summary>JSON/YAML null or an empty variable: remove this entry (JSON's <c>{}</c> is a null value, so it keeps).</summary>
        public bool IsRemoval => Children.Count == 0 && HasValue && Value is "";
    }

    private static Node Read(IConfigurationProvider provider, string path)
    {
        var node = new Node();
        if (provider.TryGet(path, out var value))
        {
            node.HasValue = true;
            node.Value = value;
        }
        foreach (var key in provider.GetChildKeys([], path).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            node.Children[key] = Read(provider, ConfigurationPath.Combine(path, key));
        }
        return node;
    }

    private static Node Read(IConfigurationSection section)
    {
        var node = new Node { HasValue = section.Value is not null, Value = section.Value };
        foreach (var child in section.GetChildren()) node.Children[child.Key] = Read(child);
        return node;
    }

    private static Node? Find(Node node, string[] path)
    {
        var at = node;
        foreach (var segment in path)
        {
            if (!at.Children.TryGetValue(segment, out at!)) return null;
        }
        return at;
    }

    private enum Kind { Scalar, List, Map, Object, Unknown }

    private static Kind KindOf(Type? type, out Type? inner)
    {
        inner = null;
        if (type is null) return Kind.Unknown;
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(Uri)) return Kind.Scalar;
        if (t.IsArray)
        {
            inner = t.GetElementType();
            return Kind.List;
        }
        if (t.IsGenericType)
        {
            var def = t.GetGenericTypeDefinition();
            var args = t.GetGenericArguments();
            if (def == typeof(Dictionary<,>) || def == typeof(IDictionary<,>) || def == typeof(IReadOnlyDictionary<,>))
            {
                inner = args[1];
                return Kind.Map;
            }
            if (def == typeof(List<>) || def == typeof(IList<>) || def == typeof(IEnumerable<>) || def == typeof(IReadOnlyList<>) || def == typeof(ICollection<>) || def == typeof(HashSet<>))
            {
                inner = args[0];
                return Kind.List;
            }
        }
        return t.IsClass ? Kind.Object : Kind.Scalar;
    }

    private static Type? PropertyType(Type? type, string name) =>
        type?.GetProperty(name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase)?.PropertyType;

    private static void Merge(Node into, Node layer, Type? type)
    {
        switch (KindOf(type, out var inner))
        {
            case Kind.List:
                // A later layer's list is the list: replace, never merge item by item.
                into.Children.Clear();
                foreach (var (k, v) in layer.Children) into.Children[k] = v.Clone();
                into.HasValue = layer.HasValue;
                into.Value = layer.Value;
                return;
            case Kind.Scalar:
                if (layer.HasValue)
                {
                    into.HasValue = true;
                    into.Value = layer.Value;
                }
                return;
            case Kind.Map:
                foreach (var (key, child) in layer.Children)
                {
                    if (child.IsRemoval)
                    {
                        into.Children.Remove(key);
                        continue;
                    }
                    Merge(Child(into, key), child, inner);
                }
                return;
            default:
                if (layer.HasValue && layer.Children.Count == 0 && type is null)
                {
                    into.HasValue = true;
                    into.Value = layer.Value;
                }
                foreach (var (key, child) in layer.Children) Merge(Child(into, key), child, PropertyType(type, key));
                return;
        }
    }

    private static Node Child(Node node, string key)
    {
        if (!node.Children.TryGetValue(key, out var child)) node.Children[key] = child = new Node();
        return child;
    }

    private static void Flatten(Node node, string path, Type? type, Dictionary<string, string?> data)
    {
        var kind = KindOf(type, out var inner);
        if (node.Children.Count == 0)
        {
            // An empty list, map or section binds as its default: leave it out rather than bind "" to it.
            if (node.HasValue && node.Value is not null && kind is Kind.Scalar or Kind.Unknown) data[path] = node.Value;
            return;
        }
        foreach (var (key, child) in node.Children)
        {
            var childType = kind switch
            {
                Kind.List or Kind.Map => inner,
                Kind.Object => PropertyType(type, key),
                _ => null,
            };
            Flatten(child, ConfigurationPath.Combine(path, key), childType, data);
        }
    }
}
