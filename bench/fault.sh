#!/usr/bin/env bash
# Fault run: steady load through weir, then HAProxy (each with health checks and
# retries on another backend), while one of three backends is killed (-9) and
# later restarted on the same port. Reports failed requests and latency side
# by side. See bench/README.md, "Fault run".
#
# usage: bench/fault.sh          (needs build/release/weir, weir-demo, haproxy)
# env:   FAULT_REQUESTS (10000)  requests per proxy
#        FAULT_RPS (500)         requests started per second, at most (10000/500: ~20 s)
#        FAULT_CONNS (20)        client keep-alive connections
#        FAULT_KILL_AT (5)       seconds into the load: kill -9 the second backend
#        FAULT_RESTART_AT (12)   seconds into the load: start it again, same port
#        FAULT_PATH (/)          request target
#        FAULT_PROXIES ("weir haproxy")
#        FAULT_WEIR_LOG (info)   weir's log level (info shows each retry)
#        FAULT_WEIR_RETRY        weir's route retry map, inside { } (default: default_retry below)
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=fault
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1 # die, cleanup (pids, tmp), bg_wait, free_ports, wait_port, stop_pid
cd "$(dirname "$0")/.." || exit 1
root=$PWD

requests=${FAULT_REQUESTS:-10000}
rps=${FAULT_RPS:-500}
conns=${FAULT_CONNS:-20}
kill_at=${FAULT_KILL_AT:-5}
restart_at=${FAULT_RESTART_AT:-12}
path=${FAULT_PATH:-/}
proxies=${FAULT_PROXIES:-weir haproxy}
weir_log=${FAULT_WEIR_LOG:-info}
default_retry='attempts: 4, on: [connect_failure, reset, timeout, 502, 503, 504], backoff: { base: 5ms, max: 50ms }'
weir_retry=${FAULT_WEIR_RETRY:-$default_retry}
build=${BUILD_DIR:-build/release}

[ -x "$py" ] || die "$py not found"
[ -x "$build/weir-demo" ] || die "$build/weir-demo not found; run make first"
awk -v k="$kill_at" -v r="$restart_at" 'BEGIN { exit !(0 < k && k < r) }' ||
  die "need 0 < FAULT_KILL_AT < FAULT_RESTART_AT"
# Bound on one load run: its schedule, plus the client's per-request timeout and slack.
load_timeout=$(awk -v n="$requests" -v r="$rps" 'BEGIN { printf "%d", n / r + 60 }')

stamp=$(date -u +%Y%m%d-%H%M%S)
results=$root/bench/results/fault-$stamp
mkdir -p "$results"
tmp=$(mktemp -d /tmp/weir-fault.XXXXXX)

now() { date +%s.%N; }

sleep_until() { # UNIX_TIME
  local d
  d=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
  bg_wait sleep "$d"
}

# ---- backends ----
bports=()
bpid=("" "" "")
victim=1 # index into bports: the backend killed and restarted

start_backend() { # INDEX
  local i=$1
  "$build/weir-demo" -l "127.0.0.1:${bports[$i]}" -n "b$((i + 1))" 2>>"$results/backend-$((i + 1)).log" &
  bpid[i]=$!
  pids+=("${bpid[$i]}")
  wait_port "${bports[$i]}" "${bpid[$i]}"
}

# A port found free may be taken by someone else before we bind it: try new ones.
for try in 1 2 3 4 5; do
  read -r bp1 bp2 bp3 weir_port haproxy_port < <(free_ports 5)
  bports=("$bp1" "$bp2" "$bp3")
  up=0
  for i in 0 1 2; do start_backend "$i" && up=$((up + 1)); done
  [ "$up" = 3 ] && break
  for i in 0 1 2; do stop_pid "${bpid[$i]}"; done
  [ "$try" = 5 ] && die "backends did not start: $(cat "$results"/backend-*.log)"
done

# ---- proxy configurations (closest equivalents; see README "Fault run") ----
gen_weir() {
  cat >"$tmp/weir.yaml" <<EOF
workers: 1
log: { level: $weir_log, access: off }
listeners:
  - name: bench
    listen: 127.0.0.1:$weir_port
    routes:
      - cluster: backends
        retry: { $weir_retry }
clusters:
  - name: backends
    balance: round_robin
    timeouts: { connect: 1s }
    health_check: { path: /health, interval: 500ms, timeout: 250ms, rise: 2, fall: 2 }
    endpoints: [127.0.0.1:$bp1, 127.0.0.1:$bp2, 127.0.0.1:$bp3]
EOF
}

gen_haproxy() {
  cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    # log only requests with an error, a retry or a redispatch (not every request)
    option dontlog-normal
    option http-keep-alive
    option forwardfor
    http-reuse always
    retries 3
    retry-on all-retryable-errors
    option redispatch 1
    timeout connect 1s
    timeout client 300s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 300s
frontend bench
    bind 127.0.0.1:$haproxy_port
    default_backend backends
backend backends
    balance roundrobin
    option httpchk GET /health
    default-server check inter 500ms fall 2 rise 2
    server b1 127.0.0.1:$bp1
    server b2 127.0.0.1:$bp2
    server b3 127.0.0.1:$bp3
EOF
}

start_proxy() { # NAME: sets proxy_pid proxy_port
  case $1 in
    weir)
      gen_weir
      proxy_port=$weir_port
      "$build/weir" -c "$tmp/weir.yaml" >"$results/weir.log" 2>&1 &
      ;;
    haproxy)
      gen_haproxy
      proxy_port=$haproxy_port
      haproxy -db -f "$tmp/haproxy.cfg" >"$results/haproxy.log" 2>&1 &
      ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
  cp "$tmp/weir.yaml" "$tmp/haproxy.cfg" "$results/" 2>/dev/null
  if ! wait_port "$proxy_port" "$proxy_pid"; then
    echo "fault: $1 did not start:" >&2
    tail -5 "$results/$1.log" >&2
    return 1
  fi
}

events=$results/events.txt
: >"$events"
summary=$results/summary.txt
{
  echo "weir fault bench $stamp"
  echo "machine: $(nproc) cpu(s), $(uname -sr); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "load: $requests x GET $path, at most $rps req/s, $conns keep-alive connections;" \
    "backend b$((victim + 1)) of 3 killed (-9) at ${kill_at}s, restarted at ${restart_at}s"
  echo "versions: $(haproxy -v 2>/dev/null | head -1 | awk '{print "HAProxy " $3}')"
} | tee "$summary"

ran=()
for p in $proxies; do
  case $p in
    weir) bin=$build/weir ;;
    haproxy) bin=$(command -v haproxy) ;;
    *) echo "fault: unknown proxy $p, skipped"; continue ;;
  esac
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "== $p: skipped (${bin:-$p} not found)"
    continue
  fi
  # The killed backend is back (restarted in the previous run) and all three are up.
  for i in 0 1 2; do
    kill -0 "${bpid[$i]}" 2>/dev/null || start_backend "$i" || die "backend b$((i + 1)) did not restart"
  done
  start_proxy "$p" || { echo "== $p: skipped (did not start)"; continue; }
  echo "== $p"
  # Let the health checks see all backends (rise 2 x 500 ms), then warm the pools.
  bg_wait sleep 1.5
  bg_wait timeout 60 "$py" "$root/bench/fault_load.py" run 127.0.0.1 "$proxy_port" \
    "$tmp/warmup.csv" "$tmp/warmup.started" -n 500 -r 1000 -c "$conns" -p "$path" >/dev/null
  started=$tmp/$p.started
  rm -f "$started"
  timeout "$load_timeout" "$py" "$root/bench/fault_load.py" run 127.0.0.1 "$proxy_port" \
    "$results/$p.csv" "$started" -n "$requests" -r "$rps" -c "$conns" -p "$path" \
    >"$results/$p.load.txt" 2>&1 &
  load_pid=$!
  pids+=("$load_pid")
  for _ in $(seq 100); do
    [ -s "$started" ] && break
    kill -0 "$load_pid" 2>/dev/null || break
    bg_wait sleep 0.05
  done
  if [ ! -s "$started" ]; then
    echo "fault: load client did not start: $(cat "$results/$p.load.txt")" >&2
    stop_pid "$proxy_pid"
    continue
  fi
  t0=$(cat "$started")
  echo "$p start $t0" >>"$events"
  sleep_until "$(awk -v t="$t0" -v d="$kill_at" 'BEGIN { printf "%.6f", t + d }')"
  t_kill=$(now)
  { kill -KILL "${bpid[$victim]}"; wait "${bpid[$victim]}"; } 2>/dev/null # no "Killed" notice
  echo "$p kill $t_kill" >>"$events"
  echo "   $(date +%T) killed b$((victim + 1)) (port ${bports[$victim]})"
  sleep_until "$(awk -v t="$t0" -v d="$restart_at" 'BEGIN { printf "%.6f", t + d }')"
  if start_backend "$victim"; then
    echo "$p restart $(now)" >>"$events"
    echo "   $(date +%T) restarted b$((victim + 1))"
  else
    echo "fault: b$((victim + 1)) did not restart" >&2
  fi
  fg_pid=$load_pid
  wait "$load_pid"
  rc=$?
  fg_pid=""
  [ "$rc" = 0 ] || echo "fault: load client exited with $rc (124: timed out after ${load_timeout}s)" >&2
  echo "   $p: $(cat "$results/$p.load.txt")" | tee -a "$summary"
  stop_pid "$proxy_pid"
  [ -s "$results/$p.csv" ] && ran+=("$p")
done

[ "${#ran[@]}" -gt 0 ] || die "no run completed"
args=()
for p in "${ran[@]}"; do args+=("$p=$results/$p.csv"); done
{
  echo
  echo "Latency is per request, first byte sent to last byte received; failed = not 2xx,"
  echo "connection refused/reset/closed, or no answer within 10 s."
  "$py" "$root/bench/fault_load.py" report "$events" "${args[@]}"
  echo
  echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$summary"
echo "results saved in ${results#"$root"/}/ (per-request CSVs, proxy and backend logs)"
