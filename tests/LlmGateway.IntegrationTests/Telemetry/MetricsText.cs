using System.Globalization;
using System.Text;

namespace LlmGateway.IntegrationTests.Telemetry;

/// <summary>One sample of a Prometheus text exposition.</summary>
public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>Reads the samples of a /metrics answer (label values unescaped), to assert on numbers rather than on text.</summary>
public sealed class MetricsText
{
    private MetricsText(string text, List<Sample> samples)
    {
        Text = text;
        Samples = samples;
    }

    public string Text { get; }
    public IReadOnlyList<Sample> Samples { get; }

    public static async Task<MetricsText> ScrapeAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/metrics");
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return Parse(await response.Content.ReadAsStringAsync());
    }

    public static MetricsText Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var i = 0;
            while (i < line.Length && line[i] != '{' && line[i] != ' ') i++;
            var name = line[..i];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (i < line.Length && line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq];
                    i = eq + 2; // past ="
                    var value = new StringBuilder();
                    while (line[i] != '"')
                    {
                        if (line[i] == '\\')
                        {
                            i++;
                            value.Append(line[i] switch { 'n' => '\n', var c => c });
                        }
                        else
                        {
                            value.Append(line[i]);
                        }
                        i++;
                    }
                    labels[key] = value.ToString();
                    i++; // past the closing quote
                    if (line[i] == ',') i++;
                }
                i++;
            }
            var number = line[(i + 1)..];
            var parsed = number switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(name, labels, parsed));
        }
        return new MetricsText(text, samples);
    }

    /// <summary>The value of the one sample of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public double Value(string name, params (string Key, string Value)[] labels)
    {
        var found = Find(name, labels);
        return found.Count switch
        {
            1 => found[0].Value,
            0 => throw new Xunit.Sdk.XunitException($"No sample {Describe(name, labels)} in:\n{Text}"),
            _ => throw new Xunit.Sdk.XunitException($"{found.Count} samples match {Describe(name, labels)}."),
        };
    }

    /// <summary>The value, or null when there is no such sample.</summary>
    public double? ValueOrNull(string name, params (string Key, string Value)[] labels) =>
        Find(name, labels) is [var one] ? one.Value : null;

    public List<Sample> Find(string name, params (string Key, string Value)[] labels)
    {
        var found = new List<Sample>();
        foreach (var s in Samples)
        {
            if (s.Name != name) continue;
            var all = true;
            foreach (var (k, v) in labels)
            {
                if (!s.Labels.TryGetValue(k, out var actual) || actual != v)
                {
                    all = false;
                    break;
                }
            }
            if (all) found.Add(s);
        }
        return found;
    }

    private static string Describe(string name, (string Key, string Value)[] labels) =>
        name + "{" + string.Join(",", labels.Select(l => $"{l.Key}=\"{l.Value}\"")) + "}";
}
