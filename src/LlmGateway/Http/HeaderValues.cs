using Microsoft.Extensions.Primitives;

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

    public static bool IsSafe(string value, int maxLength)
    {
        if (value.Length == 0 || value.Length > maxLength) return false;
        foreach (var c in value)
        {
            if (c is < ' ' or > '~') return false;
        }
        return true;
    }

    /// <summary>
    /// The 400 for a request header read as a value that may be echoed back (X-Task-Type), sent as
    /// <paramref name="values"/>, or null when it is fine. The caller has looked the header up once for its value.
    /// </summary>
    public static ApiError? CheckEchoed(string name, StringValues values)
    {
        if (values.Count != 1 || !IsSafe(values[0] ?? "", MaxTaskTypeLength))
        {
            return ApiError.InvalidRequest($"The '{name}' header must be one value of 1 to {MaxTaskTypeLength} printable ASCII characters.", name);
        }
        return null;
    }
}
