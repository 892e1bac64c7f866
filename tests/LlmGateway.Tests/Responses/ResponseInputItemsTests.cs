using System.Text;
using System.Text.Json;
using LlmGateway.Conversations;
using LlmGateway.Responses;

namespace LlmGateway.Tests.Responses;

public class ResponseInputItemsTests
{
    private static JsonElement Items(string input)
    {
        using var doc = JsonDocument.Parse(input);
        return JsonDocument.Parse(ResponseInputItems.Write(doc.RootElement, "resp_abc")).RootElement;
    }

    [Fact]
    public void Items_without_an_id_get_one_apart_from_the_output_items_and_a_bad_client_id_is_replaced_not_repeated()
    {
        var items = Items("""[{"role":"user","content":"a"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}","id":7},{"type":"function_call_output","call_id":"c","output":"o","status":"in_progress"}]""");

        Assert.Equal("msg_abc_in0", items[0].GetProperty("id").GetString());
        Assert.Equal("fc_abc_in1", items[1].GetProperty("id").GetString());
        Assert.Single(items[1].EnumerateObject(), p => p.Name == "id");
        Assert.Equal("fco_abc_in2", items[2].GetProperty("id").GetString());
        Assert.Equal("in_progress", items[2].GetProperty("status").GetString());
        Assert.Equal("message", items[0].GetProperty("type").GetString());
    }

    [Fact]
    public void A_response_stored_before_input_items_were_kept_lists_none()
    {
        var history = new ConversationHistory { CreatedAt = 1, UpdatedAt = 1 };
        var encoded = Encoding.UTF8.GetString(ResponseStore.Encode("""{"id":"resp_abc"}"""u8.ToArray(), history, "[]"u8.ToArray()));
        var old = encoded.Replace(",\"input_items\":[]", "", StringComparison.Ordinal);
        Assert.NotEqual(encoded, old);

        var stored = ResponseStore.Decode(Encoding.UTF8.GetBytes(old));

        Assert.NotNull(stored);
        Assert.Equal("[]", Encoding.UTF8.GetString(stored!.InputItems));
    }
}
