using System.Text.RegularExpressions;
using LlmGateway.Http;

namespace LlmGateway.Tests.Http;

public class RandomIdsTests
{
    [Theory]
    [InlineData("req_", 32)]
    [InlineData("chatcmpl-", 24)]
    [InlineData("x", 7)]
    public void An_id_is_the_prefix_and_that_many_lowercase_hex_digits(string prefix, int digits)
    {
        var id = RandomIds.New(prefix, digits);
        Assert.Matches(new Regex($"^{Regex.Escape(prefix)}[0-9a-f]{{{digits}}}$"), id);
    }

    [Fact]
    public void Ids_do_not_repeat_across_many_refills_of_a_threads_block_and_across_threads()
    {
        // 256 ids of 16 bytes use up one 4 KB block: 40,000 per thread is about 156 refills each.
        var ids = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            for (var i = 0; i < 40_000; i++) ids.Add(RandomIds.New("req_"));
        });
        Assert.Equal(160_000, ids.Distinct().Count());
        // Random bits, not a counter: every hex digit shows up in every position over many ids.
        var sample = ids.Take(2_000).ToList();
        for (var position = 4; position < 36; position++)
        {
            Assert.Equal(16, sample.Select(id => id[position]).Distinct().Count());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65)]
    public void A_length_outside_1_to_64_digits_is_refused(int digits) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => RandomIds.New("p", digits));
}
