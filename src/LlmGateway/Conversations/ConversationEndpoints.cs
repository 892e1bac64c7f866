using System.Buffers;
using System.Text.Json;
using LlmGateway.Auth;
using LlmGateway.Http;
using LlmGateway.Storage;

namespace LlmGateway.Conversations;

/// <summary>
/// <c>GET /v1/conversations/{id}</c> and <c>DELETE /v1/conversations/{id}</c>, in the caller's scope
/// (behind the gateway key like every /v1 path). The history is shown in OpenAI's message shape:
/// <c>{"id","object":"conversation","created_at","updated_at","expires_at","messages":[…]}</c>.
/// </summary>
public static class ConversationEndpoints
{
    public static IServiceCollection AddConversations(this IServiceCollection services)
    {
        services.AddSingleton<ConversationService>();
        return services;
    }

    public static IEndpointRouteBuilder MapConversations(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/conversations");
        group.MapGet("/{id}", async (string id, HttpContext http, ConversationService conversations) =>
        {
            if (!ConversationService.IsValidId(id)) return BadId();
            ConversationHistory? history;
            try
            {
                history = await conversations.GetAsync(CallerIdentity.Of(http), id).ConfigureAwait(false);
            }
            catch (StoreUnavailableException)
            {
                return StoreUnavailable();
            }
            if (history is null) return NotFound(id);

            var buffer = new ArrayBufferWriter<byte>(1024);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("id"u8, id);
                w.WriteString("object"u8, "conversation"u8);
                w.WriteNumber("created_at"u8, history.CreatedAt);
                w.WriteNumber("updated_at"u8, history.UpdatedAt);
                w.WriteNumber("expires_at"u8, conversations.ExpiresAt(history));
                w.WriteNumber("turns"u8, history.Turns.Count);
                w.WriteStartArray("messages"u8);
                foreach (var m in history.Messages()) w.WriteRawValue(m, skipInputValidation: true);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        })
        .WithName("GetConversation")
        .WithSummary("The stored history of a conversation (X-Conversation-Id) of the calling key");

        group.MapDelete("/{id}", async (string id, HttpContext http, ConversationService conversations) =>
        {
            if (!ConversationService.IsValidId(id)) return BadId();
            bool deleted;
            try
            {
                deleted = await conversations.DeleteAsync(CallerIdentity.Of(http), id).ConfigureAwait(false);
            }
            catch (StoreUnavailableException)
            {
                return StoreUnavailable();
            }
            if (!deleted) return NotFound(id);
            var buffer = new ArrayBufferWriter<byte>(128);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("id"u8, id);
                w.WriteString("object"u8, "conversation.deleted"u8);
                w.WriteBoolean("deleted"u8, true);
                w.WriteEndObject();
            }
            return Results.Bytes(buffer.WrittenMemory.ToArray(), "application/json");
        })
        .WithName("DeleteConversation")
        .WithSummary("Delete a conversation of the calling key");
        return app;
    }

    private static IResult BadId() =>
        ApiError.InvalidRequest($"A conversation id is 1 to {ConversationService.MaxIdLength} characters: letters, digits, '-', '_' or '.'.", "id", "invalid_conversation_id").ToResult();

    // The same answer for an id that never existed, expired, was deleted, or belongs to another key.
    private static IResult NotFound(string id) =>
        new ApiError(StatusCodes.Status404NotFound, ErrorTypes.InvalidRequest, "conversation_not_found", $"No conversation found with id '{id}'.", "id").ToResult();

    private static IResult StoreUnavailable() =>
        new ApiError(StatusCodes.Status503ServiceUnavailable, ErrorTypes.Api, "store_unavailable",
            "Conversations can't be read right now: the gateway's store is unreachable.").ToResult();
}
