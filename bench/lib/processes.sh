# Process helpers shared by bench/run.sh and bench/profile.sh (sourced, not run). The caller declares
# PID, PORT, PIDS_OF and ALIVE (associative arrays) and sets tmp, keep and a log function first; every
# process started with start_bg is stopped by the EXIT trap that install_cleanup sets, however the script exits.

stop_pid() {
  local pid=$1
  [ -n "${ALIVE[$pid]:-}" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "ALIVE[$pid]"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${!ALIVE[@]}"; do stop_pid "$pid"; done
  if [ "$keep" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$status"
}
install_cleanup() {
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
}

start_bg() {
  local name=$1; shift
  # Appending, so that a log can be emptied between rounds while the process keeps writing.
  "$@" >>"$tmp/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS_OF[$name]=$!
  ALIVE[$!]=1
}

stop_named() {
  local name=$1
  [ -n "${PID[$name]:-}" ] && stop_pid "${PID[$name]}"
  return 0
}

used_ports=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    case "$used_ports" in *" $p "*) continue ;; esac
    if ! ss -Hltn "sport = :$p" | grep -q .; then
      used_ports+="$p "
      PORT[$1]=$p
      return
    fi
  done
}

# Waits until URL answers 200, giving up when PID dies or after TIMEOUT seconds.
wait_http() {
  local url=$1 pid=$2 timeout=${3:-60}
  local deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null)" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 1
    sleep 0.005
  done
  return 1
}

# utime + stime (clock ticks) summed over the given stat files; fields 14 and 15 of /proc/PID/stat, read after the
# command name, which may hold spaces. A file gone (a thread that ended) counts nothing.
stat_ticks() {
  local total=0 file line rest
  for file in "$@"; do
    read -r line 2>/dev/null <"$file" || continue
    rest=${line##*) }
    # shellcheck disable=SC2206
    local f=($rest)
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# utime + stime (clock ticks) summed over the given pids.
cpu_ticks() { local files=() pid; for pid in "$@"; do files+=("/proc/$pid/stat"); done; stat_ticks "${files[@]}"; }

# utime + stime (clock ticks) of the threads of process $1 whose name starts with $2 (the JIT's: ".NET Tiered").
thread_ticks() {
  local files=() task
  for task in /proc/"$1"/task/*; do
    case "$(cat "$task/comm" 2>/dev/null)" in "$2"*) files+=("$task/stat") ;; esac
  done
  stat_ticks "${files[@]}"
}

# Context switches (voluntary and not) of every thread of a process so far: the wake-ups its work has cost.
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'; }

# Calls the bench's mock upstream (PORT[mock]) has answered so far on one endpoint (GET /stats): chat, embeddings
# or moderations. One per answer on a miss, none on a cache hit: how every script proves the path it measures.
mock_calls() { curl -s --max-time 5 "http://127.0.0.1:${PORT[mock]}/stats" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
chat_calls() { mock_calls chat; }
