-- wrk script for the benchmark: posts a realistic JSON body (chat, embeddings or moderations: the URL says
-- which endpoint) and, when the run ends, prints one line "BENCH_JSON {...}" that run.sh collects
-- (latencies in microseconds).
--   BENCH_BODY    path of the JSON body to post (required)
--   BENCH_HEADER  one extra request header, "Name: value" (optional; e.g. "Cache-Control: no-store")
local path = os.getenv("BENCH_BODY")
assert(path and #path > 0, "BENCH_BODY must name the request body file")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

local extra = os.getenv("BENCH_HEADER")
if extra and #extra > 0 then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  assert(name, "BENCH_HEADER must look like 'Name: value'")
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,"mean_us":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes, summary.requests / seconds, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
