#!/usr/bin/env bash
# TCP mode (L4) benchmark: weir (protocol: tcp, splice) beside HAProxy (mode
# tcp, option splice-auto) and nginx (stream module), one worker each, in
# front of the same backends:
#   - throughput: one connection fetching BENCH_TCP_BYTES (1 GiB) from a
#     source server through the proxy; MB/s and the proxy's CPU seconds per
#     GiB (utime+stime from /proc);
#   - connection rate: wrk with `Connection: close` (a new TCP connection
#     through the proxy for every small request) against weir-demo; conn/s
#     and the proxy's CPU per 1000 connections.
# Rounds are interleaved (weir, haproxy, nginx, weir, ...); medians are
# reported with weir/HAProxy and weir/nginx ratios (higher is better for
# rates, lower for CPU).
#
# usage: bench/tcp.sh
# env:   BENCH_TCP_BYTES (1073741824)  bytes per transfer
#        BENCH_TCP_ROUNDS (3)          rounds
#        BENCH_TCP_SECONDS (5)         wrk duration per connection-rate run
#        BENCH_CONNS (50)              wrk connections
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench/tcp
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1 # die, cleanup (pids, tmp), free_ports, wait_port, cpu_ticks, median, ratio
cd "$(dirname "$0")/.." || exit 1
root=$PWD
bytes=${BENCH_TCP_BYTES:-1073741824}
rounds=${BENCH_TCP_ROUNDS:-3}
secs=${BENCH_TCP_SECONDS:-5}
conns=${BENCH_CONNS:-50}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)
stream_mod=/usr/lib/nginx/modules/ngx_stream_module.so

[ -x "$build/weir" ] || die "$build/weir not found; run make first"
command -v wrk >/dev/null || die "wrk not found (make bench installs it)"

stamp=$(date -u +%Y%m%d-%H%M%S)
results=$root/bench/results/tcp-$stamp
mkdir -p "$results"
tmp=$(mktemp -d /tmp/weir-bench-tcp.XXXXXX)

read -r src_port demo_port < <(free_ports 2)
"$py" bench/tcp_peer.py source "$src_port" "$bytes" &
pids+=($!)
wait_port "$src_port" "$!" || die "the source server did not start"
"$build/weir-demo" -l "127.0.0.1:$demo_port" -n demo >/dev/null 2>&1 &
pids+=($!)
wait_port "$demo_port" "$!" || die "weir-demo did not start"

targets=()
declare -A bulk_port rate_port pid

start_weir() {
  read -r b r < <(free_ports 2)
  cat >"$tmp/weir.yaml" <<YAML
workers: 1
log: { level: warn }
listeners:
  - { name: bulk, listen: 127.0.0.1:$b, protocol: tcp, cluster: src }
  - { name: rate, listen: 127.0.0.1:$r, protocol: tcp, cluster: demo }
clusters:
  - { name: src, endpoints: [127.0.0.1:$src_port] }
  - { name: demo, endpoints: [127.0.0.1:$demo_port] }
YAML
  "$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 &
  pids+=($!); pid[weir]=$!
  wait_port "$b" "$!" || die "weir did not start: $(cat "$tmp/weir.log")"
  bulk_port[weir]=$b; rate_port[weir]=$r; targets+=(weir)
}

start_haproxy() {
  command -v haproxy >/dev/null || { echo "bench/tcp: haproxy not found, skipped" >&2; return; }
  read -r b r < <(free_ports 2)
  cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bulk
  bind 127.0.0.1:$b
  server s1 127.0.0.1:$src_port
listen rate
  bind 127.0.0.1:$r
  server s1 127.0.0.1:$demo_port
CFG
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  pids+=($!); pid[haproxy]=$!
  wait_port "$b" "$!" || die "haproxy did not start: $(cat "$tmp/haproxy.log")"
  bulk_port[haproxy]=$b; rate_port[haproxy]=$r; targets+=(haproxy)
}

start_nginx() {
  command -v nginx >/dev/null || { echo "bench/tcp: nginx not found, skipped" >&2; return; }
  [ -f "$stream_mod" ] || { echo "bench/tcp: $stream_mod missing (libnginx-mod-stream), nginx skipped" >&2; return; }
  read -r b r < <(free_ports 2)
  mkdir -p "$tmp/nginx"
  cat >"$tmp/nginx.conf" <<CFG
load_module $stream_mod;
worker_processes 1;
daemon off;
master_process off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 8000; }
stream {
  server { listen 127.0.0.1:$b; proxy_pass 127.0.0.1:$src_port; }
  server { listen 127.0.0.1:$r; proxy_pass 127.0.0.1:$demo_port; }
}
CFG
  nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" >"$tmp/nginx.log" 2>&1 &
  pids+=($!); pid[nginx]=$!
  wait_port "$b" "$!" || die "nginx did not start: $(cat "$tmp/nginx.log" "$tmp/nginx/error.log" 2>/dev/null)"
  bulk_port[nginx]=$b; rate_port[nginx]=$r; targets+=(nginx)
}

start_weir
start_haproxy
start_nginx

declare -A mbps cpu_gib cps cpu_kconn
for t in "${targets[@]}"; do mbps[$t]=""; cpu_gib[$t]=""; cps[$t]=""; cpu_kconn[$t]=""; done

for round in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    c0=$(cpu_ticks "${pid[$t]}")
    out=$(timeout 300 "$py" bench/tcp_peer.py fetch "${bulk_port[$t]}" "$bytes") || die "$t: transfer failed"
    c1=$(cpu_ticks "${pid[$t]}")
    read -r got s <<<"$out"
    echo "round $round $t bulk: $got bytes in $s s, cpu ticks $((c1 - c0))" >>"$results/raw.txt"
    mbps[$t]+=" $(awk -v b="$got" -v s="$s" 'BEGIN { printf "%.0f", b / s / 1e6 }')"
    cpu_gib[$t]+=" $(awk -v t="$((c1 - c0))" -v k="$clk_tck" -v b="$got" \
      'BEGIN { printf "%.3f", t / k / (b / 1073741824) }')"

    c0=$(cpu_ticks "${pid[$t]}")
    w=$(timeout 120 wrk -t 1 -c "$conns" -d "${secs}s" -H "Connection: close" \
      "http://127.0.0.1:${rate_port[$t]}/" 2>&1) || die "$t: wrk failed"
    c1=$(cpu_ticks "${pid[$t]}")
    echo "round $round $t rate: $w" >>"$results/raw.txt"
    total=$(awk '/requests in/ { print $1 }' <<<"$w")
    errs=$(awk '/Socket errors|Non-2xx/ { print }' <<<"$w")
    [ -z "$errs" ] || echo "bench/tcp: $t: $errs" >&2
    rate=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$w")
    cps[$t]+=" $rate"
    cpu_kconn[$t]+=" $(awk -v t="$((c1 - c0))" -v k="$clk_tck" -v n="$total" \
      'BEGIN { if (n > 0) printf "%.4f", t / k / n * 1000; else print 0 }')"
  done
done

{
  echo "TCP mode, one worker each, $rounds rounds (medians); $((bytes / 1048576)) MiB per transfer"
  printf '%-8s %12s %14s %12s %16s\n' proxy "MB/s" "cpu s/GiB" "conn/s" "cpu ms/1k conn"
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    printf '%-8s %12s %14s %12s %16s\n' "$t" "$(median ${mbps[$t]})" "$(median ${cpu_gib[$t]})" \
      "$(median ${cps[$t]})" "$(awk -v v="$(median ${cpu_kconn[$t]})" 'BEGIN { printf "%.1f", v * 1000 }')"
  done
  for o in haproxy nginx; do
    [ -n "${pid[$o]:-}" ] || continue
    # shellcheck disable=SC2086
    echo "weir/$o: throughput $(ratio "$(median ${mbps[weir]})" "$(median ${mbps[$o]})")x," \
      "cpu per GiB $(ratio "$(median ${cpu_gib[weir]})" "$(median ${cpu_gib[$o]})")x," \
      "conn/s $(ratio "$(median ${cps[weir]})" "$(median ${cps[$o]})")x," \
      "cpu per conn $(ratio "$(median ${cpu_kconn[weir]})" "$(median ${cpu_kconn[$o]})")x"
  done
} | tee "$results/summary.txt"
