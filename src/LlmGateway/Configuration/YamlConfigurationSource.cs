using Microsoft.Extensions.Configuration;
using YamlDotNet.RepresentationModel;

namespace LlmGateway.Configuration;

/// <summary>
/// A YAML file as configuration: mappings become sections, sequences become :0, :1, ... exactly as
/// the JSON provider does, so one file can be written in either format.
/// </summary>
public sealed class YamlConfigurationSource : FileConfigurationSource
{
    public override IConfigurationProvider Build(IConfigurationBuilder builder)
    {
        EnsureDefaults(builder);
        return new YamlConfigurationProvider(this);
    }
}

public sealed class YamlConfigurationProvider(YamlConfigurationSource source) : FileConfigurationProvider(source)
{
    public override void Load(Stream stream)
    {
        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(stream);
            yaml.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new FormatException($"Invalid YAML in {Source.Path}: {e.Message}", e);
        }
        if (yaml.Documents.Count > 0)
        {
            Flatten(yaml.Documents[0].RootNode, null, data);
        }
        Data = data;
    }

    private static void Flatten(YamlNode node, string? prefix, Dictionary<string, string?> data)
    {
        switch (node)
        {
            // Empty {} or [] is a null value, as in the JSON provider: it says "this entry, nothing in it"
            // (a task type kept as shipped, an emptied list), unlike null, which removes the entry.
            case YamlMappingNode { Children.Count: 0 } when prefix is not null:
                data[prefix] = null;
                break;
            case YamlSequenceNode { Children.Count: 0 } when prefix is not null:
                data[prefix] = null;
                break;
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                {
                    var key = ((YamlScalarNode)k).Value ?? "";
                    Flatten(v, prefix is null ? key : ConfigurationPath.Combine(prefix, key), data);
                }
                break;
            case YamlSequenceNode seq:
                for (var i = 0; i < seq.Children.Count; i++)
                {
                    Flatten(seq.Children[i], ConfigurationPath.Combine(prefix ?? "", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), data);
                }
                break;
            case YamlScalarNode scalar when prefix is not null:
                // YAML's null (~ or empty) binds as an empty value, like JSON's null.
                data[prefix] = scalar.Value is "~" or "null" ? "" : scalar.Value;
                break;
        }
    }
}
