#!/usr/bin/env bash
# TLS termination in TCP mode: weir (protocol: tcp + tls) beside HAProxy
# (mode tcp, bind ... ssl) and nginx (stream, listen ... ssl), one worker
# each, the same ECDSA P-256 certificate, in front of the same plain backends:
#   - throughput: one TLS connection fetching BENCH_TCP_TLS_BYTES (1 GiB)
#     from a source server through the proxy (bench/tcp_peer.py tlsfetch);
#     MB/s and the proxy's CPU seconds per GiB;
#   - new TLS connections: TCP_TLS_CLIENTS `openssl s_time -new` at once for
#     TCP_TLS_SECONDS (a full handshake each, then closed; the proxy connects
#     to weir-demo for each); conn/s and the proxy's CPU ms per connection.
# Rounds are interleaved (weir, haproxy, nginx, weir, ...); medians are
# reported with weir/HAProxy and weir/nginx ratios (higher is better for
# rates, lower for CPU). The client (Python's ssl, openssl) shares the two
# cores: compare the CPU figures, not the absolute rates.
#
# usage: bench/tcp_tls.sh          (build first: make)
# env:   BENCH_TCP_TLS_BYTES (1073741824)  bytes per transfer
#        BENCH_TCP_TLS_ROUNDS (3)          rounds
#        TCP_TLS_SECONDS (5)               length of a connection run
#        TCP_TLS_CLIENTS (2)               s_time processes at once
#        BENCH_PROXIES ("weir haproxy nginx")
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench/tcp_tls
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1 # die, cleanup (pids, tmp), free_ports, wait_port, cpu_ticks, median, ratio
cd "$(dirname "$0")/.." || exit 1
root=$PWD
bytes=${BENCH_TCP_TLS_BYTES:-1073741824}
rounds=${BENCH_TCP_TLS_ROUNDS:-3}
secs=${TCP_TLS_SECONDS:-5}
clients=${TCP_TLS_CLIENTS:-2}
proxies=${BENCH_PROXIES:-weir haproxy nginx}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)
stream_mod=/usr/lib/nginx/modules/ngx_stream_module.so

[ -x "$build/weir" ] || die "$build/weir not found; run make first"
command -v openssl >/dev/null || die "openssl not found"

stamp=$(date -u +%Y%m%d-%H%M%S)
results=$root/bench/results/tcp_tls-$stamp
mkdir -p "$results"
tmp=$(mktemp -d /tmp/weir-bench-tcp-tls.XXXXXX)

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/c.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/c.key" -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -out "$tmp/c.pem" 2>/dev/null || die "openssl req failed"
cat "$tmp/c.pem" "$tmp/c.key" >"$tmp/c.combined.pem" # HAProxy's crt

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
  - name: bulk
    listen: 127.0.0.1:$b
    protocol: tcp
    cluster: src
    tls: { certificates: [{ cert: $tmp/c.pem, key: $tmp/c.key }] }
  - name: rate
    listen: 127.0.0.1:$r
    protocol: tcp
    cluster: demo
    tls: { certificates: [{ cert: $tmp/c.pem, key: $tmp/c.key }] }
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
  command -v haproxy >/dev/null || { echo "bench/tcp_tls: haproxy not found, skipped" >&2; return; }
  read -r b r < <(free_ports 2)
  cat >"$tmp/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 4000
  tune.ssl.default-dh-param 2048
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bulk
  bind 127.0.0.1:$b ssl crt $tmp/c.combined.pem
  server s1 127.0.0.1:$src_port
listen rate
  bind 127.0.0.1:$r ssl crt $tmp/c.combined.pem
  server s1 127.0.0.1:$demo_port
CFG
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  pids+=($!); pid[haproxy]=$!
  wait_port "$b" "$!" || die "haproxy did not start: $(cat "$tmp/haproxy.log")"
  bulk_port[haproxy]=$b; rate_port[haproxy]=$r; targets+=(haproxy)
}

start_nginx() {
  command -v nginx >/dev/null || { echo "bench/tcp_tls: nginx not found, skipped" >&2; return; }
  [ -f "$stream_mod" ] || { echo "bench/tcp_tls: $stream_mod missing, nginx skipped" >&2; return; }
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
  ssl_certificate $tmp/c.pem;
  ssl_certificate_key $tmp/c.key;
  ssl_session_cache off;
  server { listen 127.0.0.1:$b ssl; proxy_pass 127.0.0.1:$src_port; }
  server { listen 127.0.0.1:$r ssl; proxy_pass 127.0.0.1:$demo_port; }
}
CFG
  nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" >"$tmp/nginx.log" 2>&1 &
  pids+=($!); pid[nginx]=$!
  wait_port "$b" "$!" || die "nginx did not start: $(cat "$tmp/nginx.log" "$tmp/nginx/error.log" 2>/dev/null)"
  bulk_port[nginx]=$b; rate_port[nginx]=$r; targets+=(nginx)
}

for p in $proxies; do "start_$p"; done

# conns PORT -> prints "CONNECTIONS SECONDS": $clients s_time processes.
conns() {
  local port=$1 i n=0 spent=0 jobs_=()
  for i in $(seq "$clients"); do
    timeout $((secs + 30)) openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" \
      >"$tmp/s_time.$i" 2>&1 &
    jobs_+=($!)
  done
  wait "${jobs_[@]}"
  for i in $(seq "$clients"); do
    read -r c s <<<"$(awk '/connections in .* real seconds/ {print $1, $4}' "$tmp/s_time.$i")"
    n=$((n + ${c:-0}))
    spent=$(awk -v a="$spent" -v b="${s:-0}" 'BEGIN { print (b > a ? b : a) }')
  done
  echo "$n $spent"
}

declare -A mbps cpu_gib cps cpu_conn
for t in "${targets[@]}"; do mbps[$t]=""; cpu_gib[$t]=""; cps[$t]=""; cpu_conn[$t]=""; done

for round in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    c0=$(cpu_ticks "${pid[$t]}")
    out=$(timeout 300 "$py" bench/tcp_peer.py tlsfetch "${bulk_port[$t]}" "$bytes") || die "$t: transfer failed"
    c1=$(cpu_ticks "${pid[$t]}")
    read -r got s <<<"$out"
    echo "round $round $t bulk: $got bytes in $s s, cpu ticks $((c1 - c0))" >>"$results/raw.txt"
    mbps[$t]+=" $(awk -v b="$got" -v s="$s" 'BEGIN { printf "%.0f", b / s / 1e6 }')"
    cpu_gib[$t]+=" $(awk -v t="$((c1 - c0))" -v k="$clk_tck" -v b="$got" \
      'BEGIN { printf "%.3f", t / k / (b / 1073741824) }')"

    c0=$(cpu_ticks "${pid[$t]}")
    read -r n s <<<"$(conns "${rate_port[$t]}")"
    c1=$(cpu_ticks "${pid[$t]}")
    echo "round $round $t conns: $n in $s s, cpu ticks $((c1 - c0))" >>"$results/raw.txt"
    [ "${n:-0}" -gt 0 ] || die "$t: no TLS connection made (see $tmp/s_time.1)"
    cps[$t]+=" $(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')"
    cpu_conn[$t]+=" $(awk -v t="$((c1 - c0))" -v k="$clk_tck" -v n="$n" \
      'BEGIN { printf "%.4f", t / k / n * 1000 }')"
  done
done

{
  echo "TCP mode with TLS termination, one worker each, $rounds rounds (medians);" \
    "$((bytes / 1048576)) MiB per transfer, ECDSA P-256"
  printf '%-8s %12s %14s %12s %16s\n' proxy "MB/s" "cpu s/GiB" "conn/s" "cpu ms/conn"
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086
    printf '%-8s %12s %14s %12s %16s\n' "$t" "$(median ${mbps[$t]})" "$(median ${cpu_gib[$t]})" \
      "$(median ${cps[$t]})" "$(median ${cpu_conn[$t]})"
  done
  for o in haproxy nginx; do
    if [ -z "${pid[$o]:-}" ] || [ -z "${pid[weir]:-}" ]; then continue; fi
    # shellcheck disable=SC2086
    echo "weir/$o: throughput $(ratio "$(median ${mbps[weir]})" "$(median ${mbps[$o]})")x," \
      "cpu per GiB $(ratio "$(median ${cpu_gib[weir]})" "$(median ${cpu_gib[$o]})")x," \
      "conn/s $(ratio "$(median ${cps[weir]})" "$(median ${cps[$o]})")x," \
      "cpu per conn $(ratio "$(median ${cpu_conn[weir]})" "$(median ${cpu_conn[$o]})")x"
  done
} | tee "$results/summary.txt"
