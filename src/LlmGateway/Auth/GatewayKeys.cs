using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace LlmGateway.Auth;

/// <summary>
/// What a gateway key is made of and where a client puts it. Secrets are 32 random bytes, so their
/// SHA-256 is as good as a password hash and needs no salt or stretching; only the hash is ever stored.
/// </summary>
public static class GatewayKeys
{
    /// <summary>Virtual keys start with this, so SecretScrubber and secret scanners recognise them.</summary>
    public const string SecretPrefix = "gw-";

    /// <summary>Longer presented keys are refused without hashing: no real key is anywhere near this.</summary>
    public const int MaxPresentedLength = 512;

    public const string ApiKeyHeader = "api-key";
    public const string XApiKeyHeader = "x-api-key";

    /// <summary>A new secret: "gw-" and 32 random bytes in base64url (43 characters).</summary>
    public static string NewSecret() => SecretPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>Lower-case hex SHA-256 of the key's UTF-8 bytes, the form Gateway:Auth:Keys:*:Sha256 takes.</summary>
    public static string Sha256Hex(string key) => Convert.ToHexStringLower(Sha256(key));

    public static byte[] Sha256(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Hashes without allocating on the request path; false when the key is too long to be real.</summary>
    public static bool TryHash(ReadOnlySpan<char> key, Span<byte> hash)
    {
        if (key.Length is 0 or > MaxPresentedLength) return false;
        Span<byte> utf8 = stackalloc byte[MaxPresentedLength * 3];
        var length = Encoding.UTF8.GetBytes(key, utf8);
        SHA256.HashData(utf8[..length], hash);
        return true;
    }

    /// <summary>
    /// The key a client sent, in the three places the SDKs put one: <c>Authorization: Bearer</c>
    /// (OpenAI), <c>api-key</c> (Azure OpenAI), <c>x-api-key</c> (Anthropic). The first present wins;
    /// an Authorization header with another scheme does not hide the other two.
    /// </summary>
    public static string? Presented(IHeaderDictionary headers)
    {
        var auth = headers.Authorization;
        if (auth.Count == 1 && auth[0] is { } a && a.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var token = a.AsSpan(7).Trim();
            if (token.Length > 0) return token.ToString();
        }
        else if (auth.Count > 1)
        {
            // Two Authorization headers are ambiguous: refuse rather than guess which one counts.
            return "";
        }
        if (Single(headers, ApiKeyHeader) is { } apiKey) return apiKey;
        return Single(headers, XApiKeyHeader);
    }

    private static string? Single(IHeaderDictionary headers, string name)
    {
        if (!headers.TryGetValue(name, out var values) || values.Count == 0) return null;
        if (values.Count > 1) return "";
        var v = values[0]?.Trim();
        return string.IsNullOrEmpty(v) ? null : v;
    }

    /// <summary>Parses a 64-character hex SHA-256; false for anything else.</summary>
    public static bool TryParseHash(string? hex, Span<byte> hash) =>
        hex is { Length: 64 } && Convert.FromHexString(hex, hash, out _, out var written) == System.Buffers.OperationStatus.Done && written == 32;
}
