using System.Text.Json;

namespace LlmGateway.Pipeline;

/// <summary>
/// Finds a top-level property of a JSON object with a forward-only <see cref="Utf8JsonReader"/>:
/// the few places that need one field of a body, a message or a chunk (its model, its role, whether
/// it streams, where its messages are) read that field and skip the rest, without a document.
/// </summary>
public static class JsonScanner
{
    /// <summary>
    /// A reader on the value of the first top-level property <paramref name="name"/> of the object
    /// <paramref name="json"/> (on a string, a number or literal, or the start of an object or array,
    /// which the caller reads or skips). False when <paramref name="json"/> is not an object, has no such
    /// property, or is malformed before it.
    /// </summary>
    public static bool TryFind(ReadOnlySpan<byte> json, ReadOnlySpan<byte> name, out Utf8JsonReader reader, int maxDepth = 64)
    {
        reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            return reader.Read() && reader.TokenType == JsonTokenType.StartObject && FindNext(ref reader, name);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Moves <paramref name="reader"/> to the value of the next top-level property <paramref name="name"/>:
    /// from the object's start, or from the end of a value <see cref="TryFind"/> or this found (a
    /// container value must have been read or skipped to its end first). False at the object's end.
    /// Throws <see cref="JsonException"/> for malformed JSON.
    /// </summary>
    public static bool FindNext(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var found = reader.ValueTextEquals(name);
            reader.Read();
            if (found) return true;
            reader.Skip();
        }
        return false;
    }

    /// <summary>The top-level string property <paramref name="name"/>, or null when it is absent or not a string.</summary>
    public static string? FindString(ReadOnlySpan<byte> json, ReadOnlySpan<byte> name) =>
        TryFind(json, name, out var reader) && reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
}
