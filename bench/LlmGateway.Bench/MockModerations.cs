using System.Text;
using Microsoft.AspNetCore.Http;

namespace LlmGateway.Bench;

/// <summary>
/// A zero-latency OpenAI <c>POST /v1/moderations</c>: one fixed, unflagged result in OpenAI's shape,
/// whatever the input. The gateway forwards this endpoint without translating it (pass-through), so
/// the benchmark sends it to measure YARP's forwarding against nginx's on the same path.
/// </summary>
internal static class MockModerations
{
    private static readonly byte[] s_answer = Encoding.UTF8.GetBytes(
        """{"id":"modr-bench0000000000000000000001","model":"omni-moderation-latest","results":[{"flagged":false,"categories":{"harassment":false,"harassment/threatening":false,"hate":false,"hate/threatening":false,"illicit":false,"illicit/violent":false,"self-harm":false,"self-harm/instructions":false,"self-harm/intent":false,"sexual":false,"sexual/minors":false,"violence":false,"violence/graphic":false},"category_scores":{"harassment":0.000012,"harassment/threatening":0.000004,"hate":0.000003,"hate/threatening":0.000001,"illicit":0.000009,"illicit/violent":0.000002,"self-harm":0.000005,"self-harm/instructions":0.000002,"self-harm/intent":0.000003,"sexual":0.000021,"sexual/minors":0.000001,"violence":0.000034,"violence/graphic":0.000006}}]}""");

    public static async Task HandleAsync(HttpContext http)
    {
        var aborted = http.RequestAborted;
        try
        {
            // The body is not looked at, but it is read to its end as a real server would.
            var reader = http.Request.BodyReader;
            var read = await MockUpstream.ReadWholeBodyAsync(reader, aborted).ConfigureAwait(false);
            var empty = read.Buffer.IsEmpty;
            reader.AdvanceTo(read.Buffer.End);
            if (empty)
            {
                http.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }
            var response = http.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/json";
            response.ContentLength = s_answer.Length;
            await response.BodyWriter.WriteAsync(s_answer, aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client went away: nothing to do.
        }
    }
}
