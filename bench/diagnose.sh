#!/usr/bin/env bash
# Where a miss's cost goes, from outside the process: one gateway (the Release build, Production, the embedded
# store, logs at Information) on a zero-latency mock, every answer checked as a miss (x-gateway-cache: bypass from
# provider openai), and one view of it over a window of wrk load. The numbers in bench/PROFILE.md's third round
# come from these.
#
#   bench/diagnose.sh threads   [--conns C] [--warmup S] [--seconds S]  CPU and context switches per request, by thread name
#   bench/diagnose.sh syscalls  [--conns C] [--warmup S] [--seconds S]  system calls per request (strace -c)
#   bench/diagnose.sh idle      [--settle S] [--seconds S]              wake-ups per second by thread of a gateway left idle after traffic
#   bench/diagnose.sh perf      [--conns C] [--warmup S] [--seconds S]  perf (software clock, call graphs): the kernel's share, the rest by step
#
# Extra environment for the gateway in GATEWAY_ENV (e.g. GATEWAY_ENV="DOTNET_GCgen0size=0x10000000").
# Needs Release builds of src/LlmGateway and bench/LlmGateway.Bench; wrk, curl, strace (syscalls), perf (perf).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
mode=${1:-}; shift || true
conns=16 warmup=6 seconds=6 settle=5
# perf: long enough a warm-up that the JIT has finished tiering the path up (at 6 s it still takes a fifth)
[ "$mode" = perf ] && warmup=20
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --settle) settle=$2; shift ;;
    *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
case "$mode" in threads | syscalls | idle | perf) ;; *) sed -n '2,13p' "$0" >&2; exit 2 ;; esac
# perf needs the JIT's symbols (a perf map) and code pages it can read.
[ "$mode" = perf ] && GATEWAY_ENV="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 ${GATEWAY_ENV:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-diagnose.XXXXXX"); keep=0
declare -A PID=() PORT=() ALIVE=() PIDS_OF=()
log() { :; }
. "$here/lib/processes.sh"; install_cleanup
gw_bin="$root/src/LlmGateway/bin/Release/net10.0/LlmGateway"; bench_bin="$here/LlmGateway.Bench/bin/Release/net10.0/LlmGateway.Bench"
[ -x "$gw_bin" ] && [ -x "$bench_bin" ] || { echo "build first: dotnet build src/LlmGateway -c Release && dotnet build bench/LlmGateway.Bench -c Release" >&2; exit 2; }

free_port mock; start_bg mock "$bench_bin" mock-upstream --port "${PORT[mock]}"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:${PORT[mock]}/health" >/dev/null && break; sleep 0.2; done
free_port gateway
cat >"$tmp/gateway.json" <<J
{ "Gateway": { "Providers": { "openai": { "Type": "openai", "BaseUrl": "http://127.0.0.1:${PORT[mock]}/v1", "ApiKeyEnv": "BENCH_UPSTREAM_KEY", "MaxConcurrency": 4096 } },
 "Models": { "bench-model": { "Provider": "openai", "UpstreamModel": "bench-model", "Priority": 1, "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 } },
 "Budgets": { "Global": { "DailyUsd": 1000000, "MonthlyUsd": 10000000 } }, "Cache": { "Enabled": true, "OnlyDeterministic": true } } }
J
# shellcheck disable=SC2086
start_bg gateway env -u OPENAI_API_KEY -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS ASPNETCORE_ENVIRONMENT=Production \
  GATEWAY_CONFIG="$tmp/gateway.json" BENCH_UPSTREAM_KEY=bench-dummy-upstream-key ${GATEWAY_ENV:-} "$gw_bin" --urls "http://127.0.0.1:${PORT[gateway]}"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PORT[gateway]}/health/ready" >/dev/null && break; sleep 0.2; done
gpid=${PID[gateway]}; url="http://127.0.0.1:${PORT[gateway]}/v1/chat/completions"

# wrk with every answer checked; a single answer that is not a miss from openai stops the script.
load() {
  BENCH_BODY="$here/bodies/chat.json" BENCH_EXPECT_CACHE=bypass BENCH_EXPECT_PROVIDER=openai \
    wrk -t"$(($1 < 2 ? 1 : 2))" -c"$1" -d"${2}s" --latency -s "$here/wrk/chat.lua" "$url" >"$tmp/wrk.out" 2>&1
  grep -o '"mismatched":[0-9]*' "$tmp/wrk.out" | grep -q ':0$' || { cat "$tmp/wrk.out" >&2; echo "an answer was not a miss from openai" >&2; exit 1; }
  : >"$tmp/gateway.log"
}
# Per thread name: voluntary and involuntary switches and CPU ticks (fields after the comm, which may hold spaces).
snap() {
  printf 'TOTAL\t0\t0\t%s\n' "$(sed 's/.*) //' "/proc/$gpid/stat" | awk '{print $12+$13}')"
  for t in /proc/"$gpid"/task/*; do
    printf '%s\t%s\t%s\t%s\n' "$(cat "$t/comm")" "$(awk '/^voluntary_ctxt_switches/{print $2}' "$t/status")" \
      "$(awk '/^nonvoluntary_ctxt_switches/{print $2}' "$t/status")" "$(sed 's/.*) //' "$t/stat" | awk '{print $12+$13}')"
  done | awk -F'\t' '{v[$1]+=$2; n[$1]+=$3; c[$1]+=$4} END{for (k in v) printf "%s\t%d\t%d\t%d\n", k, v[k], n[k], c[k]}' | sort
}
clk=$(getconf CLK_TCK)

case "$mode" in
  threads)
    load "$conns" "$warmup"
    snap >"$tmp/s0"; n0=$(chat_calls)
    load "$conns" "$seconds"
    snap >"$tmp/s1"; n1=$(chat_calls); n=$((n1 - n0))
    echo "$n requests at $conns connections over ${seconds} s (after ${warmup} s of warm-up); per request:"
    join -t$'\t' "$tmp/s0" "$tmp/s1" | awk -F'\t' -v n="$n" -v clk="$clk" '
      { cpu = ($7 - $4) * 1e6 / clk / n; if ($1 == "TOTAL") total = cpu; else if (cpu > 0 || $5 > $2 || $6 > $3)
          printf "  %-22s CPU %6.1f us   voluntary %.3f   involuntary %.3f\n", $1, cpu, ($5 - $2) / n, ($6 - $3) / n }
      END { printf "  %-22s CPU %6.1f us\n", "the whole process", total }'
    ;;
  syscalls)
    command -v strace >/dev/null || { echo "strace is not installed (apt-get install strace)" >&2; exit 2; }
    load "$conns" "$warmup"
    n0=$(chat_calls)
    timeout -s INT "$((seconds + 1))" strace -c -f -p "$gpid" -o "$tmp/strace.out" 2>/dev/null &
    sp=$!
    sleep 0.5
    load "$conns" "$seconds"
    wait "$sp" || true
    n=$(($(chat_calls) - n0))
    echo "$n requests at $conns connections under strace -c (strace slows the process: counts, not times):"
    # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && $NF != "total" { errors = (NF == 6) ? $5 : 0
        printf "  %-16s %7.3f per request%s\n", $NF, $4 / n, (errors > 0 ? sprintf(" (%.3f failed)", errors / n) : "") }' "$tmp/strace.out" | sort -k2 -rn | head -12
    ;;
  perf)
    command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
    load "$conns" "$warmup"
    n0=$(chat_calls)
    perf record -e cpu-clock -F 1999 -g -p "$gpid" -o "$tmp/perf.data" -- sleep "$seconds" >"$tmp/perf.log" 2>&1 &
    pp=$!
    load "$conns" "$((seconds + 1))"
    wait "$pp" || { cat "$tmp/perf.log" >&2; exit 1; }
    n=$(($(chat_calls) - n0))
    echo "$n requests at $conns connections; the gateway's CPU under perf (perf costs CPU of its own), by where it went:"
    perf script -i "$tmp/perf.data" -F comm,tid,ip,sym 2>/dev/null | awk -f "$here/lib/perf-buckets.awk"
    ;;
  idle)
    load 4 2
    sleep "$settle"
    snap >"$tmp/s0"; sleep "$seconds"; snap >"$tmp/s1"
    echo "idle for ${seconds} s, ${settle} s after a short burst of traffic:"
    join -t$'\t' "$tmp/s0" "$tmp/s1" | awk -F'\t' -v s="$seconds" '
      { w = ($5 - $2 + $6 - $3) / s; if ($1 == "TOTAL") ticks = $7 - $4; else if (w > 0 || $7 > $4) printf "  %-22s %6.1f wake-ups/s   %d clock ticks\n", $1, w, $7 - $4 }
      END { printf "  %-22s %d clock ticks of CPU\n", "the whole process", ticks }'
    ;;
esac
