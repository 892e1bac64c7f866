using LlmGateway.Auth;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Tests.Auth;

public class GatewayKeysTests
{
    [Fact]
    public void Sha256Hex_is_the_lower_case_hex_of_the_utf8_bytes()
    {
        // FIPS 180-2's test vector for "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", GatewayKeys.Sha256Hex("abc"));
    }

    [Fact]
    public void New_secrets_are_gw_and_43_base64url_characters_and_never_repeat()
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < 1000; i++)
        {
            var secret = GatewayKeys.NewSecret();
            Assert.Matches("^gw-[A-Za-z0-9_-]{43}$", secret);
            Assert.True(seen.Add(secret));
        }
    }

    [Theory]
    [InlineData("Authorization", "Bearer k1", "k1")]
    [InlineData("Authorization", "bearer   k1  ", "k1")]
    [InlineData("api-key", "k2", "k2")]
    [InlineData("x-api-key", "k3", "k3")]
    [InlineData("Authorization", "Basic dXNlcjpwYXNz", null)]
    [InlineData("Authorization", "Bearer ", null)]
    [InlineData("api-key", "   ", null)]
    [InlineData("X-Other", "k4", null)]
    public void The_presented_key_comes_from_the_three_headers_the_sdks_use(string header, string value, string? expected)
    {
        var headers = new HeaderDictionary { [header] = value };
        Assert.Equal(expected, GatewayKeys.Presented(headers));
    }

    [Fact]
    public void Authorization_wins_over_api_key_and_api_key_over_x_api_key()
    {
        Assert.Equal("a", GatewayKeys.Presented(new HeaderDictionary { ["Authorization"] = "Bearer a", ["api-key"] = "b", ["x-api-key"] = "c" }));
        Assert.Equal("b", GatewayKeys.Presented(new HeaderDictionary { ["api-key"] = "b", ["x-api-key"] = "c" }));
        Assert.Equal("c", GatewayKeys.Presented(new HeaderDictionary { ["Authorization"] = "Basic x", ["x-api-key"] = "c" }));
    }

    [Fact]
    public void A_header_sent_twice_is_ambiguous_and_presents_an_empty_key()
    {
        Assert.Equal("", GatewayKeys.Presented(new HeaderDictionary { ["Authorization"] = new(["Bearer a", "Bearer b"]) }));
        Assert.Equal("", GatewayKeys.Presented(new HeaderDictionary { ["x-api-key"] = new(["a", "b"]) }));
    }

    [Fact]
    public void Keys_too_long_to_be_real_are_not_hashed()
    {
        Span<byte> hash = stackalloc byte[32];
        Assert.True(GatewayKeys.TryHash(new string('k', GatewayKeys.MaxPresentedLength), hash));
        Assert.False(GatewayKeys.TryHash(new string('k', GatewayKeys.MaxPresentedLength + 1), hash));
        Assert.False(GatewayKeys.TryHash("", hash));
        // Non-ASCII keys hash their UTF-8 bytes, as configured hashes are made.
        Assert.True(GatewayKeys.TryHash(new string('é', GatewayKeys.MaxPresentedLength), hash));
        Assert.Equal(GatewayKeys.Sha256Hex("clé"), GatewayKeys.TryHash("clé", hash) ? Convert.ToHexStringLower(hash) : null);
    }
}
