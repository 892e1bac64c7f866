#!/usr/bin/env bash
# A/B of two gateway builds (or one build with two environments) on the bench's miss path, both up at once
# against one zero-latency mock, wrk rounds alternating A, B, A, B at each connection count, every answer
# checked (x-gateway-cache: bypass from provider openai). Prints per round: the gateway's CPU µs per request
# (/proc utime+stime over the mock's call count), req/s, context switches of its threads per request, p50, p99.
# Alternating rounds of the same minutes is what makes two builds comparable on a shared, noisy machine.
#
#   bench/ab.sh ROOT_A ROOT_B "ENV_A" "ENV_B" ["CONNS"] [ROUNDS] [SECONDS]
#   e.g. git worktree add /tmp/base 3efca93 && (cd /tmp/base && dotnet build src/LlmGateway -c Release)
#        bench/ab.sh . /tmp/base "" "" "16 1" 4 4
#
# Each ROOT needs a Release build of src/LlmGateway; ROOT_A also of bench/LlmGateway.Bench (the mock).
set -euo pipefail
# Checked first: without them the first round fails inside a redirect and the script exits with nothing said.
for tool in wrk curl; do command -v "$tool" >/dev/null || { echo "ab.sh needs $tool (apt-get install $tool)" >&2; exit 2; }; done
rootA=$(cd "$1" && pwd); rootB=$(cd "$2" && pwd); envA=$3; envB=$4; conns=${5:-16}; rounds=${6:-6}; secs=${7:-4}
here=$rootA/bench
tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmgw-ab.XXXXXX"); keep=0
declare -A PID=() PORT=() ALIVE=() PIDS_OF=()
log() { :; }
. "$here/lib/processes.sh"; install_cleanup
bench_bin="$here/LlmGateway.Bench/bin/Release/net10.0/LlmGateway.Bench"
free_port mock; start_bg mock "$bench_bin" mock-upstream --port "${PORT[mock]}"
for i in $(seq 50); do curl -sf http://127.0.0.1:${PORT[mock]}/health >/dev/null && break; sleep 0.2; done
cat >"$tmp/gateway.json" <<J
{ "Gateway": { "Providers": { "openai": { "Type": "openai", "BaseUrl": "http://127.0.0.1:${PORT[mock]}/v1", "ApiKeyEnv": "BENCH_UPSTREAM_KEY", "MaxConcurrency": 4096 } },
 "Models": { "bench-model": { "Provider": "openai", "UpstreamModel": "bench-model", "Priority": 1, "CostPer1kInput": 0.00015, "CostPer1kOutput": 0.0006, "ContextWindow": 128000, "MaxOutputTokens": 4096 } },
 "Budgets": { "Global": { "DailyUsd": 1000000, "MonthlyUsd": 10000000 } }, "Cache": { "Enabled": true, "OnlyDeterministic": true } } }
J
for g in A B; do
  if [ $g = A ]; then r=$rootA; e=$envA; else r=$rootB; e=$envB; fi
  free_port $g
  start_bg $g env -u OPENAI_API_KEY -u DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS ASPNETCORE_ENVIRONMENT=Production GATEWAY_CONFIG="$tmp/gateway.json" BENCH_UPSTREAM_KEY=x $e "$r/src/LlmGateway/bin/Release/net10.0/LlmGateway" --urls "http://127.0.0.1:${PORT[$g]}"
  for i in $(seq 100); do curl -sf http://127.0.0.1:${PORT[$g]}/health/ready >/dev/null && break; sleep 0.2; done
done
clk=$(getconf CLK_TCK)
run() { BENCH_BODY="$here/bodies/chat.json" BENCH_EXPECT_CACHE=bypass BENCH_EXPECT_PROVIDER=openai wrk -t$(( $2 < 2 ? 1 : 2 )) -c$2 -d${3}s --latency -s "$here/wrk/chat.lua" "http://127.0.0.1:${PORT[$1]}/v1/chat/completions" > $tmp/wrk.out 2>&1; grep -o '"mismatched":[0-9]*' $tmp/wrk.out | grep -q ':0$' || { cat $tmp/wrk.out; exit 1; }; : > $tmp/$1.log; }
run A 16 8; run B 16 8
for c in $conns; do run A $c 2; run B $c 2; for r in $(seq $rounds); do for g in A B; do
  gp=${PID[$g]}
  x0=$(ctx_switches $gp); t0=$(cpu_ticks $gp); n0=$(chat_calls)
  run $g $c $secs
  x1=$(ctx_switches $gp); t1=$(cpu_ticks $gp); n1=$(chat_calls)
  p50=$(grep -A4 "Latency Distribution" $tmp/wrk.out | awk '/50%/{print $2}'); p99=$(grep -A4 "Latency Distribution" $tmp/wrk.out | awk '/99%/{print $2}')
  awk -v g=$g -v t=$((t1-t0)) -v n=$((n1-n0)) -v c=$clk -v x=$((x1-x0)) -v s=$secs -v a="$p50" -v b="$p99" 'BEGIN{printf "%s c='$c' %.1f us/req %.0f req/s %.2f csw/req p50 %s p99 %s\n", g, t*1e6/c/n, n/s, x/n, a, b}'
done; done; done
