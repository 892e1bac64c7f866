using LlmGateway.Configuration;
using LlmGateway.Storage;

namespace LlmGateway.Tests.Storage;

public class MemoryLedgerTests
{
    private static byte[] Record(int i, int size)
    {
        var data = new byte[size];
        BitConverter.GetBytes(i).CopyTo(data, 0);
        data.AsSpan(4).Fill((byte)(i % 251));
        return data;
    }

    [Theory]
    [InlineData(10, 1000, 10)]     // the arena (64 KiB) wraps many times; the count cap decides
    [InlineData(1000, 700, 700)]   // a 512,000-byte arena holds ~731 records of 700 bytes: the bytes decide
    [InlineData(50, 37, 50)]       // the count cap decides
    public async Task The_ledger_keeps_the_newest_records_intact_in_order_as_its_arena_wraps(int maxEntries, int size, int atLeast)
    {
        var store = new MemoryStore(new StoreOptions { LedgerMaxEntries = maxEntries }, TimeProvider.System);
        const int total = 3000;
        for (var i = 0; i < total; i++)
        {
            // Mixed batch sizes, as the ledger writer sends them.
            if (i % 7 == 0) await store.AppendLedgerAsync([Record(i, size), Record(++i, size)]);
            else await store.AppendLedgerAsync([Record(i, size)]);
        }

        var kept = await store.ReadLedgerAsync(0, null, int.MaxValue);

        Assert.InRange(kept.Count, atLeast, maxEntries);
        var first = BitConverter.ToInt32(kept[0].Data, 0);
        for (var k = 0; k < kept.Count; k++)
        {
            var expected = Record(first + k, size);
            Assert.Equal(expected, kept[k].Data);
        }
        // The newest record written (2999: the loop's last i is not a multiple of 7) is the last kept.
        Assert.Equal(total - 1, BitConverter.ToInt32(kept[^1].Data, 0));

        // Paging by id continues exactly after the cursor.
        var firstPage = await store.ReadLedgerAsync(0, null, 3);
        var next = await store.ReadLedgerAsync(0, firstPage[^1].Id, 3);
        Assert.Equal(kept[3].Id, next[0].Id);
    }
}
