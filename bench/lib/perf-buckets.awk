# Reads `perf script -F comm,tid,ip,sym` of the gateway (call graphs, the JIT's perf map) and prints where its CPU
# went: samples whose innermost frame is the kernel's as "the kernel", the others given to the innermost frame that
# names one of the gateway's steps (or the frameworks' parts) below; "other" is what none of them names (the
# runtime, GC, async plumbing of unplaced frames). Used by bench/diagnose.sh perf, which passes the requests the window
# served (the streams with --stream, and unit=stream) and the sampling rate: each bucket then also reads as CPU µs per
# request of the perf window (every sample stands for 1/hz s of one thread's CPU), so the gateway and the floor compare
# in time as well as in shares.
function place(   i, f) {
  for (i = 1; i <= n; i++) {
    f = fr[i]
    if (f ~ /BatchedJsonLinesSink|JsonLogLineFormatter|SerilogLogger|Usage\.RequestLog/) return "the per-request log line (built and formatted)"
    if (f ~ /HttpConnection|SocketsHttpHandler|System\.Net\.Http\.HttpClient/) return "HttpClient (the upstream call)"
    if (f ~ /GatewayMetrics|OpenTelemetry|MetricPoint/) return "metrics"
    if (f ~ /BudgetService|MemoryStore/) return "budgets"
    if (f ~ /UsageLedger/) return "usage ledger"
    if (f ~ /ChatCompletionsHandler\+<WriteAsync|Http1OutputProducer|SocketConnection\+<DoSend|FlushAsync/) return "response write"
    if (f ~ /ChatRequest::Read|RequestJson|JsonDocument|PrepareAsync|RequestBody/) return "body read and parse"
    if (f ~ /ModelRouter|Routing\.Matching|EndpointRoutingMiddleware/) return "routing"
    # Streams only: reading the upstream's events, relaying them, writing them to the client (before the adapter, whose
    # class holds the OpenAI chunk reader).
    if (f ~ /SseReader|SseResponseWriter|AnswerStream|ChatStream|ChatCompletionsHandler\+<StreamAsync/) return "the stream relay (events read, relayed, written)"
    if (f ~ /OpenAiProvider|OpenAiRequestWriter|OpenAiResponseInspector|ReadCompletion/) return "the OpenAI adapter"
    if (f ~ /CandidateExecutor|GatewayPipeline|RequestRun|IngressRunner/) return "pipeline and candidates"
    if (f ~ /HttpProtocol|Http1Connection|KestrelConnection|HostingApplication|SocketConnection\+<DoReceive/) return "Kestrel"
    if (f ~ /SocketAsyncEngine|SocketAsyncContext/) return "the socket engine"
  }
  return "other (runtime, GC, async plumbing)"
}
function flush() {
  if (n == 0) return
  total++
  if (kernel) c["the kernel"]++; else c[place()]++
  n = 0
}
/^[^\t]/ { flush(); next }
/^\t/ {
  n++
  line = $0; sub(/^\t *[0-9a-f]+ /, "", line); fr[n] = line
  if (n == 1) kernel = ($0 ~ /^\t *ffffffff/)
  next
}
END {
  flush()
  if (unit == "") unit = "request"
  if (requests > 0 && hz > 0) {
    printf "  %5.1f µs per %s in all (%d samples at %d Hz over %d %ss)\n", total * 1e6 / hz / requests, unit, total, hz, requests, unit
    for (k in c) printf "  %5.1f %%  %6.1f µs  %s\n", 100 * c[k] / total, c[k] * 1e6 / hz / requests, k | "sort -rn"
  } else {
    for (k in c) printf "  %5.1f %%  %s\n", 100 * c[k] / total, k | "sort -rn"
  }
}
