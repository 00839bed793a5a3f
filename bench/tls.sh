#!/usr/bin/env bash
# TLS benchmark: weir, HAProxy and nginx side by side, one worker each, the
# same certificates, in front of the same weir-demo backend:
#   - full handshakes per second, ECDSA P-256 and RSA 2048 (`openssl s_time
#     -new`, several at once: every connection is a new full handshake, no
#     session resumed, then closed; h2load cannot be used here, it resumes
#     sessions when it reconnects), with the proxy's CPU time per handshake;
#   - HTTPS keep-alive requests per second and the proxy's CPU per request.
# The machine is shared by h2load, the backend and the proxy: on a small
# machine the client is often the bottleneck of the handshake runs, so the
# proxy's CPU per handshake is the figure to compare (ratios are printed).
#
# usage: bench/tls.sh               (build first: make)
# env:   TLS_SECONDS (10)        length of a handshake run
#        TLS_CLIENTS (4)         openssl s_time processes at once in it
#        TLS_REQUESTS (100000)   requests per keep-alive run
#        TLS_CONNS (50)          concurrent connections
#        BENCH_ROUNDS (3)        runs per proxy and test, interleaved; medians reported
#        BENCH_PROXIES ("weir haproxy nginx")
#        TLS_TESTS ("handshakes-ecdsa handshakes-rsa keepalive-ecdsa")
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=tls-bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1
cd "$(dirname "$0")/.." || exit 1

seconds=${TLS_SECONDS:-10}
clients=${TLS_CLIENTS:-4}
requests=${TLS_REQUESTS:-100000}
conns=${TLS_CONNS:-50}
rounds=${BENCH_ROUNDS:-3}
proxies=${BENCH_PROXIES:-weir haproxy nginx}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)

for tool in h2load openssl; do
  command -v "$tool" >/dev/null || die "$tool not found (make bench installs nghttp2-client and openssl)"
done
[ -x "$build/weir" ] || die "$build/weir not found; run make first"
tmp=$(mktemp -d /tmp/weir-tls-bench.XXXXXX)

# Certificates: one self-signed ECDSA P-256 and one RSA 2048, for "bench.test".
for kind in ecdsa rsa; do
  if [ $kind = ecdsa ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$kind.key" 2>/dev/null
  else
    openssl genrsa -out "$tmp/$kind.key" 2048 2>/dev/null
  fi
  openssl req -x509 -new -key "$tmp/$kind.key" -days 2 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -out "$tmp/$kind.pem" 2>/dev/null || die "openssl req failed"
  cat "$tmp/$kind.pem" "$tmp/$kind.key" >"$tmp/$kind.combined.pem" # HAProxy's crt
done

read -r backend weir_e weir_r hap_e hap_r ngx_e ngx_r <<<"$(free_ports 7)"
"$build/weir-demo" -l "127.0.0.1:$backend" -n tls-bench 2>"$tmp/backend.log" &
pids+=($!)
wait_port "$backend" "$!" || die "weir-demo did not start"

weir_listener() { # NAME PORT KIND
  cat <<EOF
  - name: $1
    listen: 127.0.0.1:$2
    tls: { certificates: [ { cert: $tmp/$3.pem, key: $tmp/$3.key } ] }
    timeouts: { client_idle: 300s }
    routes: [ { cluster: be } ]
EOF
}

cat >"$tmp/weir.yaml" <<EOF
workers: 1
log: { level: warn }
listeners:
$(weir_listener ecdsa "$weir_e" ecdsa)
$(weir_listener rsa "$weir_r" rsa)
clusters:
  - name: be
    pool: { max_idle: 128 }
    endpoints: [ 127.0.0.1:$backend ]
EOF

cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 20000
    no strict-limits
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend ecdsa
    bind 127.0.0.1:$hap_e ssl crt $tmp/ecdsa.combined.pem alpn http/1.1
    default_backend be
frontend rsa
    bind 127.0.0.1:$hap_r ssl crt $tmp/rsa.combined.pem alpn http/1.1
    default_backend be
backend be
    server b1 127.0.0.1:$backend
EOF

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 20000; use epoll; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream be { server 127.0.0.1:$backend; keepalive 128; }
    server {
        listen 127.0.0.1:$ngx_e ssl;
        ssl_certificate $tmp/ecdsa.pem;
        ssl_certificate_key $tmp/ecdsa.key;
        location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
    server {
        listen 127.0.0.1:$ngx_r ssl;
        ssl_certificate $tmp/rsa.pem;
        ssl_certificate_key $tmp/rsa.key;
        location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF

start_proxy() { # NAME: starts it, sets proxy_pid
  case $1 in
    weir) "$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 & ;;
    haproxy) haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 & ;;
    nginx) nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 & ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
  local p
  for p in $(ports_of "$1"); do wait_port "$p" "$proxy_pid" || die "$1 did not start (see $tmp/$1.log)"; done
}

ports_of() {
  case $1 in weir) echo "$weir_e $weir_r" ;; haproxy) echo "$hap_e $hap_r" ;; nginx) echo "$ngx_e $ngx_r" ;; esac
}

# CPU ticks of the proxy's processes (nginx: master and worker).
proxy_ticks() {
  local total=0 pid
  for pid in $1 $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}

# handshakes PORT -> prints "RATE CPU_US_PER_OP FAILED": $clients s_time
# processes making new connections for $seconds seconds.
handshakes() {
  local port=$1 t0 t1 i n=0 spent=0
  t0=$(proxy_ticks "$proxy_pid")
  for i in $(seq "$clients"); do
    timeout $((seconds + 30)) openssl s_time -connect "127.0.0.1:$port" -new -time "$seconds" \
      >"$tmp/s_time.$i" 2>&1 &
  done
  wait_clients
  t1=$(proxy_ticks "$proxy_pid")
  for i in $(seq "$clients"); do
    read -r c s <<<"$(awk '/connections in .* real seconds/ {print $1, $4}' "$tmp/s_time.$i")"
    n=$((n + ${c:-0}))
    spent=$(awk -v a="$spent" -v b="${s:-0}" 'BEGIN { print (b > a ? b : a) }')
  done
  awk -v n="$n" -v s="$spent" -v t=$((t1 - t0)) -v hz="$clk_tck" \
    'BEGIN { if (n == 0 || s == 0) { print "0 0 all"; exit } printf "%.1f %.1f 0\n", n / s, t / hz * 1e6 / n }'
}

# Waits for the s_time processes (jobs of this shell other than the
# long-running ones in pids).
wait_clients() {
  local j
  for j in $(jobs -p); do
    [[ " ${pids[*]} " == *" $j "* ]] || wait "$j"
  done
}

# keepalive PORT -> prints "RATE CPU_US_PER_OP FAILED" (h2load, keep-alive).
keepalive() {
  local port=$1 t0 t1 out rate failed
  h2load --h1 -n 2000 -c "$conns" -t 1 "https://127.0.0.1:$port/" >/dev/null 2>&1 # warm-up
  t0=$(proxy_ticks "$proxy_pid")
  out=$(timeout 300 h2load --h1 -n "$requests" -c "$conns" -t 1 "https://127.0.0.1:$port/" 2>&1)
  t1=$(proxy_ticks "$proxy_pid")
  rate=$(awk '/^finished in/ {print $4}' <<<"$out")
  failed=$(awk '/^requests:/ {print $10}' <<<"$out")
  awk -v r="$rate" -v t=$((t1 - t0)) -v n="$requests" -v hz="$clk_tck" -v f="${failed:-?}" \
    'BEGIN { printf "%s %.1f %s\n", r, t / hz * 1e6 / n, f }'
}

declare -A rate cpu
echo "weir TLS bench $(date -u +%Y%m%d-%H%M%S): $(nproc) cpu(s), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(openssl version) | $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3) | $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "handshake runs: ${seconds}s of $clients openssl s_time -new; keep-alive runs: $requests requests over $conns connections (h2load --h1)"
for round in $(seq "$rounds"); do
  for p in $proxies; do
    start_proxy "$p"
    read -r pe pr <<<"$(ports_of "$p")"
    for test in ${TLS_TESTS:-"handshakes-ecdsa" "handshakes-rsa" "keepalive-ecdsa"}; do
      test=${test/-/ }
      case $test in *ecdsa) test="$test $pe" ;; *) test="$test $pr" ;; esac
      read -r mode kind port <<<"$test"
      read -r r c f <<<"$("$mode" "$port")"
      key="$p $mode $kind"
      rate[$key]="${rate[$key]:-} $r"
      cpu[$key]="${cpu[$key]:-} $c"
      printf '   round %d %-8s %-9s %-5s %10s /s  %8s us CPU/op  failed %s\n' "$round" "$p" "$mode" "$kind" "$r" "$c" "$f"
    done
    stop_pid "$proxy_pid"
  done
done

echo
echo "median of $rounds round(s)          ops/s   proxy us CPU/op   weir/haproxy (ops/s, CPU)  weir/nginx"
for test in ${TLS_TESTS:-"handshakes-ecdsa" "handshakes-rsa" "keepalive-ecdsa"}; do
  test=${test/-/ }
  for p in $proxies; do
    # shellcheck disable=SC2086
    mr=$(median ${rate[$p $test]}) mc=$(median ${cpu[$p $test]})
    declare "m_${p}_rate=$mr" "m_${p}_cpu=$mc"
    printf '%-8s %-16s %10s %14s\n' "$p" "$test" "$mr" "$mc"
  done
  if [[ " $proxies " == *" weir "* ]]; then
    printf '%-25s ratios: weir/haproxy rate %s CPU %s; weir/nginx rate %s CPU %s\n' "$test" \
      "$(ratio "${m_weir_rate:-}" "${m_haproxy_rate:-}")" "$(ratio "${m_weir_cpu:-}" "${m_haproxy_cpu:-}")" \
      "$(ratio "${m_weir_rate:-}" "${m_nginx_rate:-}")" "$(ratio "${m_weir_cpu:-}" "${m_nginx_cpu:-}")"
  fi
done
