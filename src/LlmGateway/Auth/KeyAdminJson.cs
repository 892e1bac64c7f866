using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmGateway.Auth;

/// <summary>
/// Body of POST /admin/keys. Every field is optional: no body at all makes a key for every model
/// with no limits. Unknown fields are refused, so a typo such as "rmp" cannot quietly make a key
/// without the limit it was meant to have.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class CreateKeyRequest
{
    public string? Id { get; set; }
    public List<string>? Models { get; set; }
    public int? Rpm { get; set; }
    public int? Tpm { get; set; }
    public decimal? DailyUsd { get; set; }
    public decimal? MonthlyUsd { get; set; }
    public bool? LocalOnly { get; set; }
}

/// <summary>A key as the admin API shows it: metadata only, never the secret or its hash.</summary>
public class KeyView
{
    public required string Id { get; init; }

    /// <summary><c>config</c> (Gateway:Auth:Keys, not revocable here) or <c>admin</c> (a virtual key).</summary>
    public required string Source { get; init; }
    public required IReadOnlyList<string> Models { get; init; }
    public int Rpm { get; init; }
    public int Tpm { get; init; }
    public decimal DailyUsd { get; init; }
    public decimal MonthlyUsd { get; init; }
    public bool LocalOnly { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
}

/// <summary>The answer to POST /admin/keys: the only time the secret is ever shown.</summary>
public sealed class CreatedKey : KeyView
{
    public required string Key { get; init; }
}

public sealed class KeyList
{
    public string Object { get; init; } = "list";
    public required IReadOnlyList<KeyView> Data { get; init; }
}

/// <summary>OpenAI's shape for a deletion.</summary>
public sealed class DeletedKey
{
    public required string Id { get; init; }
    public string Object { get; init; } = "gateway.key";
    public bool Deleted { get; init; } = true;
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(CreateKeyRequest))]
[JsonSerializable(typeof(KeyView))]
[JsonSerializable(typeof(CreatedKey))]
[JsonSerializable(typeof(KeyList))]
[JsonSerializable(typeof(DeletedKey))]
[JsonSerializable(typeof(StoredKey))]
public sealed partial class AuthJsonContext : JsonSerializerContext;
