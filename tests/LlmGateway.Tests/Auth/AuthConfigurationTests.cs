using LlmGateway.Auth;
using LlmGateway.Configuration;
using Microsoft.Extensions.Configuration;

namespace LlmGateway.Tests.Auth;

public class AuthConfigurationTests
{
    private static GatewayOptions Bind(Dictionary<string, string?> values)
    {
        var options = new GatewayOptions();
        new ConfigurationBuilder().AddInMemoryCollection(values).Build().GetSection("Gateway").Bind(options);
        return options;
    }

    [Fact]
    public void A_key_limited_to_one_model_is_not_also_given_every_model_by_the_binder()
    {
        // The binder appends to an initialised list: a default of ["*"] would have let this key use anything.
        var options = Bind(new()
        {
            ["Gateway:Auth:Keys:0:Id"] = "narrow",
            ["Gateway:Auth:Keys:0:Sha256"] = new string('a', 64),
            ["Gateway:Auth:Keys:0:Models:0"] = "gpt-4o-mini",
        });
        var caller = CallerIdentity.FromConfig(options.Auth.Keys[0]);
        Assert.Equal(["gpt-4o-mini"], options.Auth.Keys[0].Models);
        Assert.True(caller.MayRequest("gpt-4o-mini"));
        Assert.False(caller.MayRequest("gpt-4o"));
    }

    [Fact]
    public void Every_auth_and_limits_mistake_is_reported_at_once()
    {
        var options = Bind(new()
        {
            ["Gateway:Providers:mock:Type"] = "mock",
            ["Gateway:Models:m:Provider"] = "mock",
            ["Gateway:Auth:Mode"] = "open",
            ["Gateway:Auth:Keys:0:Id"] = "a",
            ["Gateway:Auth:Keys:0:Sha256"] = new string('a', 64),
            ["Gateway:Auth:Keys:1:Id"] = "b",
            ["Gateway:Auth:Keys:1:Sha256"] = new string('A', 64),
            ["Gateway:Auth:Keys:1:Models:0"] = " ",
            ["Gateway:Auth:Keys:2:Id"] = "c",
            ["Gateway:Auth:Keys:2:Sha256"] = "not-hex",
            ["Gateway:Auth:Keys:2:Rpm"] = "-1",
            ["Gateway:Limits:RequestHeadersTimeoutSeconds"] = "0",
        });
        var errors = GatewayOptionsValidator.Validate(options);
        Assert.Contains(errors, e => e.Contains("Gateway:Auth:Mode", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Keys:1:Sha256 is the same", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Keys:1:Models has an empty entry", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Keys:2:Sha256 must be", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Keys:2: limits must not be negative", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("RequestHeadersTimeoutSeconds", StringComparison.Ordinal));
    }
}
