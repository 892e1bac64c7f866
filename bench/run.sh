#!/usr/bin/env bash
# The benchmark in one command: builds Release once, starts a zero-latency mock upstream, nginx as a
# plain proxy, and the gateway (embedded store, Redis store, cache hits; embeddings; pass-through) on
# 127.0.0.1, measures them side by side in alternating rounds with wrk and the stream probes, and writes
# bench/RESULTS.md.
# Every process it starts is stopped when it exits, however it exits.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
  cat <<'EOF'
Usage: bench/run.sh [options]

  --quick              rounds of 2 s (1 s warm-up), 2 rounds, short stream and open-stream phases:
                       checks the harness end to end in about five minutes; not a measurement
  --only "KINDS"       measure only these endpoint kinds (default "chat embeddings passthrough"):
                       chat         POST /v1/chat/completions: every chat target, streams, open streams, soak
                       embeddings   POST /v1/embeddings: direct, nginx, gateway
                       passthrough  POST /v1/moderations: direct, nginx, a gateway with PassThrough:Provider
  --soak               add a 10-minute soak on the gateway, RSS sampled every 10 s
  --soak-seconds N     soak for N seconds instead (implies --soak)
  --soak-interval S    seconds between RSS samples in the soak (default 10)
  --rounds N           rounds per target and connection count (default 3)
  --duration S         seconds per round (default 10)
  --warmup S           warm-up seconds per target before the rounds (default 10)
  --connections "L"    wrk connection counts (default "1 16 64")
  --threads N          wrk threads (default 2)
  --slow-count N       concurrent open streams for the memory phase (default 1000)
  --no-warn-logs       skip the extra gateway that logs at Warning (every other gateway logs each request at
                       Information, the shipped default)
  --no-thread-pool-row skip the extra gateway run with Gateway:Server:IoScheduling=thread-pool (.NET's default scheduling)
  --no-floor-row       skip the bare .NET proxy (Kestrel + HttpClient, the gateway's runtime settings): the floor
  --micro              also run the BenchmarkDotNet micro-benchmarks (--job short) into the report
  --no-build           use the Release builds already there
  --out FILE           where the report goes (default bench/RESULTS.md)
  --keep               keep the temporary directory (configs, logs, raw results)
EOF
}

# Warm-up of 10 s: a profile of the gateway after 7 s of load still showed a fifth of its CPU in the JIT
# (tiered compilation with PGO), after 17 s almost none; rounds must not pay for that.
mode=full rounds=3 duration=10 warmup=10 connections="1 16 64" threads=2 warm_max_s=40
stream_n=400 stream_c=8 stream_chunks=20 stream_delay_ms=5
slow_count=1000 slow_hold=15 slow_delay_ms=1000
soak=0 soak_seconds=600 soak_interval=10 soak_conns=16
warn_logs=1 threadpool_row=1 floor_row=1 micro=0 build=1 keep=0
only="chat embeddings passthrough"
out="$here/RESULTS.md"
args_text="$*"

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick rounds=2 duration=2 warmup=1 warm_max_s=4 stream_n=40 stream_c=4 slow_hold=3 ;;
    --soak) soak=1 ;;
    --soak-seconds) soak=1 soak_seconds=$2; shift ;;
    --soak-interval) soak_interval=$2; shift ;;
    --only) only=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --connections) connections=$2; shift ;;
    --threads) threads=$2; shift ;;
    --slow-count) slow_count=$2; shift ;;
    --no-warn-logs) warn_logs=0 ;;
    --no-thread-pool-row) threadpool_row=0 ;;
    --no-floor-row) floor_row=0 ;;
    --micro) micro=1 ;;
    --no-build) build=0 ;;
    --out) out=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "Unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The endpoint kinds to measure, in the order their rounds run.
run_chat=0 run_embeddings=0 run_passthrough=0 kinds=""
for k in $only; do
  case "$k" in
    chat) run_chat=1 ;;
    embeddings) run_embeddings=1 ;;
    passthrough) run_passthrough=1 ;;
    *) echo "Unknown kind in --only: $k (chat, embeddings, passthrough)" >&2; usage >&2; exit 2 ;;
  esac
done
for k in chat embeddings passthrough; do
  v=run_$k
  [ "${!v}" = 1 ] && kinds+="$k "
done
[ -n "$kinds" ] || { echo "--only names no endpoint kind" >&2; exit 2; }
kinds=${kinds% }
if [ "$soak" = 1 ] && [ "$run_chat" = 0 ]; then echo "--soak measures chat: add chat to --only" >&2; exit 2; fi

# --- What the harness needs (Debian packages), installed when missing, as scripts/test.sh does ----------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} ..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian packages start system services; this harness runs its own on free loopback ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx redis-server >/dev/null 2>&1 || true; fi
# Each open stream holds a few descriptors in the gateway, the mock and the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- Processes: every one is started through start_bg and stopped by the EXIT trap ------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-bench.XXXXXX")
results="$tmp/results.jsonl"
: >"$results"
declare -A PID=() PORT=() PIDS_OF=() ALIVE=()

# shellcheck source=lib/processes.sh
. "$here/lib/processes.sh"
install_cleanup

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
record() { printf '%s\n' "$1" >>"$results"; }
note() { log "note: $1"; record "{\"kind\":\"note\",\"text\":$(json_str "$1")}"; }
skip() { log "skip $1: $3"; record "{\"kind\":\"skip\",\"name\":\"$1\",\"label\":$(json_str "$2"),\"reason\":$(json_str "$3")}"; }


# A kB field of /proc/PID/status (VmRSS, VmHWM) summed over the given pids.
mem_kb() {
  local field=$1 total=0 pid v; shift
  for pid in "$@"; do
    v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

tail_log() { tail -n 20 "$tmp/$1.log" >&2 2>/dev/null || true; }

# --- Build once -------------------------------------------------------------------------------------------
if [ "$build" = 1 ]; then
  log "building Release ..."
  dotnet build "$root/src/LlmGateway/LlmGateway.csproj" -c Release -nologo -v q -clp:ErrorsOnly >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "build failed"; }
  dotnet build "$here/LlmGateway.Bench/LlmGateway.Bench.csproj" -c Release -nologo -v q -clp:ErrorsOnly >>"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "build failed"; }
fi
gw_bin="$root/src/LlmGateway/bin/Release/net10.0/LlmGateway"
bench_bin="$here/LlmGateway.Bench/bin/Release/net10.0/LlmGateway.Bench"
[ -x "$gw_bin" ] || die "no Release build at $gw_bin"
[ -x "$bench_bin" ] || die "no Release build at $bench_bin"
# The chat load body is at temperature 0.2: with Cache:OnlyDeterministic nothing about it is cacheable, so
# every gateway answer to it says x-gateway-cache: bypass and costs one upstream call (the miss path). The
# cache-hit targets post the same request at temperature 0 (chat-cacheable.json), on processes of their own.
body="$here/bodies/chat.json"
hit_body="$here/bodies/chat-cacheable.json"
lua="$here/wrk/chat.lua"
# What each endpoint kind posts, and where (the same path on the mock, nginx and the gateway).
declare -A KIND_PATH=([chat]=/v1/chat/completions [embeddings]=/v1/embeddings [passthrough]=/v1/moderations)
declare -A KIND_BODY=([chat]="$body" [embeddings]="$here/bodies/embeddings.json" [passthrough]="$here/bodies/moderations.json")

# --- Where and what ---------------------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=false; [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ] && dirty=true
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
record "{\"kind\":\"meta\",\"date\":$(json_str "$(date -u '+%Y-%m-%d %H:%M UTC')"),\"args\":$(json_str "$args_text"),\"mode\":\"$mode\",\
\"rounds\":$rounds,\"duration_s\":$duration,\"warmup_s\":$warmup,\"warm_max_s\":$warm_max_s,\"threads\":$threads,\"connections\":$(json_str "$connections"),\
\"nproc\":$(nproc),\"cpu\":$(json_str "${cpu_model:-unknown}"),\"mem_mb\":$mem_mb,\"kernel\":$(json_str "$(uname -r)"),\
\"loadavg\":$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)"),\"commit\":\"$commit\",\"dirty\":$dirty,\"clk_tck\":$(getconf CLK_TCK),\"body_bytes\":$(wc -c <"$body"),\
\"only\":$(json_str "$kinds"),\"embeddings_body_bytes\":$(wc -c <"${KIND_BODY[embeddings]}"),\"passthrough_body_bytes\":$(wc -c <"${KIND_BODY[passthrough]}"),\
\"dotnet\":$(json_str "$(dotnet --version 2>/dev/null || echo ?)"),\"nginx\":$(json_str "$(nginx -v 2>&1 | sed 's/^nginx version: //')"),\
\"wrk\":$(json_str "$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"),\"redis\":$(json_str "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"),\
\"stream_n\":$stream_n,\"stream_concurrency\":$stream_c,\"stream_chunks\":$stream_chunks,\"stream_chunk_delay_ms\":$stream_delay_ms,\
\"slow_count\":$slow_count,\"slow_chunk_delay_ms\":$slow_delay_ms,\"soak_seconds\":$soak_seconds,\"soak_interval_s\":$soak_interval,\"soak_conns\":$soak_conns}"

# --- The mock upstream ------------------------------------------------------------------------------------
free_port mock
start_bg mock "$bench_bin" mock-upstream --port "${PORT[mock]}"
wait_http "http://127.0.0.1:${PORT[mock]}/health" "${PID[mock]}" 30 || { tail_log mock; die "the mock upstream did not start"; }
log "mock upstream on 127.0.0.1:${PORT[mock]}"

# --- nginx as a plain proxy: one worker, no buffering, keep-alive to the mock, all files in the temp dir ---
free_port nginx
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  upstream mock {
    server 127.0.0.1:${PORT[mock]};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${PORT[nginx]} backlog=4096;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
EOF
start_bg nginx nginx -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
wait_http "http://127.0.0.1:${PORT[nginx]}/health" "${PID[nginx]}" 30 || { cat "$tmp/nginx/error.log" >&2; die "nginx did not start"; }
PIDS_OF[nginx]="${PID[nginx]} $(pgrep -P "${PID[nginx]}" | tr '\n' ' ')"
log "nginx on 127.0.0.1:${PORT[nginx]} (pids ${PIDS_OF[nginx]})"

# The I/O scheduling a process runs in, proven from its threads: inline completions make the runtime run one
# socket event thread (".NET Sockets") per core, its default one per 30 cores (Gateway:Server:IoScheduling).
# Prints what is wrong, or nothing.
io_scheduling_mismatch() {
  local name=$1 mode=$2 want got
  want=$(awk -v n="$(nproc)" -v m="$mode" 'BEGIN { if (m == "inline") print n; else { e = int(n / 30 + 0.5); print (e < 1 ? 1 : e) } }')
  got=$(cat /proc/"${PID[$name]}"/task/*/comm 2>/dev/null | grep -c '^\.NET Sockets$' || true)
  [ "$got" = "$want" ] || printf '%s should run %s I/O scheduling (%s socket event threads) but has %s' "$name" "$mode" "$want" "$got"
}

# --- The floor: a bare .NET proxy (Kestrel + one HttpClient, bench/LlmGateway.Bench bare-proxy) -------------
# What the platform alone costs on the chat path, with none of the gateway's work: between it and nginx is
# .NET's share, between the gateway and it the gateway's own layers (issue 19). It must run with the gateway's
# runtime settings (src/LlmGateway/LlmGateway.csproj: server and concurrent GC, thread-pool spin limit 0; TieredPGO
# is on in both projects; inline I/O scheduling, which it sets itself). The bench project's runtimeconfig has
# workstation, non-concurrent GC for the mock, so the DOTNET_ variables override it for this process only; the
# process prints the settings it reads back from the runtime, and a floor that did not get them is withheld.
floor_reason="" floor_label="bare .NET proxy (Kestrel + HttpClient: the floor)"
if [ "$run_chat" = 1 ] && [ "$floor_row" = 1 ]; then
  free_port bare
  start_bg bare env DOTNET_gcServer=1 DOTNET_gcConcurrent=1 DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    "$bench_bin" bare-proxy --port "${PORT[bare]}" --upstream "http://127.0.0.1:${PORT[mock]}"
  if wait_http "http://127.0.0.1:${PORT[bare]}/health" "${PID[bare]}" 30; then
    floor_runtime=$(sed -n 's/^bare-proxy runtime: //p' "$tmp/bare.log")
    case " $floor_runtime " in
      *" server_gc=true concurrent_gc=true "*" spin_limit=0 inline_completions=1 "*) ;;
      *) floor_reason="it did not run with the gateway's runtime settings (it read back: ${floor_runtime:-nothing})" ;;
    esac
    [ -n "$floor_reason" ] || floor_reason=$(io_scheduling_mismatch bare inline)
    record "{\"kind\":\"runtime\",\"process\":\"bare\",\"settings\":$(json_str "$floor_runtime")}"
  else
    floor_reason="the bare proxy did not start ($(tail -n 1 "$tmp/bare.log" 2>/dev/null | cut -c1-200))"
  fi
  if [ -n "$floor_reason" ]; then stop_named bare; else log "bare .NET proxy (the floor) on 127.0.0.1:${PORT[bare]}: $floor_runtime"; fi
fi

# --- redis-server on a free port, nothing persisted (only the chat targets use it) ------------------------
if [ "$run_chat" = 1 ]; then
  free_port redis
  start_bg redis redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --daemonize no
  for _ in $(seq 1 200); do [ "$(redis-cli -p "${PORT[redis]}" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  [ "$(redis-cli -p "${PORT[redis]}" ping 2>/dev/null)" = PONG ] || { tail_log redis; die "redis-server did not start"; }
  log "redis-server on 127.0.0.1:${PORT[redis]}"
fi

# --- The gateway's configuration: the openai provider on the mock, bench models, a budget so that reserve
#     and settle run on every request. The key is a dummy the mock ignores; a real OPENAI_API_KEY from the
#     caller's environment is never handed to the gateway. bench-embed is the embeddings model on the same
#     upstream. The pass-through gateway is its own process (gateway-passthrough.json: the same plus
#     PassThrough:Provider), so that the other targets measure a gateway with no catch-all /v1 route. ----
write_gateway_config() {
  local file=$1 extra=$2
  cat >"$file" <<EOF
{
  "Gateway": {${extra}
    "Providers": {
      "openai": { "Type": "openai", "BaseUrl": "http://127.0.0.1:${PORT[mock]}/v1", "ApiKeyEnv": "BENCH_UPSTREAM_KEY", "MaxConcurrency": 4096 }
    },
    "Models": {
      "bench-model": { "Provider": "openai", "UpstreamModel": "bench-model", "Priority": 1,
                       "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 },
      "bench-stream": { "Provider": "openai", "UpstreamModel": "bench-stream@chunks=${stream_chunks},chunk_delay_ms=${stream_delay_ms}", "Priority": 1,
                        "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 },
      "bench-slow": { "Provider": "openai", "UpstreamModel": "bench-slow@chunks=1000000,chunk_delay_ms=${slow_delay_ms}", "Priority": 1,
                      "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 },
      "bench-embed": { "Provider": "openai", "UpstreamModel": "bench-embed", "Priority": 1,
                       "CostPer1kInput": 0.00002, "ContextWindow": 8191, "MaxOutputTokens": 0, "Capabilities": [ "embeddings" ] }
    },
    "Budgets": { "Global": { "DailyUsd": 1000000, "MonthlyUsd": 10000000 } },
    "Cache": { "Enabled": true, "OnlyDeterministic": true, "TtlSeconds": 86400 }
  }
}
EOF
}
write_gateway_config "$tmp/gateway.json" ""
write_gateway_config "$tmp/gateway-passthrough.json" '
    "PassThrough": { "Provider": "openai" },'

# Starts a gateway and records the time from launch to the first 200 from /health/ready. Each gateway on
# Redis gets a key prefix of its own, so that a cache-hit process never fills a miss process's cache.
start_gateway() {
  local name=$1 level=$2 redis=$3 config=${4:-$tmp/gateway.json} extra_env=${5:-}
  free_port "$name"
  local t0 t1
  t0=$(date +%s%N)
  start_bg "$name" env -u OPENAI_API_KEY \
    ASPNETCORE_ENVIRONMENT=Production GATEWAY_CONFIG="$config" BENCH_UPSTREAM_KEY=bench-dummy-upstream-key \
    Serilog__MinimumLevel__Default="$level" ConnectionStrings__Redis="$redis" Gateway__Store__KeyPrefix="bench-$name:" \
    $extra_env "$gw_bin" --urls "http://127.0.0.1:${PORT[$name]}"
  if ! wait_http "http://127.0.0.1:${PORT[$name]}/health/ready" "${PID[$name]}" 60; then
    return 1
  fi
  t1=$(date +%s%N)
  record "{\"kind\":\"ready\",\"process\":\"$name\",\"ms\":$(((t1 - t0) / 1000000))}"
  log "$name on 127.0.0.1:${PORT[$name]}: ready in $(((t1 - t0) / 1000000)) ms"
}

# The gateway row names say which I/O scheduling they measure, so a gateway in the other mode stops the bench.
check_io_scheduling() {
  local why
  why=$(io_scheduling_mismatch "$1" "$2")
  [ -z "$why" ] || die "$why"
  log "$1: $2 I/O scheduling"
}

if [ "$run_chat" = 1 ] || [ "$run_embeddings" = 1 ]; then
  start_gateway gateway Information "" || { tail_log gateway; die "the gateway did not become ready"; }
  check_io_scheduling gateway inline
fi
if [ "$run_chat" = 1 ] && [ "$warn_logs" = 1 ]; then
  start_gateway gateway-warn Warning "" || { tail_log gateway-warn; die "the gateway (Warning logs) did not become ready"; }
fi
# The same gateway with .NET's default I/O scheduling (every socket completion handed to a thread-pool worker)
# instead of the shipped inline scheduling (Gateway:Server:IoScheduling, see README "Performance"), to show
# what the default buys on this machine.
if [ "$run_chat" = 1 ] && [ "$threadpool_row" = 1 ]; then
  start_gateway gateway-threadpool Information "" "" Gateway__Server__IoScheduling=thread-pool || { tail_log gateway-threadpool; die "the gateway (thread-pool scheduling) did not become ready"; }
  check_io_scheduling gateway-threadpool thread-pool
fi
redis_reason=""
if [ "$run_chat" = 1 ] && ! start_gateway gateway-redis Information "127.0.0.1:${PORT[redis]}"; then
  redis_reason="the gateway did not become ready with ConnectionStrings:Redis set ($(tail -n 1 "$tmp/gateway-redis.log" 2>/dev/null | cut -c1-200))"
  stop_named gateway-redis
fi
if [ "$run_passthrough" = 1 ]; then
  start_gateway gateway-pt Information "" "$tmp/gateway-passthrough.json" || { tail_log gateway-pt; die "the pass-through gateway did not become ready"; }
fi
# The cache-hit targets run on processes of their own: what they store can never answer a miss row.
hit_reason=""
if [ "$run_chat" = 1 ] && ! start_gateway gateway-hit Information ""; then
  hit_reason="the cache-hit gateway did not become ready ($(tail -n 1 "$tmp/gateway-hit.log" 2>/dev/null | cut -c1-200))"
  stop_named gateway-hit
fi
hit_redis_reason=""
if [ "$run_chat" = 1 ] && [ -z "$redis_reason" ] && ! start_gateway gateway-hit-redis Information "127.0.0.1:${PORT[redis]}"; then
  hit_redis_reason="the cache-hit gateway on Redis did not become ready ($(tail -n 1 "$tmp/gateway-hit-redis.log" 2>/dev/null | cut -c1-200))"
  stop_named gateway-hit-redis
fi
[ -n "$redis_reason" ] && hit_redis_reason="needs the Redis store: $redis_reason"

# --- Targets ----------------------------------------------------------------------------------------------
# Every target says what it measures, and every answer is checked against that (bench/wrk/chat.lua, and
# the probes below): the x-gateway-cache it must carry (hit, miss, bypass; "-" for none), the
# x-gateway-provider ("openai" is the bench's upstream provider, "cache" a cache hit; "-" for none), whether
# the mock's own x-bench-upstream header must be on it, and how many upstream calls each answer must have
# cost (one, or none for a hit; counted by the mock's GET /stats around every round). A row whose answers
# say anything else is reported as failed, never as a number.
declare -A T_URL=() T_HEADER=() T_PROC=() T_LABEL=() T_KIND=() T_BODY=() T_CACHE=() T_PROVIDER=() T_UPSTREAM=() T_CALLS=()
chat=/v1/chat/completions
# add_target NAME LABEL PROCESS HEADER KIND BODY CACHE PROVIDER UPSTREAM CALLS
order=()
add_target() {
  local kind=$5
  T_LABEL[$1]=$2; T_PROC[$1]=$3; T_URL[$1]="http://127.0.0.1:${PORT[$3]}${KIND_PATH[$kind]}"; T_HEADER[$1]=$4
  T_KIND[$1]=$kind; T_BODY[$1]=${6:-${KIND_BODY[$kind]}}
  T_CACHE[$1]=$7; T_PROVIDER[$1]=$8; T_UPSTREAM[$1]=$9; T_CALLS[$1]=${10}
  order+=("$1")
}
# Direct and nginx rows: no gateway header at all, and the mock's own header (the answer is the mock's).
# Chat miss rows: temperature 0.2, so the gateway neither looks the cache up nor stores (bypass), and
# calls the upstream once per request. Cache-hit rows: temperature 0, primed once, then every answer a hit.
if [ "$run_chat" = 1 ]; then
  add_target direct "direct to the mock" mock "" chat "" - - mock one
  add_target nginx "nginx (plain proxy)" nginx "" chat "" - - mock one
  # The floor hands the mock's answer on like nginx: no gateway header, the mock's own, one call per answer.
  [ "$floor_row" = 1 ] && [ -z "$floor_reason" ] && add_target bare "$floor_label" bare "" chat "" - - mock one
  add_target gateway "gateway (embedded store), miss" gateway "" chat "" bypass openai "" one
  [ "$threadpool_row" = 1 ] && add_target gateway-threadpool "gateway, thread-pool I/O scheduling, miss" gateway-threadpool "" chat "" bypass openai "" one
  [ "$warn_logs" = 1 ] && add_target gateway-warn "gateway, logs at Warning (no line per request), miss" gateway-warn "" chat "" bypass openai "" one
  [ -n "${PID[gateway-redis]:-}" ] && [ -z "$redis_reason" ] && add_target gateway-redis "gateway (Redis store), miss" gateway-redis "" chat "" bypass openai "" one
  [ -n "${PID[gateway-hit]:-}" ] && add_target hit-memory "gateway, cache hit (memory)" gateway-hit "" chat "$hit_body" hit cache "" none
  [ -n "${PID[gateway-hit-redis]:-}" ] && add_target hit-redis "gateway, cache hit (Redis)" gateway-hit-redis "" chat "$hit_body" hit cache "" none
fi
# Embeddings are always cacheable (the same input gives the same vector): Cache-Control: no-store makes the
# gateway look the cache up and miss without ever storing, so every request goes through the whole miss
# path (cache lookup, routing, budget reserve and settle, ledger) and one upstream call.
if [ "$run_embeddings" = 1 ]; then
  add_target emb-direct "direct to the mock" mock "Cache-Control: no-store" embeddings "" - - mock one
  add_target emb-nginx "nginx (plain proxy)" nginx "Cache-Control: no-store" embeddings "" - - mock one
  add_target emb-gateway "gateway (embedded store), miss" gateway "Cache-Control: no-store" embeddings "" miss openai "" one
fi
# Pass-through is never cached: no x-gateway-cache; YARP hands the mock's headers on, so its own is there.
if [ "$run_chat" = 1 ]; then
  [ -n "$floor_reason" ] && skip bare "$floor_label" "$floor_reason"
  [ -n "$hit_reason" ] && skip hit-memory "gateway, cache hit (memory)" "$hit_reason"
  [ -n "$hit_redis_reason" ] && skip hit-redis "gateway, cache hit (Redis)" "$hit_redis_reason"
fi
if [ "$run_passthrough" = 1 ]; then
  add_target pt-direct "direct to the mock" mock "" passthrough "" - - mock one
  add_target pt-nginx "nginx (plain proxy)" nginx "" passthrough "" - - mock one
  add_target pt-gateway "gateway, pass-through (YARP)" gateway-pt "" passthrough "" - openai mock one
fi

# The mock's upstream calls so far on one endpoint kind (GET /stats).
upstream_calls() {
  local kind=$1 key
  case "$kind" in chat) key=chat ;; embeddings) key=embeddings ;; passthrough) key=moderations ;; esac
  mock_calls "$key"
}

# One request as wrk would send it (with BODY instead of the target's when given); sets P_STATUS, P_CACHE,
# P_PROVIDER, P_UPSTREAM from the answer.
probe() {
  local t=$1 b=${2:-${T_BODY[$1]}} headers="$tmp/probe-headers"
  local extra=()
  [ -n "${T_HEADER[$t]}" ] && extra=(-H "${T_HEADER[$t]}")
  P_STATUS=$(curl -s -o "$tmp/probe-body" -D "$headers" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' "${extra[@]}" --data-binary @"$b" "${T_URL[$t]}" || echo 000)
  header_of() { awk -F': *' -v h="$1" 'tolower($1) == h { gsub("\r", "", $2); print $2 }' "$headers" 2>/dev/null || true; }
  P_CACHE=$(header_of x-gateway-cache); P_CACHE=${P_CACHE:--}
  P_PROVIDER=$(header_of x-gateway-provider); P_PROVIDER=${P_PROVIDER:--}
  P_UPSTREAM=$(header_of x-bench-upstream); P_UPSTREAM=${P_UPSTREAM:--}
}

# Empty when the last probe's answer is what target T claims; else what was wrong.
probe_mismatch() {
  local t=$1 why=""
  [ "$P_STATUS" = 200 ] || why+="status $P_STATUS; "
  [ "$P_CACHE" = "${T_CACHE[$t]}" ] || why+="x-gateway-cache: $P_CACHE (expected ${T_CACHE[$t]}); "
  [ "$P_PROVIDER" = "${T_PROVIDER[$t]}" ] || why+="x-gateway-provider: $P_PROVIDER (expected ${T_PROVIDER[$t]}); "
  [ -z "${T_UPSTREAM[$t]}" ] || [ "$P_UPSTREAM" = "${T_UPSTREAM[$t]}" ] || why+="x-bench-upstream: $P_UPSTREAM (expected ${T_UPSTREAM[$t]}); "
  printf '%s' "${why%; }"
}


active=()
for t in "${order[@]}"; do
  # A cache-hit target is primed by one request (the miss that stores the answer); then, as for every
  # target, three probes must each say what the target claims and cost the upstream calls it claims.
  if [ "${T_CALLS[$t]}" = none ]; then
    probe "$t"
    ok=0
    for _ in $(seq 1 50); do
      probe "$t"
      [ "$P_CACHE" = hit ] && { ok=1; break; }
      sleep 0.1
    done
    if [ "$ok" = 0 ]; then
      skip "$t" "${T_LABEL[$t]}" "failed its check: a repeated temperature-0 request still answered x-gateway-cache: $P_CACHE after 5 s"
      continue
    fi
  fi
  before=$(upstream_calls "${T_KIND[$t]}")
  why=""
  for _ in 1 2 3; do
    probe "$t"
    why=$(probe_mismatch "$t")
    [ -z "$why" ] || break
  done
  after=$(upstream_calls "${T_KIND[$t]}")
  calls=$((after - before))
  if [ -z "$why" ]; then
    case "${T_CALLS[$t]}" in
      one) [ "$calls" = 3 ] || why="3 answers cost $calls upstream calls (expected one each)" ;;
      none) [ "$calls" = 0 ] || why="3 cache hits cost $calls upstream calls (expected none)" ;;
    esac
  fi
  if [ -n "$why" ]; then
    case "$t" in
      direct|nginx|emb-direct|emb-nginx|pt-direct|pt-nginx)
        head -c 300 "$tmp/probe-body" >&2; echo >&2; die "$t: the bench request's answer is not what the row claims: $why" ;;
    esac
    # A gateway row that does not measure what it says is reported as failed, not measured.
    [ "$t" = gateway-redis ] && redis_reason="failed its check: $why"
    skip "$t" "${T_LABEL[$t]}" "failed its check: $why (body: $(head -c 200 "$tmp/probe-body"))"
    continue
  fi
  case "$t" in
    emb-*)
      # An embeddings list from the mock (the gateway hands it on byte for byte), not some other 200.
      grep -q '"object":"list"' "$tmp/probe-body" || { head -c 300 "$tmp/probe-body" >&2; echo >&2; die "$t did not answer an embeddings list"; } ;;
    pt-*)
      # The mock's moderation answer, so the pass-through gateway really forwarded the call.
      grep -q '"id":"modr-bench' "$tmp/probe-body" || { head -c 300 "$tmp/probe-body" >&2; echo >&2; die "$t did not answer the mock's moderation"; } ;;
  esac
  if [ "$t" = gateway-redis ]; then
    # A store may write its ledger a little later: give it a few seconds before judging.
    keys=0
    for _ in $(seq 1 30); do
      keys=$(redis-cli -p "${PORT[redis]}" --scan --pattern 'bench-gateway-redis:*' 2>/dev/null | wc -l)
      [ "${keys:-0}" -gt 0 ] && break
      sleep 0.1
    done
    if [ "${keys:-0}" -eq 0 ]; then
      redis_reason="not supported: the gateway wrote no key under its prefix after a request (this build keeps budgets and ledger in memory whatever ConnectionStrings:Redis says)"
      skip "$t" "${T_LABEL[$t]}" "$redis_reason"
      continue
    fi
  fi
  active+=("$t")
  record "{\"kind\":\"target\",\"name\":\"$t\",\"label\":$(json_str "${T_LABEL[$t]}"),\"process\":\"${T_PROC[$t]}\",\"endpoint\":\"${T_KIND[$t]}\",\"cache\":$(json_str "${T_CACHE[$t]}"),\"provider\":$(json_str "${T_PROVIDER[$t]}"),\"upstream\":$(json_str "${T_UPSTREAM[$t]:-}"),\"calls\":\"${T_CALLS[$t]}\",\"body\":$(json_str "$(basename "${T_BODY[$t]}")"),\"header\":$(json_str "${T_HEADER[$t]}")}"
done
if [ -n "$redis_reason" ] && [ -n "${PID[gateway-redis]:-}" ]; then stop_named gateway-redis; fi
log "targets: ${active[*]}"

# --- Load: wrk rounds, targets alternating --------------------------------------------------------------
run_wrk() {
  local t=$1 c=$2 d=$3 round=$4
  local th=$threads; [ "$th" -gt "$c" ] && th=$c
  local pids=${PIDS_OF[${T_PROC[$t]}]}
  local before after out json calls_before calls_after load
  load=$(cut -d' ' -f1 /proc/loadavg)
  calls_before=$(upstream_calls "${T_KIND[$t]}")
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  if ! out=$(BENCH_BODY="${T_BODY[$t]}" BENCH_HEADER="${T_HEADER[$t]}" BENCH_EXPECT_CACHE="${T_CACHE[$t]}" BENCH_EXPECT_PROVIDER="${T_PROVIDER[$t]}" \
      BENCH_EXPECT_UPSTREAM="${T_UPSTREAM[$t]}" wrk -t"$th" -c"$c" -d"${d}s" --timeout 10s --latency -s "$lua" "${T_URL[$t]}" 2>&1); then
    note "wrk failed against $t at $c connections (round $round): $(printf '%s' "$out" | tail -n 1)"
    return 0
  fi
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  # wrk has returned, but a request it gave up on at the deadline may still reach the mock: a moment.
  sleep 0.2
  calls_after=$(upstream_calls "${T_KIND[$t]}")
  json=$(printf '%s\n' "$out" | sed -n 's/^BENCH_JSON //p')
  if [ -z "$json" ]; then
    note "wrk printed no result for $t at $c connections (round $round)"
    return 0
  fi
  # A gateway logging every request writes about 1 kB per request: keep the temp dir small.
  case "${T_PROC[$t]}" in gateway*) : >"$tmp/${T_PROC[$t]}.log" ;; esac
  # The warm-up (round 0) is recorded too: its numbers are not reported, but its answers are checked.
  # shellcheck disable=SC2086
  record "{\"kind\":\"wrk\",\"target\":\"$t\",\"conns\":$c,\"round\":$round,\"cpu_ticks\":$((after - before)),\"rss_kb\":$(mem_kb VmRSS $pids),\"upstream_calls\":$((calls_after - calls_before)),\"loadavg\":$load,\"wrk\":$json}"
  local mismatched
  mismatched=$(sed -n 's/.*"mismatched":\([0-9]*\).*/\1/p' <<<"$json")
  [ "${mismatched:-0}" = 0 ] || log "  $t at $c connections (round $round): $mismatched answers were not what the row claims ($(sed -n 's/.*"first_mismatch":"\([^"]*\)".*/\1/p' <<<"$json")): the row will be reported as failed"
  [ "$round" -gt 0 ] || return 0
  printf '  round %s  c=%-3s %-14s %9s req/s  p50 %6s us  p99 %6s us  upstream calls %s  load %s\n' "$round" "$c" "$t" \
    "$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$json")" "$(sed -n 's/.*"p50_us":\([0-9]*\).*/\1/p' <<<"$json")" \
    "$(sed -n 's/.*"p99_us":\([0-9]*\).*/\1/p' <<<"$json")" "$((calls_after - calls_before))" "$load" >&2
}

max_conns=0
for c in $connections; do [ "$c" -gt "$max_conns" ] && max_conns=$c; done
log "warm-up: ${warmup} s per target at $max_conns connections"
for t in "${active[@]}"; do run_wrk "$t" "$max_conns" "$warmup" 0; done

# A .NET target is measured warm. Tiered compilation with dynamic PGO keeps recompiling a gateway's paths for
# tens of seconds of load (bench/PROFILE.md, fourth round: 224 µs per request after 6 s, 105 to 111 after 25 s), and
# a production gateway pays that once after a start, not on every request. So the warm-up goes on, 2 s at a time
# and at most $warm_max_s s more, until the process's JIT thread (".NET Tiered Com...") took at most 2 % of its CPU
# over the last 2 s; what each target still compiling needed, or that it never got there, is in the report's notes.
# A process with no JIT thread (nginx, or a .NET process whose tiering has finished and let its thread go) is warm.
for t in "${active[@]}"; do
  pid=${PID[${T_PROC[$t]}]:-}
  [ -n "$pid" ] && grep -qs '^\.NET Tiered' /proc/"$pid"/task/*/comm || continue
  extra=0 share=100
  while :; do
    j0=$(thread_ticks "$pid" ".NET Tiered"); c0=$(cpu_ticks "$pid")
    run_wrk "$t" "$max_conns" 2 0
    j1=$(thread_ticks "$pid" ".NET Tiered"); c1=$(cpu_ticks "$pid"); extra=$((extra + 2))
    share=$(( (j1 - j0) * 100 / ((c1 - c0) > 0 ? (c1 - c0) : 1) ))
    [ "$share" -le 2 ] && break
    [ "$extra" -ge "$warm_max_s" ] && break
  done
  if [ "$share" -le 2 ]; then
    note "$t: warm after ${extra} s more of warm-up (its JIT thread ${share} % of its CPU over the last 2 s)"
  else
    note "$t: its JIT thread still took ${share} % of its CPU after ${extra} s more of warm-up; measured anyway"
  fi
done

# Each endpoint kind's targets run back to back and rotate among themselves, so that a target and the
# direct row it is compared with are measured close together in time.
declare -A ACTIVE_OF=()
for t in "${active[@]}"; do ACTIVE_OF[${T_KIND[$t]}]+="$t "; done
for round in $(seq 1 "$rounds"); do
  log "round $round of $rounds"
  for c in $connections; do
    for kind in $kinds; do
      read -ra group <<<"${ACTIVE_OF[$kind]:-}"
      n=${#group[@]}
      for i in $(seq 0 $((n - 1))); do
        run_wrk "${group[$(((i + round - 1) % n))]}" "$c" "$duration" "$round"
      done
    done
  done
done

for proc in mock nginx bare gateway gateway-warn gateway-threadpool gateway-redis gateway-hit gateway-hit-redis gateway-pt; do
  [ -n "${PID[$proc]:-}" ] && [ -n "${ALIVE[${PID[$proc]}]:-}" ] || continue
  # shellcheck disable=SC2086
  record "{\"kind\":\"proc\",\"process\":\"$proc\",\"hwm_kb\":$(mem_kb VmHWM ${PIDS_OF[$proc]}),\"rss_kb\":$(mem_kb VmRSS ${PIDS_OF[$proc]})}"
done

# The stream and open-stream phases measure chat completions: only with chat in --only.
if [ "$run_chat" = 1 ]; then
  # --- Streams: time to headers, first and last token, gaps between chunks; direct, nginx, the floor, gateway --
  # The same checks as the load rows: every stream's headers, and one upstream call per stream. The floor passes
  # the body on unchanged, so it posts the model the mock paces by, as direct and nginx do.
  direct_model="bench-stream@chunks=${stream_chunks},chunk_delay_ms=${stream_delay_ms}"
  stream_targets=()
  for t in direct nginx bare gateway; do
    case " ${active[*]} " in *" $t "*) stream_targets+=("$t") ;; esac
  done
  ns=${#stream_targets[@]}
  for round in $(seq 1 "$rounds"); do
    log "streams, round $round of $rounds"
    for i in $(seq 0 $((ns - 1))); do
      t=${stream_targets[$(((i + round - 1) % ns))]}
      model=$direct_model; [ "$t" = gateway ] && model=bench-stream
      w=0; [ "$round" = 1 ] && w=10
      # shellcheck disable=SC2086
      pids=${PIDS_OF[${T_PROC[$t]}]}; load=$(cut -d' ' -f1 /proc/loadavg)
      calls_before=$(upstream_calls chat); ticks_before=$(cpu_ticks $pids)
      if json=$("$bench_bin" stream-probe --url "${T_URL[$t]}" --n "$stream_n" --concurrency "$stream_c" --body "$body" \
          --model "$model" --warmup "$w" --expect-chunks "$stream_chunks" \
          --expect-cache "${T_CACHE[$t]}" --expect-provider "${T_PROVIDER[$t]}" --expect-upstream "${T_UPSTREAM[$t]}" 2>"$tmp/probe.err"); then
        # shellcheck disable=SC2086
        ticks=$(($(cpu_ticks $pids) - ticks_before)); calls=$(($(upstream_calls chat) - calls_before))
        record "{\"kind\":\"stream\",\"target\":\"$t\",\"round\":$round,\"streams\":$((stream_n + w)),\"cpu_ticks\":$ticks,\"upstream_calls\":$calls,\"loadavg\":$load,\"probe\":$json}"
        printf '  round %s  %-8s upstream calls %s  load %s  %s\n' "$round" "$t" "$calls" "$load" "$(cut -c1-150 <<<"$json")" >&2
      else
        note "stream-probe against $t failed in round $round: $(tail -n 1 "$tmp/probe.err" 2>/dev/null) $json"
      fi
    done
  done

  # --- Open streams: memory of a fresh gateway holding many slow streams at once ---------------------------
  stop_named gateway-warn
  stop_named gateway-threadpool
  log "open streams: $slow_count at once on a fresh gateway"
  if start_gateway gateway-streams Information ""; then
    if json=$("$bench_bin" slow-streams --url "http://127.0.0.1:${PORT[gateway-streams]}$chat" --count "$slow_count" --body "$body" \
        --model bench-slow --hold-seconds "$slow_hold" --pid "${PID[gateway-streams]}" \
        --expect-cache bypass --expect-provider openai 2>"$tmp/slow.err"); then
      record "{\"kind\":\"slow\",\"target\":\"gateway\",\"probe\":$json}"
    else
      # It still prints what it measured when not every stream opened in time.
      [ -n "$json" ] && record "{\"kind\":\"slow\",\"target\":\"gateway\",\"probe\":$json}"
      note "slow-streams did not open every stream: $(tail -n 1 "$tmp/slow.err" 2>/dev/null)"
    fi
    log "open streams: $json"
    stop_named gateway-streams
  else
    tail_log gateway-streams
    note "the gateway for the open-streams phase did not become ready"
  fi
fi

# --- Soak: steady load on the gateway, RSS every interval -----------------------------------------------
if [ "$soak" = 1 ]; then
  log "soak: ${soak_seconds} s at $soak_conns connections, RSS every ${soak_interval} s"
  gpid=${PID[gateway]}
  before=$(cpu_ticks "$gpid"); calls_before=$(upstream_calls chat)
  BENCH_BODY="$body" BENCH_HEADER="${T_HEADER[gateway]}" BENCH_EXPECT_CACHE="${T_CACHE[gateway]}" BENCH_EXPECT_PROVIDER="${T_PROVIDER[gateway]}" wrk -t"$threads" -c"$soak_conns" -d"${soak_seconds}s" --timeout 10s --latency -s "$lua" "${T_URL[gateway]}" >"$tmp/soak.out" 2>&1 &
  soak_pid=$!
  ALIVE[$soak_pid]=1
  elapsed=0
  # CPU and upstream calls (one per answer: a miss) per interval too, so a per-request cost that grows with the
  # process's history shows, not only memory that does.
  ticks_at=$before; calls_at=$calls_before
  while kill -0 "$soak_pid" 2>/dev/null && [ "$elapsed" -lt "$soak_seconds" ]; do
    sleep "$soak_interval"
    elapsed=$((elapsed + soak_interval))
    ticks_now=$(cpu_ticks "$gpid"); calls_now=$(upstream_calls chat)
    record "{\"kind\":\"soak-sample\",\"t_s\":$elapsed,\"rss_kb\":$(mem_kb VmRSS "$gpid"),\"cpu_ticks\":$((ticks_now - ticks_at)),\"upstream_calls\":$((calls_now - calls_at))}"
    ticks_at=$ticks_now; calls_at=$calls_now
    log "  soak t=${elapsed}s RSS $(($(mem_kb VmRSS "$gpid") / 1024)) MB"
  done
  wait "$soak_pid" || note "wrk exited with an error during the soak"
  unset "ALIVE[$soak_pid]"
  json=$(sed -n 's/^BENCH_JSON //p' "$tmp/soak.out")
  [ -n "$json" ] && record "{\"kind\":\"soak\",\"cpu_ticks\":$(($(cpu_ticks "$gpid") - before)),\"wrk\":$json}"
fi

record "{\"kind\":\"end\",\"date\":$(json_str "$(date -u '+%Y-%m-%d %H:%M UTC')"),\"loadavg\":$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")}"

# --- Stop the services before the micro-benchmarks and the report -----------------------------------------
for pid in "${!ALIVE[@]}"; do stop_pid "$pid"; done

if [ "$micro" = 1 ]; then
  log "micro-benchmarks (BenchmarkDotNet, --job short) ..."
  if (cd "$root" && dotnet run -c Release --project bench/LlmGateway.Benchmarks -- --filter '*' --job short --artifacts "$tmp/bdn") >"$tmp/micro.log" 2>&1; then
    record "{\"kind\":\"micro\",\"dir\":$(json_str "$tmp/bdn/results")}"
  else
    tail -n 30 "$tmp/micro.log" >&2
    note "the micro-benchmarks failed; see the log above"
  fi
fi

"$bench_bin" report --results "$results" --out "$out" >&2
mkdir -p "$here/out"
cp "$results" "$here/out/results.jsonl"
log "raw results in bench/out/results.jsonl"
sed -n '/^## Targets/,/^## Cost per endpoint/p' "$out" | sed '$d'
awk '/^## Cost per endpoint/ { on = 1 } on && /^## / && !/^## Cost per endpoint/ { exit } on' "$out"
