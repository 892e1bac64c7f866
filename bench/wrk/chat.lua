-- wrk script for the benchmark: posts a realistic JSON body (chat, embeddings or moderations: the URL says
-- which endpoint), checks every answer against what the row claims to measure, and, when the run ends,
-- prints one line "BENCH_JSON {...}" that run.sh collects (latencies in microseconds).
--   BENCH_BODY             path of the JSON body to post (required)
--   BENCH_HEADER           one extra request header, "Name: value" (optional; e.g. "Cache-Control: no-store")
--   BENCH_EXPECT_CACHE     the x-gateway-cache every answer must carry (hit, miss, bypass), "-" for none;
--                          unset: not checked
--   BENCH_EXPECT_PROVIDER  the x-gateway-provider every answer must carry ("-" for none); unset: not checked
--   BENCH_EXPECT_UPSTREAM  "mock": every answer must carry the mock upstream's x-bench-upstream header
--                          (direct, nginx and pass-through rows: the answer really came from the mock)
-- A row whose answers do not all match is reported as failed, not as a number: a gateway row that
-- claims to measure misses must not be measuring cache hits.
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

local function expectation(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end
local expect_cache = expectation("BENCH_EXPECT_CACHE")
local expect_provider = expectation("BENCH_EXPECT_PROVIDER")
local expect_upstream = expectation("BENCH_EXPECT_UPSTREAM")

-- Per thread (globals, so that done() can read them with thread:get).
checked = 0
mismatched = 0
first_mismatch = ""
seen = {}

-- The main state keeps the threads so that done() can add their counts up.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  local cache, provider, upstream = "-", "-", "-"
  -- Header names as the server spelled them: compare them without case.
  for k, v in pairs(headers) do
    local l = string.lower(k)
    if l == "x-gateway-cache" then cache = v
    elseif l == "x-gateway-provider" then provider = v
    elseif l == "x-bench-upstream" then upstream = v end
  end
  checked = checked + 1
  local key = status .. " cache=" .. cache .. " provider=" .. provider .. " upstream=" .. upstream
  seen[key] = (seen[key] or 0) + 1
  if status ~= 200
      or (expect_cache and cache ~= expect_cache)
      or (expect_provider and provider ~= expect_provider)
      or (expect_upstream and upstream ~= expect_upstream) then
    mismatched = mismatched + 1
    if first_mismatch == "" then first_mismatch = key end
  end
end

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local total_checked, total_mismatched, first = 0, 0, ""
  local all_seen = {}
  for _, t in ipairs(threads) do
    total_checked = total_checked + t:get("checked")
    total_mismatched = total_mismatched + t:get("mismatched")
    local f = t:get("first_mismatch")
    if first == "" and f ~= "" then first = f end
    for k, n in pairs(t:get("seen")) do all_seen[k] = (all_seen[k] or 0) + n end
  end
  local parts = {}
  for k, n in pairs(all_seen) do table.insert(parts, json_string(k) .. ":" .. n) end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.2f,"mean_us":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"check":{"checked":%d,"mismatched":%d,"first_mismatch":%s,"seen":{%s}}}\n',
    summary.requests, summary.duration, summary.bytes, summary.requests / seconds, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_checked, total_mismatched, json_string(first), table.concat(parts, ",")))
end
