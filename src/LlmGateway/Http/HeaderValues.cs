namespace LlmGateway.Http;

/// <summary>
/// Client values the gateway echoes in response headers (the task type, in x-gateway-task-type)
/// must be what Kestrel will write: printable ASCII. Kestrel accepts obs-text (bytes above 0x7F)
/// in request headers but throws when such a value is set on a response, which would be a 500
/// for what is really bad input.
/// </summary>
public static class HeaderValues
{
    public const int MaxTaskTypeLength = 64;

    /// <summary>Request headers that are read as values and may be echoed back.</summary>
    private static readonly string[] s_echoed = ["X-Task-Type"];

    public static bool IsSafe(string value, int maxLength)
    {
        if (value.Length == 0 || value.Length > maxLength) return false;
        foreach (var c in value)
        {
            if (c is < ' ' or > '~') return false;
        }
        return true;
    }

    /// <summary>The 400 for a routing header that can't be used, or null when all are fine (or absent).</summary>
    public static ApiError? CheckEchoedHeaders(IHeaderDictionary headers)
    {
        foreach (var name in s_echoed)
        {
            if (!headers.TryGetValue(name, out var values)) continue;
            if (values.Count != 1 || !IsSafe(values[0] ?? "", MaxTaskTypeLength))
            {
                return ApiError.InvalidRequest($"The '{name}' header must be one value of 1 to {MaxTaskTypeLength} printable ASCII characters.", name);
            }
        }
        return null;
    }
}
