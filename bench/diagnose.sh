#!/usr/bin/env bash
# Where a miss's cost goes, from outside the process: one gateway (the Release build, Production, the embedded
# store, logs at Information) on a zero-latency mock, every answer checked as a miss (x-gateway-cache: bypass from
# provider openai), and one view of it over a window of wrk load. The numbers in bench/PROFILE.md's third round
# come from these.
#
#   bench/diagnose.sh threads   [--conns C] [--warmup S] [--seconds S]  CPU and context switches per request, by thread name
#                               [--stream [--streams N] [--warmup-streams N]] [--redis] [--keys]
#   bench/diagnose.sh syscalls  [--conns C] [--warmup S] [--seconds S]  system calls per request (strace -c)
#   bench/diagnose.sh idle      [--settle S] [--seconds S]              wake-ups per second by thread of a gateway left idle after traffic
#   bench/diagnose.sh perf      [--conns C] [--warmup S] [--seconds S]  perf (software clock, call graphs): the kernel's share, the rest by step
#                               [--stream [--streams N] [--warmup-streams N]] [--redis] [--keys]
#   bench/diagnose.sh alloc     [--conns C] [--warmup S] [--seconds S]  allocated bytes per request, by type and by gateway method (dotnet-trace)
#
# --target floor runs any of these on the bench's floor instead of the gateway: the bare .NET proxy (Kestrel and one
# HttpClient, the gateway's runtime settings, none of its work; LlmGateway.Bench bare-proxy), its answers checked to
# come from the mock. What the floor costs is what the platform costs; the gateway over it is its own layers.
# GATEWAY_ENV="BENCH_FLOOR_CLIENT=minimal" with --target floor: the floor with the least an HTTP/1.1 call costs instead
# of HttpClient (bench/LlmGateway.Bench/MinimalUpstreamClient.cs); between the two is what .NET's HTTP client costs.
#
# --stream (threads and perf): the load is streams instead of wrk's non-streamed requests, as run.sh's stream rows send
# them (LlmGateway.Bench stream-probe: 20 chunks 5 ms apart, --conns streams at once, 8 unless given), and the
# numbers are per stream: --warmup-streams N (1200) before the window, --streams N (1500) in it. A stream is mostly
# waiting, so its cost is the wake-ups of each chunk and of the background threads (log writer, ledger, timers), which
# the non-streamed load amortizes over a batch and this shows. Every answer is checked like wrk's: a miss from openai
# (the floor: from the mock), 20 chunks.
#
# --redis: the gateway on a redis-server of its own (started here, nothing persisted) instead of the embedded store: budgets,
# ledger, cache and limits as many instances share them (run.sh's "gateway (Redis store)" row).
#
# --keys (not with --stream): gateway keys on (Auth:Mode=keys), the load sent with a virtual key made here through
# /admin/keys with RPM and TPM limits too high to refuse anything: each request also pays the key's lookup, its RPM and
# TPM admission and its TPM correction (on Redis with --redis), as a production gateway with per-key limits does.
#
# Extra environment for the gateway in GATEWAY_ENV (e.g. GATEWAY_ENV="DOTNET_GCgen0size=0x10000000"); another build of
# the gateway in GATEWAY_BIN (e.g. an older commit's worktree, to compare).
# Needs Release builds of src/LlmGateway and bench/LlmGateway.Bench; wrk, curl, strace (syscalls), perf (perf).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
mode=${1:-}; shift || true
conns=16 warmup=6 seconds=6 settle=5 target=gateway stream=0 streams=1500 warmup_streams=1200 conns_given=0 redis=0 keys=0
# perf: long enough a warm-up that the JIT has finished tiering the path up (at 6 s it still takes a fifth)
[ "$mode" = perf ] && warmup=20
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; conns_given=1; shift ;;
    --stream) stream=1 ;;
    --redis) redis=1 ;;
    --keys) keys=1 ;;
    --streams) streams=$2; shift ;;
    --warmup-streams) warmup_streams=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --settle) settle=$2; shift ;;
    --target) target=$2; shift ;;
    *) echo "unknown option $1 (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
case "$mode" in threads | syscalls | idle | perf | alloc) ;; *) sed -n '2,/^# Needs Release/p' "$0" >&2; exit 2 ;; esac
case "$target" in gateway | floor) ;; *) echo "--target is gateway or floor, not $target" >&2; exit 2 ;; esac
[ "$redis" = 1 ] && [ "$target" = floor ] && { echo "--redis is for the gateway (the floor has no store)" >&2; exit 2; }
[ "$keys" = 1 ] && [ "$target" = floor ] && { echo "--keys is for the gateway (the floor has no keys)" >&2; exit 2; }
[ "$keys" = 1 ] && [ "$stream" = 1 ] && { echo "--keys is for wrk's load, not --stream" >&2; exit 2; }
if [ "$stream" = 1 ]; then
  case "$mode" in threads | perf) ;; *) echo "--stream is for threads and perf, not $mode" >&2; exit 2 ;; esac
  [ "$conns_given" = 1 ] || conns=8
fi
# perf needs the JIT's symbols (a perf map) and code pages it can read.
[ "$mode" = perf ] && GATEWAY_ENV="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 ${GATEWAY_ENV:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-diagnose.XXXXXX"); keep=0
declare -A PID=() PORT=() ALIVE=() PIDS_OF=()
log() { :; }
. "$here/lib/processes.sh"; install_cleanup
gw_bin="${GATEWAY_BIN:-$root/src/LlmGateway/bin/Release/net10.0/LlmGateway}"; bench_bin="$here/LlmGateway.Bench/bin/Release/net10.0/LlmGateway.Bench"
[ -x "$gw_bin" ] && [ -x "$bench_bin" ] || { echo "build first: dotnet build src/LlmGateway -c Release && dotnet build bench/LlmGateway.Bench -c Release" >&2; exit 2; }

free_port mock; start_bg mock "$bench_bin" mock-upstream --port "${PORT[mock]}"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:${PORT[mock]}/health" >/dev/null && break; sleep 0.2; done
store_env=""
if [ "$redis" = 1 ]; then
  command -v redis-server >/dev/null || { echo "--redis needs redis-server (apt-get install redis-server)" >&2; exit 2; }
  free_port redis
  start_bg redis redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" --daemonize no
  for _ in $(seq 1 200); do [ "$(redis-cli -p "${PORT[redis]}" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
  [ "$(redis-cli -p "${PORT[redis]}" ping 2>/dev/null)" = PONG ] || { echo "redis-server did not start" >&2; exit 1; }
  store_env="ConnectionStrings__Redis=127.0.0.1:${PORT[redis]}"
fi
admin_key="diagnose-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
[ "$keys" = 1 ] && store_env="$store_env Gateway__Auth__Mode=keys GATEWAY_ADMIN_KEY=$admin_key"
free_port gateway
# run.sh's stream rows: what the mock streams for this model name (the floor passes it through as it is).
stream_chunks=20 stream_model="bench-stream@chunks=20,chunk_delay_ms=5"
cat >"$tmp/gateway.json" <<J
{ "Gateway": { "Providers": { "openai": { "Type": "openai", "BaseUrl": "http://127.0.0.1:${PORT[mock]}/v1", "ApiKeyEnv": "BENCH_UPSTREAM_KEY", "MaxConcurrency": 4096 } },
 "Models": { "bench-model": { "Provider": "openai", "UpstreamModel": "bench-model", "Priority": 1, "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 },
   "bench-stream": { "Provider": "openai", "UpstreamModel": "$stream_model", "Priority": 1, "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 } },
 "Budgets": { "Global": { "DailyUsd": 1000000, "MonthlyUsd": 10000000 } }, "Cache": { "Enabled": true, "OnlyDeterministic": true } } }
J
if [ "$target" = floor ]; then
  # The gateway's runtime settings, as bench/run.sh starts the floor (it reads them back and prints them).
  # shellcheck disable=SC2086
  start_bg gateway env -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS DOTNET_gcServer=1 DOTNET_gcConcurrent=1 DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 \
    ${GATEWAY_ENV:-} "$bench_bin" bare-proxy --port "${PORT[gateway]}" --upstream "http://127.0.0.1:${PORT[mock]}"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PORT[gateway]}/health" >/dev/null && break; sleep 0.2; done
  expect="BENCH_EXPECT_CACHE=- BENCH_EXPECT_PROVIDER=- BENCH_EXPECT_UPSTREAM=mock"
  probe_expect="--expect-cache - --expect-provider - --expect-upstream mock"
else
  # shellcheck disable=SC2086
  start_bg gateway env -u OPENAI_API_KEY -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS ASPNETCORE_ENVIRONMENT=Production \
    GATEWAY_CONFIG="$tmp/gateway.json" BENCH_UPSTREAM_KEY=bench-dummy-upstream-key $store_env ${GATEWAY_ENV:-} "$gw_bin" --urls "http://127.0.0.1:${PORT[gateway]}"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PORT[gateway]}/health/ready" >/dev/null && break; sleep 0.2; done
  expect="BENCH_EXPECT_CACHE=bypass BENCH_EXPECT_PROVIDER=openai"
  probe_expect="--expect-cache bypass --expect-provider openai"
  if [ "$keys" = 1 ]; then
    secret=$(curl -s -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
      -d '{"id":"diagnose","rpm":100000000,"tpm":1000000000}' "http://127.0.0.1:${PORT[gateway]}/admin/keys" | grep -o '"key":"[^"]*' | cut -d'"' -f4)
    [ -n "$secret" ] || { echo "could not make a gateway key through /admin/keys" >&2; exit 1; }
    # The view names the keyed path: without the key a request is refused, and with it the answer carries the key's limits.
    keyless=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$here/bodies/chat.json" "http://127.0.0.1:${PORT[gateway]}/v1/chat/completions")
    limits=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $secret" -H 'Content-Type: application/json' --data-binary @"$here/bodies/chat.json" \
      "http://127.0.0.1:${PORT[gateway]}/v1/chat/completions" | tr -d '\r' | grep -ci '^x-ratelimit-limit-\(requests\|tokens\): ' || true)
    [ "$keyless" = 401 ] && [ "$limits" = 2 ] || { echo "the load would not go through key admission (no key: $keyless, limit headers with it: $limits)" >&2; exit 1; }
    export BENCH_HEADER="Authorization: Bearer $secret"
  fi
fi
gpid=${PID[gateway]}; url="http://127.0.0.1:${PORT[gateway]}/v1/chat/completions"

# wrk with every answer checked; a single answer that is not a miss from openai (the floor: not from the mock)
# stops the script.
load() {
  # shellcheck disable=SC2086
  env BENCH_BODY="$here/bodies/chat.json" $expect \
    wrk -t"$(($1 < 2 ? 1 : 2))" -c"$1" -d"${2}s" --latency -s "$here/wrk/chat.lua" "$url" >"$tmp/wrk.out" 2>&1
  grep -o '"mismatched":[0-9]*' "$tmp/wrk.out" | grep -q ':0$' || { cat "$tmp/wrk.out" >&2; echo "an answer was not what the $target answers (see above)" >&2; exit 1; }
  : >"$tmp/gateway.log"
}
# --stream's load: N streams through the stream probe, every answer checked (complete, 20 chunks, the headers above).
probe() {
  local model=bench-stream; [ "$target" = floor ] && model=$stream_model
  # shellcheck disable=SC2086
  "$bench_bin" stream-probe --url "$url" --n "$1" --concurrency "$conns" --body "$here/bodies/chat.json" --model "$model" \
    --warmup 0 --expect-chunks "$stream_chunks" $probe_expect >"$tmp/probe.out" 2>"$tmp/probe.err" \
    && grep -q '"failed":0,"incomplete":0' "$tmp/probe.out" && grep -q '"mismatched":0' "$tmp/probe.out" \
    || { cat "$tmp/probe.err" "$tmp/probe.out" >&2; echo "a stream was not what the $target answers (see above)" >&2; exit 1; }
  : >"$tmp/gateway.log"
}
# The warm-up and the measured window of the load, in seconds of wrk or in streams.
if [ "$stream" = 1 ]; then
  unit=stream what="at $conns at once (after $warmup_streams streams of warm-up)"
  warm() { probe "$warmup_streams"; }
  window() { probe "$streams"; }
else
  unit=request what="at $conns connections over ${seconds} s (after ${warmup} s of warm-up)"
  [ "$keys" = 1 ] && what="$what, each with a gateway key (RPM and TPM limits)"
  warm() { load "$conns" "$warmup"; }
  window() { load "$conns" "$seconds"; }
fi
# Per thread name: voluntary and involuntary switches and CPU ticks (fields after the comm, which may hold spaces).
snap() {
  printf 'TOTAL\t0\t0\t%s\n' "$(sed 's/.*) //' "/proc/$gpid/stat" | awk '{print $12+$13}')"
  # The kernel's part of it (stime), and the minor page faults in the count columns.
  printf 'KERNEL\t0\t%s\t%s\n' "$(sed 's/.*) //' "/proc/$gpid/stat" | awk '{print $8}')" "$(sed 's/.*) //' "/proc/$gpid/stat" | awk '{print $13}')"
  for t in /proc/"$gpid"/task/*; do
    printf '%s\t%s\t%s\t%s\n' "$(cat "$t/comm")" "$(awk '/^voluntary_ctxt_switches/{print $2}' "$t/status")" \
      "$(awk '/^nonvoluntary_ctxt_switches/{print $2}' "$t/status")" "$(sed 's/.*) //' "$t/stat" | awk '{print $12+$13}')"
  done | awk -F'\t' '{v[$1]+=$2; n[$1]+=$3; c[$1]+=$4} END{for (k in v) printf "%s\t%d\t%d\t%d\n", k, v[k], n[k], c[k]}' | sort
}
clk=$(getconf CLK_TCK)

case "$mode" in
  threads)
    warm
    snap >"$tmp/s0"; n0=$(chat_calls)
    window
    snap >"$tmp/s1"; n1=$(chat_calls); n=$((n1 - n0))
    echo "$n ${unit}s $what; per $unit:"
    join -t$'\t' "$tmp/s0" "$tmp/s1" | awk -F'\t' -v n="$n" -v clk="$clk" '
      { cpu = ($7 - $4) * 1e6 / clk / n; if ($1 == "TOTAL") total = cpu; else if ($1 == "KERNEL") { kernel = cpu; faults = ($6 - $3) / n }
        else if (cpu > 0 || $5 > $2 || $6 > $3)
          printf "  %-22s CPU %6.1f us   voluntary %.3f   involuntary %.3f\n", $1, cpu, ($5 - $2) / n, ($6 - $3) / n }
      END { printf "  %-22s CPU %6.1f us, of which in the kernel %.1f us; %.3f minor page faults\n", "the whole process", total, kernel, faults }'
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
    warm
    n0=$(chat_calls)
    hz=1999
    if [ "$stream" = 1 ]; then
      # A count of streams, not a time: perf records until the probe is done, then stops at the interrupt.
      perf record -e cpu-clock -F "$hz" -g -p "$gpid" -o "$tmp/perf.data" -- sleep 3600 >"$tmp/perf.log" 2>&1 &
      pp=$!
      sleep 0.5
      window
      kill -INT "$pp"; wait "$pp" || true
      [ -s "$tmp/perf.data" ] || { cat "$tmp/perf.log" >&2; exit 1; }
    else
      perf record -e cpu-clock -F "$hz" -g -p "$gpid" -o "$tmp/perf.data" -- sleep "$seconds" >"$tmp/perf.log" 2>&1 &
      pp=$!
      load "$conns" "$((seconds + 1))"
      wait "$pp" || { cat "$tmp/perf.log" >&2; exit 1; }
    fi
    n=$(($(chat_calls) - n0))
    echo "$n ${unit}s $what; the $target's CPU under perf (perf costs CPU of its own), by where it went:"
    perf script -i "$tmp/perf.data" -F comm,tid,ip,sym 2>/dev/null | awk -v requests="$n" -v hz="$hz" -v unit="$unit" -f "$here/lib/perf-buckets.awk"
    ;;
  alloc)
    # dotnet-trace, pinned as bench/profile.sh pins it, into bench/.tools on first use.
    tools="$here/.tools"
    [ -x "$tools/dotnet-trace" ] || dotnet tool install --tool-path "$tools" dotnet-trace --version 10.0.750501 >/dev/null
    [ "$seconds" -lt 60 ] || { echo "alloc: --seconds below 60" >&2; exit 2; }
    load "$conns" "$warmup"
    load "$conns" "$((seconds + 4))" &
    lp=$!
    sleep 1
    # The runtime's GC keyword (0x1) at verbose level: GCAllocationTick, one event about every 100 KB allocated,
    # with its type and stack. The requests are counted around the session, so bytes per request are an estimate.
    n0=$(chat_calls)
    "$tools/dotnet-trace" collect -p "$gpid" --providers "Microsoft-Windows-DotNETRuntime:0x1:5" \
      --duration "00:00:00:$(printf %02d "$seconds")" -o "$tmp/alloc.nettrace" >"$tmp/trace.log" 2>&1 || { cat "$tmp/trace.log" >&2; exit 1; }
    n=$(($(chat_calls) - n0))
    wait "$lp"
    echo "$n requests at $conns connections while traced (${seconds} s, after ${warmup} s of warm-up):"
    "$bench_bin" alloc-report --trace "$tmp/alloc.nettrace" --requests "$n"
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
