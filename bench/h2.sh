#!/usr/bin/env bash
# HTTP/2 benchmark: weir and HAProxy side by side, one worker each, in front
# of the same weir-demo (HTTP/1.1) backend: h2load with many streams per
# connection over TLS (ALPN h2) and over h2c (prior knowledge). Printed per
# proxy: requests/s, the proxy's CPU time per request (from /proc/PID/stat)
# and its resident memory after the run, then weir/HAProxy ratios.
# The client, the backend and the proxy share the machine: on a small one
# the CPU per request is the figure to compare.
#
# usage: bench/h2.sh               (build first: make)
# env:   H2_REQUESTS (200000)   requests per run
#        H2_CONNS (10)          connections
#        H2_STREAMS (100)       concurrent streams per connection (h2load -m)
#        BENCH_ROUNDS (3)       runs per proxy and test, interleaved; medians reported
#        BENCH_PROXIES ("weir haproxy")
#        H2_TESTS ("tls h2c")
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=h2-bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1
# shellcheck source-path=SCRIPTDIR source=h2lib.sh
. "$(dirname "$0")/h2lib.sh" || exit 1
cd "$(dirname "$0")/.." || exit 1

requests=${H2_REQUESTS:-200000}
conns=${H2_CONNS:-10}
streams=${H2_STREAMS:-100}
rounds=${BENCH_ROUNDS:-3}
proxies=${BENCH_PROXIES:-weir haproxy}
tests=${H2_TESTS:-tls h2c}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)

for tool in h2load openssl; do
  command -v "$tool" >/dev/null || die "$tool not found (make bench installs nghttp2-client and openssl)"
done
[ -x "$build/weir" ] || die "$build/weir not found; run make first"
tmp=$(mktemp -d /tmp/weir-h2-bench.XXXXXX)

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ecdsa.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ecdsa.key" -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -out "$tmp/ecdsa.pem" 2>/dev/null || die "openssl req failed"
cat "$tmp/ecdsa.pem" "$tmp/ecdsa.key" >"$tmp/ecdsa.combined.pem"

read -r backend weir_t weir_c hap_t hap_c <<<"$(free_ports 5)"
"$build/weir-demo" -l "127.0.0.1:$backend" -n h2-bench 2>"$tmp/backend.log" &
pids+=($!)
wait_port "$backend" "$!" || die "weir-demo did not start"

cat >"$tmp/weir.yaml" <<EOF
workers: 1
log: { level: warn }
listeners:
  - name: tls
    listen: 127.0.0.1:$weir_t
    tls: { certificates: [ { cert: $tmp/ecdsa.pem, key: $tmp/ecdsa.key } ] }
    http2: { max_concurrent_streams: $streams }
    timeouts: { client_idle: 300s }
    routes: [ { cluster: be } ]
  - name: h2c
    listen: 127.0.0.1:$weir_c
    http2: { max_concurrent_streams: $streams }
    timeouts: { client_idle: 300s }
    routes: [ { cluster: be } ]
clusters:
  - name: be
    pool: { max_idle: 1024 }
    endpoints: [ 127.0.0.1:$backend ]
EOF

cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend tls
    bind 127.0.0.1:$hap_t ssl crt $tmp/ecdsa.combined.pem alpn h2,http/1.1
    default_backend be
frontend h2c
    bind 127.0.0.1:$hap_c proto h2
    default_backend be
backend be
    server b1 127.0.0.1:$backend
EOF

start_proxy() { # NAME: starts it, sets proxy_pid
  case $1 in
    weir) "$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 & ;;
    haproxy) haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 & ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
  local p
  for p in $(ports_of "$1"); do wait_port "$p" "$proxy_pid" || die "$1 did not start (see $tmp/$1.log)"; done
}

h2_bench "weir HTTP/2 bench" "HTTP/1.1 weir-demo"
