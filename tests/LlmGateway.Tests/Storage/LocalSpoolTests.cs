using LlmGateway.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmGateway.Tests.Storage;

public sealed class LocalSpoolTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llmgw-spool-unit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private LocalSpool Create(string name = "ledger", long maxBytes = 1024 * 1024) => LocalSpool.Create(_dir, name, maxBytes, NullLogger.Instance);

    private static byte[] R(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Records_are_read_back_in_order_until_the_spool_is_cleared()
    {
        using var spool = Create();
        Assert.True(spool.Append([R("one"), R("two")]));
        Assert.True(spool.Append([R("three")]));

        Assert.Equal(["one", "two", "three"], spool.ReadAll().Select(System.Text.Encoding.UTF8.GetString));
        spool.Clear();
        Assert.True(spool.IsEmpty);
        Assert.Empty(spool.ReadAll());
    }

    [Fact]
    public void A_live_spool_is_never_adopted_and_a_dead_ones_records_are_handed_over_once_and_its_file_deleted()
    {
        var live = Create();
        live.Append([R("still running")]);
        var dead = Create();
        dead.Append([R("a"), R("b")]);
        var deadPath = dead.Path;
        dead.Dispose(); // the process is gone: its lock with it
        using var other = Create("budget");
        other.Append([R("another kind")]);

        using var next = Create();
        var taken = new List<string>();
        var count = LocalSpool.AdoptOrphans(_dir, "ledger", next.Path, records => taken.AddRange(records.Select(System.Text.Encoding.UTF8.GetString)), NullLogger.Instance);

        Assert.Equal(2, count);
        Assert.Equal(["a", "b"], taken);
        Assert.False(File.Exists(deadPath));
        Assert.True(File.Exists(live.Path));
        Assert.Equal(["still running"], live.ReadAll().Select(System.Text.Encoding.UTF8.GetString));
        live.Dispose();
    }

    [Fact]
    public void A_record_cut_short_by_a_crash_mid_write_is_skipped_and_the_ones_before_it_kept()
    {
        var spool = Create();
        spool.Append([R("whole")]);
        var path = spool.Path;
        spool.Dispose();
        using (var file = new FileStream(path, FileMode.Append))
        {
            file.Write(BitConverter.GetBytes(100)); // a length, then only part of the record
            file.Write(R("part"));
        }

        var taken = new List<string>();
        using var next = Create();
        LocalSpool.AdoptOrphans(_dir, "ledger", next.Path, records => taken.AddRange(records.Select(System.Text.Encoding.UTF8.GetString)), NullLogger.Instance);

        Assert.Equal(["whole"], taken);
    }

    [Fact]
    public void A_full_spool_refuses_and_counts_what_it_could_not_keep()
    {
        using var spool = Create(maxBytes: 1024);
        Assert.True(spool.Append([new byte[600]]));
        Assert.False(spool.Append([new byte[300], new byte[300]]));

        Assert.Equal(2, spool.Dropped);
        Assert.Single(spool.ReadAll());
    }

    [Fact]
    public void An_empty_spool_leaves_no_file_behind()
    {
        var spool = Create();
        spool.Append([R("x")]);
        spool.Clear();
        spool.Dispose();

        Assert.Empty(Directory.GetFiles(_dir));
    }
}
