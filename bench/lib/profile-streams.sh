# The --stream mode of bench/profile.sh (sourced by it once the mock and the gateway are up; not run alone).
# Streams instead of wrk's answers: stream-probe drives chat streams, C at a time, through the gateway, the
# mock paced as bench/run.sh's stream phase. Every stream must be complete (all its content chunks and
# [DONE]), say x-gateway-cache: bypass and come from provider openai, and cost one upstream call, or the
# script stops: a profile of something other than the streamed miss path is worth nothing.
#   1. untraced rounds: a probe straight to the mock, then one through the gateway; the gateway's
#      utime + stime over the gateway probe's streams is the CPU per stream, and the gateway probe's time
#      to first token minus the direct one's is the added time to first token (each round on its own);
#   2. dotnet-counters and 3. dotnet-trace, each over a window of a background probe through the gateway.
# Uses from profile.sh: here, tmp, tools, bench_bin, body, gpid, PORT, ALIVE, seconds, warmup, mode, label,
# out, args_text, level, streams, rounds, stream_c, stream_chunks, stream_delay_ms, log, die, cpu_ticks, chat_calls, us_per, collect_tool_windows, convert_trace, summarise_counters.

s_field() { sed -n "s/.*\"$1\":\([-0-9.]*\).*/\1/p" <<<"$2" | head -n 1; }
s_p50() { sed -n "s/.*\"$1\":{\"p50\":\([-0-9.]*\).*/\1/p" <<<"$2"; }
s_p99() { sed -n "s/.*\"$1\":{\"p50\":[-0-9.]*,\"p90\":[-0-9.]*,\"p99\":\([-0-9.]*\).*/\1/p" <<<"$2"; }
# Voluntary context switches of every thread of PID so far: each is a thread that went to sleep (a parked
# worker, the epoll thread waiting) and so a later wake-up; per stream, what a stream costs in wake-ups.
# Involuntary ones (preemption) are left out: they follow the machine's load, not the gateway.
s_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'; }
s_median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

gateway_url="http://127.0.0.1:${PORT[gateway]}/v1/chat/completions"
direct_url="http://127.0.0.1:${PORT[mock]}/v1/chat/completions"
direct_model="bench-stream@chunks=${stream_chunks},chunk_delay_ms=${stream_delay_ms}"

# probe gateway|direct N: one stream-probe of N streams; prints its JSON line; stops the script unless every
# stream is complete and its headers say what the target claims.
probe() {
  local target=$1 n=$2 json url model expect
  if [ "$target" = gateway ]; then url=$gateway_url model=bench-stream expect=(--expect-cache bypass --expect-provider openai)
  else url=$direct_url model=$direct_model expect=(--expect-cache - --expect-provider - --expect-upstream mock); fi
  json=$("$bench_bin" stream-probe --url "$url" --n "$n" --concurrency "$stream_c" --body "$body" --model "$model" \
    --expect-chunks "$stream_chunks" "${expect[@]}" 2>"$tmp/probe.err") || die "stream-probe against $target failed: $(tail -n 1 "$tmp/probe.err") $json"
  [ "$(s_field ok "$json")" = "$n" ] && [ "$(s_field incomplete "$json")" = 0 ] && [ "$(s_field mismatched "$json")" = 0 ] ||
    die "not every stream through $target was complete and what it claims: $json"
  # The log at Information writes a line per stream: keep the temp dir small (the last probe's lines stay
  # in gateway-last.log, for --keep: each says the stream's TtftMs and OverheadMs as the gateway saw them).
  tail -n 400 "$tmp/gateway.log" >"$tmp/gateway-last.log"
  : >"$tmp/gateway.log"
  echo "$json"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
warm=$((warmup * 40)); [ "$warm" -ge 40 ] || warm=40
log "warm-up: $warm streams through the gateway, 20 direct (load average $load_start)"
probe gateway "$warm" >/dev/null
probe direct 20 >/dev/null

# --- 1. Untraced rounds --------------------------------------------------------------------------------------
round_lines=() cpus="" added50="" added99="" gw50="" dir50=""
for r in $(seq 1 "$rounds"); do
  l0=$(cut -d' ' -f1 /proc/loadavg)
  m0=$(cpu_ticks "${PID[mock]}")
  direct_json=$(probe direct "$streams")
  mock_cpu=$(us_per $(($(cpu_ticks "${PID[mock]}") - m0)) "$streams")
  c0=$(chat_calls); t0=$(cpu_ticks "$gpid"); x0=$(s_switches "$gpid")
  gw_json=$(probe gateway "$streams")
  t1=$(cpu_ticks "$gpid"); c1=$(chat_calls); x1=$(s_switches "$gpid")
  l1=$(cut -d' ' -f1 /proc/loadavg)
  [ $((c1 - c0)) = "$streams" ] || die "$((c1 - c0)) upstream calls for $streams streams: not one upstream call per stream"
  cpu=$(us_per $((t1 - t0)) "$streams")
  sw=$(awk -v x="$((x1 - x0))" -v n="$streams" 'BEGIN { printf "%.1f", x / n }')
  d50=$(s_p50 ttft_ms "$direct_json"); g50=$(s_p50 ttft_ms "$gw_json"); d99=$(s_p99 ttft_ms "$direct_json"); g99=$(s_p99 ttft_ms "$gw_json")
  a50=$(awk -v g="$g50" -v d="$d50" 'BEGIN { printf "%.3f", g - d }'); a99=$(awk -v g="$g99" -v d="$d99" 'BEGIN { printf "%.3f", g - d }')
  cpus+=" $cpu"; added50+=" $a50"; added99+=" $a99"; gw50+=" $g50"; dir50+=" $d50"
  line="| $r | $streams | $cpu | $sw | $mock_cpu | $d50 / $d99 | $g50 / $g99 | $a50 / $a99 | $(s_p50 gap_ms "$gw_json") | $(s_field coalesced_pct "$gw_json") % | $l0 → $l1 |"
  round_lines+=("$line")
  log "round $r: $cpu µs/stream, $sw sleeps/stream, first token direct $d50 ms, gateway $g50 ms (added $a50 ms), load $l0 → $l1"
done
cpu_median=$(s_median <<<"$cpus"); added_median=$(s_median <<<"$added50"); added99_median=$(s_median <<<"$added99")

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""; [ -n "$(git -C "$root" status --porcelain -- src 2>/dev/null)" ] && dirty=" (src has uncommitted changes)"
env_note=""; [ ${#gateway_env[@]} -gt 0 ] && env_note=" The gateway ran with ${gateway_env[*]}."
quick_note=""; [ "$mode" = quick ] && quick_note="QUICK RUN (a few streams): checks the script, not a measurement. "
table="Untraced rounds (CPU: the gateway's utime + stime from /proc over the gateway probe's streams; sleeps: the gateway's voluntary context switches per stream, i.e. wake-ups; the mock's CPU over the direct probe's streams: what the simplest Kestrel app costs per stream on the same machine, for scale; first token: stream-probe's, p50 / p99 ms; added: gateway minus direct in the same round; load: 1-minute load average before → after the round):<br><br>| round | streams | CPU µs/stream | sleeps/stream | the mock's CPU µs/stream, direct | first token direct | first token gateway | added first token | inter-chunk p50 ms | coalesced | load |<br>| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for line in "${round_lines[@]}"; do table+="<br>$line"; done
summary="**CPU per stream, untraced: median $cpu_median µs** over $rounds round(s) of $streams streams ($(echo $cpus | sed 's/ / µs, /g') µs); **added time to first token p50: median $added_median ms** (p99 $added99_median ms); first token p50 through the gateway $(echo $gw50 | sed 's/ /, /g') ms, direct $(echo $dir50 | sed 's/ /, /g') ms."
streams_note="Streams: stream-probe, $stream_c at a time, POST /v1/chat/completions with bench/bodies/chat.json, stream on, model bench-stream (the mock sends the first content chunk at once, then $stream_chunks in all with a ${stream_delay_ms} ms timer before each); every stream complete ($stream_chunks content chunks and [DONE]), \`x-gateway-cache: bypass\` from provider openai, one upstream call each. The gateway: embedded store, budgets, ledger and metrics on, Serilog at $level.$env_note"
mkdir -p "$(dirname "$out")"

if [ "$untraced_only" = 1 ]; then
  {
    echo "## Streams, $label: commit $commit$dirty, $(date -u '+%Y-%m-%d %H:%M UTC'), untraced only"
    echo
    echo "- ${quick_note}Written by \`./bench/profile.sh${args_text:+ $args_text}\`. Load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (nproc $(nproc))."
    echo "- $streams_note"
    echo "- $summary"
    echo "- $table"
    echo
  } | sed 's/<br>/\n/g' >"$out"
  log "wrote $out"
  cat "$out"
  return 0
fi

# --- 2. and 3.: a background probe through the gateway, counters then the trace over windows of it ----------------
bg_n=$(((2 * seconds + 12) * 50))
log "background probe of $bg_n streams; windows of ${seconds} s: dotnet-counters, dotnet-trace"
probe gateway "$bg_n" >"$tmp/bg.json" &
bg_pid=$!
ALIVE[$bg_pid]=1
sleep 2
collect_tool_windows "$seconds"
wait "$bg_pid" || die "the background probe failed: $(cat "$tmp/bg.json")"
unset "ALIVE[$bg_pid]"
[ "$calls_counters" -gt 0 ] && [ "$calls_trace" -gt 0 ] || die "no streams in a window (the background probe ended too soon)"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

convert_trace
summarise_counters
items_per=$(awk -v w="$workitems" -v r="$rate" 'BEGIN { if (w != "?" && r > 0) printf "%.0f", w / r; else print "?" }')
cpu_counters=$(us_per "$ticks_counters" "$calls_counters")
cpu_trace=$(us_per "$ticks_trace" "$calls_trace")

"$bench_bin" profile-report --unit stream --speedscope "$tmp/trace.speedscope.json" --cpu-us-per-request "$cpu_trace" --requests "$calls_trace" --out "$out" \
  --title "Streams, $label: commit $commit$dirty, $(date -u '+%Y-%m-%d %H:%M UTC')" \
  --note "${quick_note}Written by \`./bench/profile.sh${args_text:+ $args_text}\`. Load average $load_start at the start, $load_trace after the traced window, $load_end at the end (nproc $(nproc)); the probe, the mock and the gateway themselves make about 1 of it." \
  --note "Streams: stream-probe, $stream_c at a time, POST /v1/chat/completions with bench/bodies/chat.json, stream on, model bench-stream (the mock sends the first content chunk at once, then $stream_chunks in all with a ${stream_delay_ms} ms timer before each); every stream complete ($stream_chunks content chunks and [DONE]), \`x-gateway-cache: bypass\` from provider openai, one upstream call each. The gateway: embedded store, budgets, ledger and metrics on, Serilog at $level." \
  --note "**CPU per stream, untraced: median $cpu_median µs** over $rounds round(s) of $streams streams ($(echo $cpus | sed 's/ / µs, /g') µs); **added time to first token p50: median $added_median ms** (p99 $added99_median ms); first token p50 through the gateway $(echo $gw50 | sed 's/ /, /g') ms, direct $(echo $dir50 | sed 's/ /, /g') ms." \
  --note "$table" \
  --note "With tools attached to a background probe: $cpu_counters µs/stream with dotnet-counters ($calls_counters streams), $cpu_trace µs/stream while traced ($calls_trace streams; the sampler suspends every thread about 100 times a second, which costs CPU of its own)." \
  --note "dotnet-counters (System.Runtime, ${seconds} s at $rate streams/s): about ${alloc_per} bytes allocated per stream; $gcs_per_s GCs/s; $contentions lock contentions/s; about $items_per thread-pool work items per stream." >&2
# The round table was passed as one note (notes are list items): put it back on lines of its own.
sed -i 's/<br>/\n/g' "$out"
log "wrote $out"
cat "$out"
