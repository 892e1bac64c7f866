#!/usr/bin/env bash
# Profiles the gateway's miss path end to end: builds Release, starts the zero-latency mock upstream and
# one gateway on 127.0.0.1 (the bench's configuration: budgets, ledger, metrics on, the per-request log at
# Information), puts a bounded wrk load on it (the chat body at temperature 0.2, every answer checked to be
# x-gateway-cache: bypass from the openai provider, one upstream call each), and meanwhile
#   1. measures CPU per request from /proc without any tool attached,
#   2. collects runtime counters with dotnet-counters (GC, allocations, thread pool),
#   3. collects a thread-time profile with dotnet-trace (EventPipe sample profiler, ~100 Hz),
# then writes a markdown section saying where the busy time goes, by part of the request path.
# With --stream it profiles streams instead of wrk's answers: stream-probe drives chat streams through the
# gateway (the mock paced as bench/run.sh's stream phase: the first content chunk at once, then 20 chunks with
# a 5 ms timer before each), every stream checked complete, x-gateway-cache: bypass, from provider openai;
# rounds alternate direct-to-the-mock and through-the-gateway probes, so the added time to first token and
# the gateway's CPU per stream come from the same minute.
# The dotnet tools are installed from NuGet into bench/.tools on first use. Every process it starts is
# stopped when it exits, however it exits.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
  cat <<'EOF'
Usage: bench/profile.sh [options]

  --label NAME         names the section and its files (default "before")
  --out FILE           where the markdown section goes (default bench/profile/NAME.md)
  --connections N      wrk connections (default 16)
  --warmup S           seconds of load before anything is measured (default 20: tiered JIT and PGO settle)
  --seconds S          seconds of each measured window: untraced, counters, traced (default 15)
  --log-level L        the gateway's Serilog level (default Information, as issue 19 measures)
  --quick              windows of 3 s after a 5 s warm-up: checks the script end to end, not a measurement
  --stream             streams instead of wrk (see above); the default label becomes "streams-before"
  --streams N          streams per untraced probe, per round (--stream; default 400)
  --rounds R           untraced rounds, each a direct and a gateway probe (--stream; default 3)
  --concurrency C      streams at a time (--stream; default 8, as bench/run.sh)
  --untraced-only      the untraced rounds only, no counters or trace (--stream: quick comparisons)
  --perf               also a window under Linux perf (software clock, call graphs, the JIT's perf map): the
                       kernel's share, which EventPipe does not see, and the hottest symbols; sets
                       DOTNET_PerfMapEnabled=1 and DOTNET_EnableWriteXorExecute=0 on the gateway
  --gateway-env N=V    an environment variable for the gateway process (repeatable): measures a runtime
                       knob (e.g. DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0) without changing the project
  --no-build           use the Release builds already there
  --keep               keep the temporary directory (the .nettrace, the speedscope JSON, logs)
EOF
}

label="" out="" conns=16 warmup=20 seconds=15 level=Information build=1 keep=0 mode=full
use_perf=0
gateway_env=() untraced_only=0
stream=0 streams=400 rounds=3 stream_c=8 stream_chunks=20 stream_delay_ms=5
args_text="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --label) label=$2; shift ;;
    --out) out=$2; shift ;;
    --connections) conns=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --log-level) level=$2; shift ;;
    --quick) mode=quick warmup=5 seconds=3 streams=40 rounds=1 ;;
    --stream) stream=1 ;;
    --untraced-only) untraced_only=1 ;;
    --gateway-env) gateway_env+=("$2"); shift ;;
    --streams) streams=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --concurrency) stream_c=$2; shift ;;
    --no-build) build=0 ;;
    --perf) use_perf=1 ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "Unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -n "$label" ] || { label=before; [ "$stream" = 1 ] && label=streams-before; }
if [ "$use_perf" = 1 ]; then
  [ "$stream" = 0 ] || { echo "--perf is for the non-streaming profile" >&2; exit 2; }
  command -v perf >/dev/null 2>&1 || { echo "--perf needs Linux perf (Debian: linux-perf)" >&2; exit 2; }
  # JIT-compiled code is named through the runtime's perf map; W^X off so the map's addresses are the ones that run.
  gateway_env+=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
fi
[ -n "$out" ] || out="$here/profile/$label.md"

log() { printf '[profile %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v wrk >/dev/null 2>&1 || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"; $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk curl >/dev/null; }

# --- The .NET diagnostic tools, pinned, from NuGet -----------------------------------------------------------
tools="$here/.tools"
tool_version=10.0.750501
for t in dotnet-trace dotnet-counters; do
  if [ ! -x "$tools/$t" ]; then
    log "installing $t $tool_version into bench/.tools ..."
    dotnet tool install --tool-path "$tools" "$t" --version "$tool_version" >/dev/null
  fi
done

# --- Processes: every one is started through start_bg and stopped by the EXIT trap ------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-profile.XXXXXX")
declare -A PID=() PORT=() ALIVE=()
declare -A PIDS_OF=()
# shellcheck source=lib/processes.sh
. "$here/lib/processes.sh"
install_cleanup

# --- Build, start ---------------------------------------------------------------------------------------------
if [ "$build" = 1 ]; then
  log "building Release ..."
  dotnet build "$root/src/LlmGateway/LlmGateway.csproj" -c Release -nologo -v q -clp:ErrorsOnly >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "build failed"; }
  dotnet build "$here/LlmGateway.Bench/LlmGateway.Bench.csproj" -c Release -nologo -v q -clp:ErrorsOnly >>"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; die "build failed"; }
fi
gw_bin="$root/src/LlmGateway/bin/Release/net10.0/LlmGateway"
bench_bin="$here/LlmGateway.Bench/bin/Release/net10.0/LlmGateway.Bench"
[ -x "$gw_bin" ] && [ -x "$bench_bin" ] || die "no Release builds (run without --no-build)"
body="$here/bodies/chat.json"
lua="$here/wrk/chat.lua"

free_port mock
start_bg mock "$bench_bin" mock-upstream --port "${PORT[mock]}"
wait_http "http://127.0.0.1:${PORT[mock]}/health" "${PID[mock]}" 30 || die "the mock upstream did not start"

free_port gateway
cat >"$tmp/gateway.json" <<EOF
{
  "Gateway": {
    "Providers": {
      "openai": { "Type": "openai", "BaseUrl": "http://127.0.0.1:${PORT[mock]}/v1", "ApiKeyEnv": "BENCH_UPSTREAM_KEY", "MaxConcurrency": 4096 }
    },
    "Models": {
      "bench-model": { "Provider": "openai", "UpstreamModel": "bench-model", "Priority": 1,
                       "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 },
      "bench-stream": { "Provider": "openai", "UpstreamModel": "bench-stream@chunks=${stream_chunks},chunk_delay_ms=${stream_delay_ms}", "Priority": 1,
                       "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 }
    },
    "Budgets": { "Global": { "DailyUsd": 1000000, "MonthlyUsd": 10000000 } },
    "Cache": { "Enabled": true, "OnlyDeterministic": true }
  }
}
EOF
start_bg gateway env -u OPENAI_API_KEY ASPNETCORE_ENVIRONMENT=Production GATEWAY_CONFIG="$tmp/gateway.json" \
  BENCH_UPSTREAM_KEY=bench-dummy-upstream-key Serilog__MinimumLevel__Default="$level" ${gateway_env[@]+"${gateway_env[@]}"} \
  "$gw_bin" --urls "http://127.0.0.1:${PORT[gateway]}"
wait_http "http://127.0.0.1:${PORT[gateway]}/health/ready" "${PID[gateway]}" 60 || { tail -n 20 "$tmp/gateway.log" >&2; die "the gateway did not become ready"; }
gpid=${PID[gateway]}
url="http://127.0.0.1:${PORT[gateway]}/v1/chat/completions"
log "mock on ${PORT[mock]}, gateway (pid $gpid, logs at $level) on ${PORT[gateway]}"

clk=$(getconf CLK_TCK)
# S seconds as dd:hh:mm:ss, what the dotnet tools' --duration takes.
span() { printf '00:%02d:%02d:%02d' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }
us_per() { awk -v t="$1" -v n="$2" -v c="$clk" 'BEGIN { printf "%.1f", t * 1e6 / c / n }'; }

# While a checked load runs (wrk, or the stream probe): dotnet-counters over a window of S seconds, then
# dotnet-trace over another, each with the gateway's CPU ticks and the mock's call count around it. Sets
# calls_counters, ticks_counters, counters_s, calls_trace, ticks_trace and load_trace.
collect_tool_windows() {
  local s=$1 c0 t0 s0
  c0=$(chat_calls); t0=$(cpu_ticks "$gpid"); s0=$(date +%s%N)
  "$tools/dotnet-counters" collect -p "$gpid" --counters System.Runtime --refresh-interval 1 --format csv \
    -o "$tmp/counters.csv" --duration "$(span "$s")" >"$tmp/counters.log" 2>&1 || log "dotnet-counters failed: $(tail -n 1 "$tmp/counters.log")"
  calls_counters=$(($(chat_calls) - c0)); ticks_counters=$(($(cpu_ticks "$gpid") - t0)); counters_s=$(awk -v a="$s0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  sleep 1
  c0=$(chat_calls); t0=$(cpu_ticks "$gpid")
  "$tools/dotnet-trace" collect -p "$gpid" --profile dotnet-sampled-thread-time --duration "$(span "$s")" \
    -o "$tmp/trace.nettrace" >"$tmp/trace.log" 2>&1 || { cat "$tmp/trace.log" >&2; die "dotnet-trace failed"; }
  calls_trace=$(($(chat_calls) - c0)); ticks_trace=$(($(cpu_ticks "$gpid") - t0))
  load_trace=$(cut -d' ' -f1 /proc/loadavg)
}

# The trace as speedscope JSON, what profile-report reads.
convert_trace() {
  log "converting the trace ..."
  "$tools/dotnet-trace" convert "$tmp/trace.nettrace" --format Speedscope -o "$tmp/trace" >"$tmp/convert.log" 2>&1 || { cat "$tmp/convert.log" >&2; die "dotnet-trace convert failed"; }
}

# The counters (csv: timestamp, provider, name, type, value; rates per 1 s refresh): allocation per request (or
# stream) is the mean allocation rate over the requests per second of the same window; GCs summed per
# refresh over the generations; the others mean rates. Sets rate, alloc_per, gcs_per_s, gc_pause_pct,
# contentions, jitted and workitems ("?" where the counter was missing).
counter_mean() { awk -F, -v m="$1" -v f="$2" -v x="${3:-1}" '$3 ~ m { s += $5; k++ } END { if (k > 0) printf f, s / k * x; else print "?" }' "$tmp/counters.csv" 2>/dev/null || echo "?"; }
summarise_counters() {
  rate=$(awk -v n="$calls_counters" -v s="$counters_s" 'BEGIN { if (s > 0) printf "%.3f", n / s; else print 0 }')
  alloc_per=$(awk -F, -v r="$rate" '$3 ~ /^dotnet\.gc\.heap\.total_allocated/ { s += $5; k++ } END { if (k > 0 && r > 0) printf "%.0f", s / k / r; else print "?" }' "$tmp/counters.csv" 2>/dev/null || echo "?")
  gcs_per_s=$(awk -F, '$3 ~ /^dotnet\.gc\.collections/ { s += $5; t[$1] = 1 } END { k = length(t); if (k > 0) printf "%.1f", s / k; else print "?" }' "$tmp/counters.csv" 2>/dev/null || echo "?")
  gc_pause_pct=$(counter_mean '^dotnet\.gc\.pause\.time' '%.2f' 100)
  contentions=$(counter_mean '^dotnet\.monitor\.lock_contentions' '%.0f')
  jitted=$(counter_mean '^dotnet\.jit\.compiled_methods' '%.1f')
  workitems=$(counter_mean '^dotnet\.thread_pool\.work_item\.count' '%.0f')
}

[ "$stream" = 1 ] && { . "$here/lib/profile-streams.sh"; exit 0; }

# One wrk run of S seconds with every answer checked; prints the BENCH_JSON line. Fails the script on a
# wrong answer: a profile of something other than the miss path is worth nothing.
load() {
  local s=$1 out json mismatched
  out=$(BENCH_BODY="$body" BENCH_EXPECT_CACHE=bypass BENCH_EXPECT_PROVIDER=openai \
    wrk -t2 -c"$conns" -d"${s}s" --timeout 10s --latency -s "$lua" "$url" 2>&1) || die "wrk failed: $(tail -n 1 <<<"$out")"
  json=$(sed -n 's/^BENCH_JSON //p' <<<"$out")
  [ -n "$json" ] || die "wrk printed no result"
  mismatched=$(sed -n 's/.*"mismatched":\([0-9]*\).*/\1/p' <<<"$json")
  [ "$mismatched" = 0 ] || die "answers were not x-gateway-cache: bypass from openai: $(sed -n 's/.*"first_mismatch":"\([^"]*\)".*/\1/p' <<<"$json")"
  # The log at Information writes about 1 kB per request: keep the temp dir small.
  : >"$tmp/gateway.log"
  echo "$json"
}

# CPU per request over a window of the running load: /proc ticks of the gateway over the mock's call count.
window() {
  local s=$1 t0 c0 t1 c1 x0 x1
  x0=$(ctx_switches "$gpid"); t0=$(cpu_ticks "$gpid"); c0=$(chat_calls)
  sleep "$s"
  x1=$(ctx_switches "$gpid"); t1=$(cpu_ticks "$gpid"); c1=$(chat_calls)
  local calls=$((c1 - c0)) ticks=$((t1 - t0))
  [ "$calls" -gt 0 ] || die "no requests in the window"
  echo "$calls $ticks $((x1 - x0))"
}

# The perf window as markdown: the gateway's CPU by where the code lives (the kernel on its behalf, JIT-compiled
# .NET code, the runtime, other native libraries), then the hottest symbols. perf's software clock samples every
# thread, so unlike EventPipe it sees the kernel's share: system calls, the loopback TCP stack and wake-ups.
perf_section() {
  local dso syms
  dso=$(perf report -i "$tmp/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | awk '/^ +[0-9.]+%/ { p = $1; sub("%", "", p); $1 = ""; sub(/^ +/, ""); print p "\t" $0 }')
  syms=$(perf report -i "$tmp/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | awk '/^ +[0-9.]+%/ { p = $1; $1 = ""; sub(/^ +/, ""); if (++k <= 25) print p "\t" $0 }')
  echo
  echo "### perf: kernel and user time ($(us_per "$ticks_perf" "$calls_perf") µs per request in this window, $calls_perf requests in $seconds s)"
  echo
  echo "| where the code lives | share of samples | ≈ µs/request |"
  echo "| --- | ---: | ---: |"
  awk -F'\t' -v us="$(us_per "$ticks_perf" "$calls_perf")" '
    { k = $2 ~ /kernel/ ? "the kernel (system calls, loopback TCP, scheduling)" : $2 ~ /^\[JIT\]/ ? "JIT-compiled .NET code (the gateway, ASP.NET Core, the BCL)" : $2 ~ /libcoreclr|libclrjit|System\.Private\.CoreLib|\.dll$/ ? "the .NET runtime (GC, allocation, stubs, the JIT) and ready-to-run code" : "other native code (libc, System.Native, vdso)"; s[k] += $1 }
    END { for (k in s) printf "| %s | %.1f %% | %.1f |\n", k, s[k], s[k] * us / 100 }' <<<"$dso" | sort -t'|' -k3 -rn
  echo
  echo "The kernel's share by what it was doing (each sample by its call chain):"
  echo
  echo "| in the kernel | share of samples | ≈ µs/request |"
  echo "| --- | ---: | ---: |"
  perf script -i "$tmp/perf.data" 2>/dev/null | awk -v us="$(us_per "$ticks_perf" "$calls_perf")" '
    BEGIN { RS = ""; FS = "\n" }
    { n++ }
    $2 ~ /kernel\.kallsyms/ {
      if ($0 ~ /sock_def_readable/) k = "a send, waking the process at the other end of the loopback connection (wrk or the mock)"
      else if ($2 ~ /finish_task_switch|__schedule/) k = "a gateway thread switched back in (after sleeping in epoll_wait, or preempted by a woken peer)"
      else if ($0 ~ /sys_sendto|__send/) k = "a send: the TCP stack, both ends of the loopback connection"
      else if ($0 ~ /recvfrom|__libc_recv/) k = "a receive"
      else if ($0 ~ /epoll_wait/) k = "epoll_wait"
      else if ($0 ~ /page_fault/) k = "page faults (fresh memory)"
      else k = "other (futex, sched_yield, file writes of the log, interrupts)"
      c[k]++
    }
    END { for (k in c) printf "| %s | %.1f %% | %.1f |\n", k, c[k] * 100 / n, c[k] * us / n }' | sort -t'|' -k3 -rn
  echo
  echo "Hottest symbols (self time):"
  echo
  echo "| symbol | share |"
  echo "| --- | ---: |"
  awk -F'\t' '{ n = $2; gsub(/\|/, "\\|", n); if (length(n) > 150) n = substr(n, 1, 147) "..."; printf "| `%s` | %s |\n", n, $1 }' <<<"$syms"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: ${warmup} s at $conns connections (load average $load_start)"
load "$warmup" >/dev/null

# Three windows under one continuous load, each after 2 s of it: untraced, counters, traced.
windows=3; [ "$use_perf" = 1 ] && windows=4
total=$((windows * (seconds + 3) + 6))
log "load: ${total} s at $conns connections; windows of ${seconds} s: untraced, dotnet-counters, dotnet-trace"
calls_start=$(chat_calls)
load "$total" >"$tmp/wrk.json" &
wrk_pid=$!
ALIVE[$wrk_pid]=1
sleep 2
read -r calls_plain ticks_plain csw_plain < <(window "$seconds")
[ -n "${ticks_plain:-}" ] || die "the untraced window measured nothing"
load_plain=$(cut -d' ' -f1 /proc/loadavg)
sleep 1
collect_tool_windows "$seconds"
if [ "$use_perf" = 1 ]; then
  sleep 1
  c0=$(chat_calls); t0=$(cpu_ticks "$gpid")
  perf record -e cpu-clock -F 999 -g -p "$gpid" -o "$tmp/perf.data" -- sleep "$seconds" >"$tmp/perf.log" 2>&1 || { cat "$tmp/perf.log" >&2; die "perf record failed"; }
  calls_perf=$(($(chat_calls) - c0)); ticks_perf=$(($(cpu_ticks "$gpid") - t0))
fi
wait "$wrk_pid" || die "the load failed: $(cat "$tmp/wrk.json")"
unset "ALIVE[$wrk_pid]"
wrk_json=$(cat "$tmp/wrk.json")
rps=$(sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' <<<"$wrk_json")
checked=$(sed -n 's/.*"checked":\([0-9]*\).*/\1/p' <<<"$wrk_json")
requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$wrk_json")
sleep 0.2
calls_load=$(($(chat_calls) - calls_start))
# One upstream call per answer (a few more: requests in flight when wrk stopped), or this was not the miss path.
[ "$calls_load" -ge "$requests" ] && [ "$calls_load" -le $((requests + conns + 2)) ] ||
  die "$calls_load upstream calls for $requests answers: not one upstream call per answer"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

convert_trace
summarise_counters

cpu_plain=$(us_per "$ticks_plain" "$calls_plain")
cpu_counters=$(us_per "$ticks_counters" "$calls_counters")
cpu_trace=$(us_per "$ticks_trace" "$calls_trace")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""; [ -n "$(git -C "$root" status --porcelain -- src 2>/dev/null)" ] && dirty=" (src has uncommitted changes)"
mkdir -p "$(dirname "$out")"
quick_note=""; [ "$mode" = quick ] && quick_note="QUICK RUN (windows of a few seconds): checks the script, not a measurement. "
"$bench_bin" profile-report --speedscope "$tmp/trace.speedscope.json" --cpu-us-per-request "$cpu_trace" --requests "$calls_trace" --out "$out" \
  --title "Miss path, $label: commit $commit$dirty, $(date -u '+%Y-%m-%d %H:%M UTC')" \
  --note "${quick_note}Written by \`./bench/profile.sh${args_text:+ $args_text}\`. Load average $load_start at the start, $load_plain after the untraced window, $load_trace after the traced one, $load_end at the end (nproc $(nproc)). Before the start, near 0 is a quiet machine; during the windows the profile's own wrk, mock and gateway make 3 to 6." \
  --note "Load: wrk -t2 -c$conns, POST /v1/chat/completions with bench/bodies/chat.json (temperature 0.2); ${checked:-0} answers checked, every one \`x-gateway-cache: bypass\` from provider openai, and the mock counted $calls_load calls for $requests answers; $rps req/s over the whole load. The gateway: embedded store, budgets, ledger and metrics on, Serilog at $level." \
  --note "CPU per request (gateway process, /proc utime+stime over the mock's call count): **$cpu_plain µs untraced** ($calls_plain requests in ${seconds} s, $(awk -v x="$csw_plain" -v n="$calls_plain" 'BEGIN { printf "%.2f", x / n }') context switches of the gateway's threads per request); $cpu_counters µs with dotnet-counters attached; $cpu_trace µs while traced (the sampler suspends every thread about 100 times a second, which costs CPU of its own)." \
  --note "dotnet-counters (System.Runtime, ${seconds} s at $rate req/s): about ${alloc_per} bytes allocated per request; $gcs_per_s GCs/s; ${gc_pause_pct} % of the time in GC pauses; $contentions lock contentions/s; $jitted methods JIT-compiled/s (near 0: warmed up)." >&2
[ "$use_perf" = 1 ] && perf_section >>"$out"
log "wrote $out"
cat "$out"
