#!/usr/bin/env bash
# Side-by-side HTTP/1.1 proxy benchmark: weir, nginx and HAProxy, each with one
# worker in front of the same two weir-demo backends. See bench/README.md.
#
# usage: bench/run.sh            (`make bench` installs the tools and builds first)
# env:   BENCH_REQUESTS (200000)  requests per proxy in the throughput run
#        BENCH_ROUNDS (3)         throughput runs per proxy, interleaved; medians reported
#        BENCH_CONNS (50)         concurrent client connections for it
#        BENCH_WARMUP (10000)     warm-up requests before each measured run
#        BENCH_IDLE_CONNS (10000) idle keep-alive connections in the memory run (0 skips it)
#        BENCH_PROXIES ("weir weir-steps weir-ratelimit nginx haproxy nginx-ratelimit
#                                 haproxy-ratelimit weir-gzip nginx-gzip weir-cache nginx-cache
#                                 varnish-cache"); weir-steps is weir with a route that runs
#                                 the headers and rewrite steps, *-ratelimit a local rate
#                                 limit per client address that is never reached, *-gzip
#                                 gzip level 6 of weir-demo's 10 KB JSON document (/json),
#                                 *-cache a cached 1 KB object (/bytes?n=1024): cache hits
#                                 (varnish-cache when varnishd is installed); weir-jwt
#                                 checks an RS256 JWT (2048-bit key) on every request;
#                                 weir-rlstore decides the never-reached limit in a local
#                                 redis-server (store: the cluster-wide mode)
#        BENCH_BASELINE (unset)   another weir binary (e.g. a build of the previous commit):
#                                 run as `weir-baseline` on the plain route, beside this one
#        BENCH_PIN (0)            1: the proxy alone on the last CPU, everything else on the others
#        BENCH_SKIP_CACHE_ZIPF (0) 1: skip the eviction policies' hit ratios (cache-zipf)
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1 # die, cleanup (pids, tmp), free_ports, wait_port, stop_pid, ...
cd "$(dirname "$0")/.." || exit 1
root=$PWD

requests=${BENCH_REQUESTS:-200000}
rounds=${BENCH_ROUNDS:-3}
conns=${BENCH_CONNS:-50}
warmup=${BENCH_WARMUP:-10000}
idle_conns=${BENCH_IDLE_CONNS:-10000}
proxies=${BENCH_PROXIES:-weir weir-steps weir-ratelimit weir-rlstore weir-jwt nginx haproxy nginx-ratelimit haproxy-ratelimit weir-gzip nginx-gzip weir-cache nginx-cache varnish-cache}
baseline=${BENCH_BASELINE:-}
[ -n "$baseline" ] && proxies="$proxies weir-baseline"
build=${BUILD_DIR:-build/release}
h2load_timeout=300 # seconds: bound on any single h2load run
clk_tck=$(getconf CLK_TCK)

# CPU pinning (BENCH_PIN=1): a proxy with one worker gets the last CPU to itself; the load
# generator, the backends and the idle helper share the others. That makes the
# proxy the bottleneck of its run and keeps the comparison about the proxy.
ncpu=$(nproc)
pin_proxy=()
pin_rest=()
if [ "${BENCH_PIN:-0}" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
  pin_proxy=(taskset -c "$((ncpu - 1))")
  pin_rest=(taskset -c "0-$((ncpu - 2))")
fi

for tool in h2load "$py"; do
  command -v "$tool" >/dev/null || die "$tool not found (make bench installs nghttp2-client and python3)"
done
[ -x "$build/weir-demo" ] || die "$build/weir-demo not found; run make first"

# Idle connections need file descriptors in the client helper and the proxies.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
if [ "$idle_conns" -gt 0 ] && [ "$nofile" != unlimited ] && [ $((idle_conns + 1000)) -gt "$nofile" ]; then
  echo "bench: open-file limit is $nofile; lowering BENCH_IDLE_CONNS from $idle_conns to $((nofile - 1000))"
  idle_conns=$((nofile - 1000))
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
results=$root/bench/results/$stamp
mkdir -p "$results"
tmp=$(mktemp -d /tmp/weir-bench.XXXXXX)

# run_to FILE CMD...: runs CMD with its output in FILE, in the background and
# waited for, so that a signal to this script is handled at once (bash runs
# traps only between foreground commands). Not bg_wait CMD >FILE: the trap's
# message would go to FILE too.
run_to() {
  local file=$1 rc
  shift
  "$@" >"$file" 2>&1 &
  fg_pid=$!
  wait "$fg_pid"
  rc=$?
  fg_pid=""
  return "$rc"
}

# Resident set, accurate (smaps_rollup walks the page tables), in kB.
rss_kb() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- backends ----
read -r b1 b2 weir_port nginx_port haproxy_port steps_port ratelimit_port baseline_port \
  gzip_port nginx_gzip_port nginx_rl_port haproxy_rl_port wcache_port ncache_port vcache_port \
  jwt_port rlstore_port redis_port < <(free_ports 18)
gzip_level=6 # the same for weir-gzip and nginx-gzip
cache_path="/bytes?n=1024" # the object the cache variants serve from their caches
"${pin_rest[@]}" "$build/weir-demo" -l "127.0.0.1:$b1" -n bench-1 2>"$tmp/backend-1.log" &
pids+=($!); b1_pid=$!
"${pin_rest[@]}" "$build/weir-demo" -l "127.0.0.1:$b2" -n bench-2 2>"$tmp/backend-2.log" &
pids+=($!); b2_pid=$!
if ! wait_port "$b1" "$b1_pid" || ! wait_port "$b2" "$b2_pid"; then
  die "backends did not start: $(cat "$tmp"/backend-*.log)"
fi

# ---- proxy configurations: one worker, keep-alive to the backends, round robin, no access log ----
# The rewrite step of the weir-steps route, when this build has it.
weir_rewrite_step() {
  local f=$tmp/rewrite-check.yaml
  echo 'listeners: [{ name: x, listen: 127.0.0.1:1, routes: [{ rewrite: { replace_prefix: { from: /, to: / } }, respond: {} }] }]' >"$f"
  if "$build/weir" check -c "$f" >/dev/null 2>&1; then
    echo 'rewrite: { replace_prefix: { from: /, to: / } }'
  fi
}

# gen_weir [steps|ratelimit]: the plain route, or one that runs route steps on
# every request (the cost of the step chain: compare weir-steps with weir), or
# one with a local rate limit per client address that is never reached (the
# cost of a limit decision: compare weir-ratelimit with weir).
gen_weir() {
  local port=$weir_port file=$tmp/weir.yaml steps=""
  if [ "${1:-}" = baseline ]; then
    port=$baseline_port file=$tmp/weir-baseline.yaml
  elif [ "${1:-}" = steps ]; then
    port=$steps_port file=$tmp/weir-steps.yaml
    steps="headers: { request: { set: { X-Env: prod }, remove: [X-Debug] }, response: { set: { X-Frame-Options: DENY } } }"
    steps="$steps"$'\n        '"$(weir_rewrite_step)"$'\n        '
  elif [ "${1:-}" = ratelimit ]; then
    port=$ratelimit_port file=$tmp/weir-ratelimit.yaml
    steps="rate_limit: { algorithm: token_bucket, rate: 1000000000/s, key: client_ip }"$'\n        '
  elif [ "${1:-}" = cache ]; then
    # weir-demo sends no Cache-Control: the headers step (phase before cache) adds one
    port=$wcache_port file=$tmp/weir-cache.yaml
    steps="headers: { response: { set: { Cache-Control: max-age=3600 } } }"$'\n        '
    steps="$steps"'cache: edge'$'\n        '
  elif [ "${1:-}" = rlstore ]; then
    port=$rlstore_port file=$tmp/weir-rlstore.yaml
    steps="rate_limit: { algorithm: token_bucket, rate: 1000000000/s, key: client_ip, store: shared }"$'\n        '
  elif [ "${1:-}" = jwt ]; then
    port=$jwt_port file=$tmp/weir-jwt.yaml
    steps="auth: { jwt: { key_file: $tmp/jwt-pub.pem, algorithms: [RS256] } }"$'\n        '
  elif [ "${1:-}" = gzip ]; then
    port=$gzip_port file=$tmp/weir-gzip.yaml
    steps="compress: { algorithms: [gzip], level: { gzip: $gzip_level } }"$'\n        '
  fi
  cat >"$file" <<EOF
workers: 1
log: { level: warn, access: off }
listeners:
  - name: bench
    listen: 127.0.0.1:$port
    limits: { connections: 20000 }
    routes:
      - ${steps}cluster: backends
clusters:
  - name: backends
    balance: round_robin
    pool: { max_idle: 64 }
    endpoints: [127.0.0.1:$b1, 127.0.0.1:$b2]
EOF
  if [ "${1:-}" = cache ]; then
    printf 'caches:\n  - { name: edge, memory: 64m }\n' >>"$file"
  fi
  if [ "${1:-}" = rlstore ]; then
    printf 'stores:\n  - { name: shared, redis: 127.0.0.1:%s }\n' "$redis_port" >>"$file"
  fi
}

# gen_nginx [gzip|ratelimit|cache]: the plain proxy, or with gzip (same level as
# weir-gzip), or with a limit_req per client address that is never reached, or
# with proxy_cache keeping 200s for an hour (in $tmp: on tmpfs where /tmp is
# one, else on disk behind the page cache). Each variant has its own prefix
# directory, tmp/nginx[-VARIANT].
gen_nginx() {
  local dir=$tmp/nginx port=$nginx_port http_extra="" loc_extra=""
  if [ "${1:-}" = gzip ]; then
    dir=$tmp/nginx-gzip port=$nginx_gzip_port
    http_extra="gzip on; gzip_comp_level $gzip_level; gzip_types application/json; gzip_proxied any; gzip_min_length 256; gzip_vary on;"
  elif [ "${1:-}" = ratelimit ]; then
    dir=$tmp/nginx-ratelimit port=$nginx_rl_port
    http_extra="limit_req_zone \$binary_remote_addr zone=bench:10m rate=100000000r/s;"
    loc_extra="limit_req zone=bench burst=100000000 nodelay;"
  elif [ "${1:-}" = cache ]; then
    dir=$tmp/nginx-cache port=$ncache_port
    http_extra="proxy_cache_path $dir/cache levels=1:2 keys_zone=edge:10m max_size=64m inactive=1h use_temp_path=off;"
    loc_extra="proxy_cache edge; proxy_cache_valid 200 1h;"
  fi
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
user root;
worker_processes 1;
worker_rlimit_nofile $nofile;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 20000;
    use epoll;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    $http_extra
    upstream backends {
        server 127.0.0.1:$b1;
        server 127.0.0.1:$b2;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            $loc_extra
        }
    }
}
EOF
}

# gen_haproxy [ratelimit]: the plain proxy, or with a stick table counting
# each client address's request rate and a deny above a rate never reached.
gen_haproxy() {
  local file=$tmp/haproxy.cfg port=$haproxy_port fe_extra=""
  if [ "${1:-}" = ratelimit ]; then
    file=$tmp/haproxy-ratelimit.cfg port=$haproxy_rl_port
    fe_extra="    stick-table type ip size 100k expire 30s store http_req_rate(10s)
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }"
  fi
  cat >"$file" <<EOF
global
    nbthread 1
    maxconn 20000
    # HAProxy wants 2 fds per maxconn; where the hard limit is lower, run with
    # what there is (idle client connections need about one fd each).
    no strict-limits
defaults
    mode http
    maxconn 20000
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 10s
    timeout http-keep-alive 300s
frontend bench
    bind 127.0.0.1:$port
$fe_extra
    default_backend backends
backend backends
    balance roundrobin
    server b1 127.0.0.1:$b1
    server b2 127.0.0.1:$b2
EOF
}

# Varnish with one thread pool, a 64 MB malloc store and every 200 kept an hour.
gen_varnish() {
  mkdir -p "$tmp/varnish"
  cat >"$tmp/varnish/bench.vcl" <<EOF
vcl 4.1;
backend b1 { .host = "127.0.0.1"; .port = "$b1"; }
sub vcl_backend_response { set beresp.ttl = 1h; }
EOF
}

# An RSA 2048 key pair and an RS256 token valid for a day, for weir-jwt
# (openssl for the key, the Debian python3-jwt for the token).
gen_jwt_token() {
  [ -s "$tmp/jwt.token" ] && return 0
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/jwt-key.pem" 2>/dev/null &&
    openssl pkey -in "$tmp/jwt-key.pem" -pubout -out "$tmp/jwt-pub.pem" 2>/dev/null &&
    /usr/bin/python3 -c 'import jwt, sys, time
print(jwt.encode({"sub": "bench", "exp": int(time.time()) + 86400}, open(sys.argv[1]).read(), algorithm="RS256"))' \
      "$tmp/jwt-key.pem" >"$tmp/jwt.token" || { echo "bench: cannot make a JWT (openssl, python3-jwt)" >&2; return 1; }
}

# A redis-server for weir-rlstore's cluster-wide limit (once per run).
start_bench_redis() {
  [ -n "${redis_pid:-}" ] && return 0
  command -v redis-server >/dev/null || { echo "bench: redis-server not found" >&2; return 1; }
  "${pin_rest[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --loglevel warning --dir "$tmp" >"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  wait_port "$redis_port" "$redis_pid"
}

# start_proxy NAME: starts it, sets proxy_pid (the process that serves) and proxy_port.
start_proxy() {
  proxy_pid=""
  proxy_extra_pid=""
  case $1 in
    weir)
      gen_weir
      proxy_port=$weir_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-baseline)
      gen_weir baseline
      proxy_port=$baseline_port
      "${pin_proxy[@]}" "$baseline" -c "$tmp/weir-baseline.yaml" >"$tmp/weir-baseline.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-steps)
      gen_weir steps
      proxy_port=$steps_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-steps.yaml" >"$tmp/weir-steps.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-cache)
      gen_weir cache
      proxy_port=$wcache_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-cache.yaml" >"$tmp/weir-cache.log" 2>&1 &
      proxy_pid=$!
      ;;
    nginx-cache)
      gen_nginx cache
      proxy_port=$ncache_port
      "${pin_proxy[@]}" nginx -p "$tmp/nginx-cache" -e "$tmp/nginx-cache/error.log" -c "$tmp/nginx-cache/nginx.conf" >"$tmp/nginx-cache.log" 2>&1 &
      proxy_extra_pid=$!
      ;;
    varnish-cache)
      gen_varnish
      proxy_port=$vcache_port
      "${pin_proxy[@]}" varnishd -F -j none -n "$tmp/varnish/work" -a "127.0.0.1:$vcache_port" \
        -f "$tmp/varnish/bench.vcl" -s malloc,64m -p thread_pools=1 >"$tmp/varnish-cache.log" 2>&1 &
      proxy_extra_pid=$! # the manager; its child serves
      ;;
    weir-ratelimit)
      gen_weir ratelimit
      proxy_port=$ratelimit_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-ratelimit.yaml" >"$tmp/weir-ratelimit.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-rlstore)
      start_bench_redis || return 1
      gen_weir rlstore
      proxy_port=$rlstore_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-rlstore.yaml" >"$tmp/weir-rlstore.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-jwt)
      gen_jwt_token || return 1
      gen_weir jwt
      proxy_port=$jwt_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-jwt.yaml" >"$tmp/weir-jwt.log" 2>&1 &
      proxy_pid=$!
      ;;
    weir-gzip)
      gen_weir gzip
      proxy_port=$gzip_port
      "${pin_proxy[@]}" "$build/weir" -c "$tmp/weir-gzip.yaml" >"$tmp/weir-gzip.log" 2>&1 &
      proxy_pid=$!
      ;;
    nginx | nginx-gzip | nginx-ratelimit)
      local variant=${1#nginx} dir
      variant=${variant#-}
      gen_nginx "$variant"
      dir=$tmp/$1
      case $variant in gzip) proxy_port=$nginx_gzip_port ;; ratelimit) proxy_port=$nginx_rl_port ;; *) proxy_port=$nginx_port ;; esac
      "${pin_proxy[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$tmp/$1.log" 2>&1 &
      proxy_extra_pid=$! # the master; the worker does the work
      ;;
    haproxy | haproxy-ratelimit)
      local hvariant=${1#haproxy}
      hvariant=${hvariant#-}
      gen_haproxy "$hvariant"
      proxy_port=$haproxy_port
      [ "$hvariant" = ratelimit ] && proxy_port=$haproxy_rl_port
      "${pin_proxy[@]}" haproxy -db -f "$tmp/$1.cfg" >"$tmp/$1.log" 2>&1 &
      proxy_pid=$!
      ;;
  esac
  local main_pid=${proxy_pid:-$proxy_extra_pid}
  pids+=("$main_pid")
  if ! wait_port "$proxy_port" "$main_pid"; then
    echo "bench: $1 did not start:" >&2
    cat "$tmp/$1.log" "$tmp/$1/error.log" 2>/dev/null | tail -5 >&2
    return 1
  fi
  if [ -n "$proxy_extra_pid" ]; then
    for _ in $(seq 50); do
      proxy_pid=$(pgrep -P "$proxy_extra_pid" | head -1)
      [ -n "$proxy_pid" ] && break
      sleep 0.1
    done
    [ -n "$proxy_pid" ] || { echo "bench: no $1 worker found" >&2; return 1; }
  fi
}

# load NAME PORT PID ROUND: warm-up, then the measured h2load run. Sets r_rps r_cpu r_failed.
# The *-gzip proxies are asked for /json with Accept-Encoding: gzip, the
# cache variants for $cache_path (a cached 1 KB object), the others for /.
load() {
  local name=$1 port=$2 pid=$3 out=$results/h2load-$1-$4.txt t0 t1 path=/ hdr=()
  case $name in
    *-gzip) path=/json hdr=(-H "Accept-Encoding: gzip") ;;
    weir-jwt) hdr=(-H "Authorization: Bearer $(cat "$tmp/jwt.token")") ;;
    *-cache) path=$cache_path ;;
  esac
  run_to "$tmp/warmup-$name.txt" timeout "$h2load_timeout" "${pin_rest[@]}" \
    h2load --h1 -n "$warmup" -c "$conns" -m 1 -t 1 "${hdr[@]}" "http://127.0.0.1:$port$path"
  t0=$(cpu_ticks "$pid")
  run_to "$out" timeout "$h2load_timeout" "${pin_rest[@]}" \
    h2load --h1 -n "$requests" -c "$conns" -m 1 -t 1 "${hdr[@]}" "http://127.0.0.1:$port$path"
  t1=$(cpu_ticks "$pid")
  r_rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$out")
  local ok2xx
  ok2xx=$(awk '/^status codes:/ {print $3}' "$out")
  r_rps=${r_rps:-0}
  r_failed=$((requests - ${ok2xx:-0}))
  r_cpu=$(awk -v d=$((t1 - t0)) -v hz="$clk_tck" -v n="$requests" \
    'BEGIN {printf "%.2f", d * 1e6 / hz / n}')
}

# idle NAME PORT PID: holds idle_conns idle connections; sets r_idle_bytes r_idle_note.
idle() {
  local name=$1 port=$2 pid=$3 ready=$tmp/idle-$1.ready before after hpid
  r_idle_bytes="-"
  r_idle_note=""
  [ "$idle_conns" -gt 0 ] || return 0
  sleep 0.5
  before=$(rss_kb "$pid")
  "${pin_rest[@]}" "$py" "$root/bench/idle_conns.py" 127.0.0.1 "$port" "$idle_conns" "$ready" 120 &
  hpid=$!
  pids+=("$hpid")
  for _ in $(seq 1200); do
    [ -f "$ready" ] && break
    kill -0 "$hpid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -f "$ready" ]; then
    stop_pid "$hpid"
    r_idle_note="idle helper failed"
    return 0
  fi
  sleep 1 # let the proxy settle (timers, pools)
  after=$(rss_kb "$pid")
  stop_pid "$hpid"
  local open failed alive
  open=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' "$ready")
  failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$ready")
  alive=$(sed -n 's/alive=\([0-9]*\)/\1/p' "$ready.end" 2>/dev/null)
  r_idle_note="open=$open failed=$failed alive_at_end=${alive:-?} rss ${before}kB->${after}kB"
  if [ "${open:-0}" -gt 0 ]; then
    r_idle_bytes=$(( (after - before) * 1024 / open ))
  fi
}

summary=$results/summary.txt
{
  echo "weir bench $stamp"
  echo "machine: $(nproc) cpu(s), $(uname -sr); load: h2load --h1 -n $requests -c $conns -m 1 -t 1, warm-up $warmup"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg); pinning: ${pin_proxy[*]:-off} for the proxy, ${pin_rest[*]:-off} for the rest"
  echo "versions: $(nginx -v 2>&1 | sed 's/.*version: //') | $(haproxy -v 2>/dev/null | head -1 | awk '{print "HAProxy " $3}') | $(h2load --version 2>&1 | head -1)"
} | tee "$summary"

declare -A rps cpu hwm failed idle_b idle_note ppid pport pmaster rps_all cpu_all
row() { printf '%-22s | %10s | %11s | %10s | %7s\n' "$@"; }

# measure NAME PORT PID ROUND: one throughput run, accumulated per NAME.
measure() {
  load "$1" "$2" "$3" "$4"
  rps_all[$1]="${rps_all[$1]:-} $r_rps"
  cpu_all[$1]="${cpu_all[$1]:-} $r_cpu"
  failed[$1]=$(( ${failed[$1]:-0} + r_failed ))
  echo "   round $4: $r_rps req/s, $r_cpu us/req CPU, $r_failed failed"
}

ran=()
for p in $proxies; do
  case $p in
    weir | weir-steps | weir-ratelimit | weir-rlstore | weir-jwt | weir-gzip | weir-cache) bin=$build/weir ;;
    weir-baseline) bin=$baseline ;;
    nginx | nginx-gzip | nginx-ratelimit | nginx-cache) bin=$(command -v nginx) ;;
    varnish-cache) bin=$(command -v varnishd || true) ;;
    haproxy | haproxy-ratelimit) bin=$(command -v haproxy) ;;
    *) echo "bench: unknown proxy $p, skipped"; continue ;;
  esac
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "== $p: skipped (${bin:-$p} not found)"
    continue
  fi
  if ! start_proxy "$p"; then
    echo "== $p: skipped (did not start)"
    continue
  fi
  ppid[$p]=$proxy_pid pport[$p]=$proxy_port pmaster[$p]=$proxy_extra_pid
  ran+=("$p")
done

# Throughput: rounds interleave the proxies (A B C A B C ...) so that a burst of
# outside load hurts them alike; each figure is the median over the rounds.
for round in $(seq "$rounds"); do
  echo "== direct (one weir-demo backend, no proxy)"
  measure direct "$b1" "$b1_pid" "$round"
  for p in "${ran[@]}"; do
    echo "== $p"
    measure "$p" "${pport[$p]}" "${ppid[$p]}" "$round"
  done
done
hwm[direct]=$(hwm_kb "$b1_pid")
for p in direct "${ran[@]}"; do
  # shellcheck disable=SC2086 # word splitting wanted
  rps[$p]=$(median ${rps_all[$p]})
  # shellcheck disable=SC2086
  cpu[$p]=$(median ${cpu_all[$p]})
  [ "$p" = direct ] || hwm[$p]=$(hwm_kb "${ppid[$p]}")
done

# Idle connections, one proxy at a time; the others are idle meanwhile.
if [ "$idle_conns" -gt 0 ]; then
  for p in "${ran[@]}"; do
    echo "== $p: $idle_conns idle connections"
    idle "$p" "${pport[$p]}" "${ppid[$p]}"
    idle_b[$p]=$r_idle_bytes idle_note[$p]=$r_idle_note
    if [ -n "${pmaster[$p]:-}" ] && [ "${pmaster[$p]}" != "${ppid[$p]}" ]; then
      idle_note[$p]="${idle_note[$p]} (worker; master peak RSS $(hwm_kb "${pmaster[$p]}") kB)"
    fi
  done
fi
for p in "${ran[@]}"; do stop_pid "${pmaster[$p]:-${ppid[$p]}}"; done

{
  echo
  echo "Throughput: ${requests} requests, ${conns} keep-alive connections, 1 request in flight each;"
  echo "median of $rounds round(s), interleaved"
  row "proxy" "req/s" "CPU us/req" "peak RSS" "failed"
  row "----------------------" "----------" "-----------" "----------" "-------"
  row "direct (1 backend)" "${rps[direct]}" "${cpu[direct]}" "${hwm[direct]} kB" "${failed[direct]}"
  for p in "${ran[@]}"; do
    row "$p" "${rps[$p]}" "${cpu[$p]}" "${hwm[$p]} kB" "${failed[$p]}"
  done
  if [ -n "${rps[weir]:-}" ]; then
    echo
    for other in haproxy nginx; do
      [ -n "${rps[$other]:-}" ] || continue
      echo "weir/$other: req/s x$(ratio "${rps[weir]}" "${rps[$other]}"), CPU us/req x$(ratio "${cpu[weir]}" "${cpu[$other]}")"
    done
    if [ -n "${rps[weir-baseline]:-}" ]; then
      echo "weir/weir-baseline (this build vs BENCH_BASELINE): req/s x$(ratio "${rps[weir]}" "${rps[weir-baseline]}"), CPU us/req x$(ratio "${cpu[weir]}" "${cpu[weir-baseline]}")"
    fi
    if [ -n "${rps[weir-steps]:-}" ]; then
      echo "weir-steps/weir (a route with steps vs a plain route): req/s x$(ratio "${rps[weir-steps]}" "${rps[weir]}"), CPU us/req x$(ratio "${cpu[weir-steps]}" "${cpu[weir]}")"
    fi
    if [ -n "${rps[weir-rlstore]:-}" ] && [ -n "${rps[weir-ratelimit]:-}" ]; then
      calls=$(redis-cli -p "$redis_port" info commandstats 2>/dev/null |
        awk -F'[=,:]' '/^cmdstat_evalsha:/ {n += $3} /^cmdstat_eval:/ {n += $3} END {print n + 0}')
      total=$(( (requests + warmup) * rounds ))
      echo "weir-rlstore/weir-ratelimit (the limit decided in Redis vs locally): req/s x$(ratio "${rps[weir-rlstore]}" "${rps[weir-ratelimit]}"), CPU us/req x$(ratio "${cpu[weir-rlstore]}" "${cpu[weir-ratelimit]}"); mean latency $(awk -v c="$conns" -v a="${rps[weir-rlstore]}" -v b="${rps[weir-ratelimit]}" 'BEGIN {printf "%.3f ms vs %.3f ms", c * 1000 / a, c * 1000 / b}'); Redis scripts run: $calls for $total requests ($(awk -v a="$calls" -v b="$total" 'BEGIN {printf "%.2f", a / b}') per request)"
    fi
    if [ -n "${rps[weir-jwt]:-}" ]; then
      echo "weir-jwt/weir (an RS256 JWT verified per request vs a plain route): req/s x$(ratio "${rps[weir-jwt]}" "${rps[weir]}"), CPU us/req x$(ratio "${cpu[weir-jwt]}" "${cpu[weir]}")"
    fi
    if [ -n "${rps[weir-ratelimit]:-}" ]; then
      echo "weir-ratelimit/weir (a local rate limit never reached vs a plain route): req/s x$(ratio "${rps[weir-ratelimit]}" "${rps[weir]}"), CPU us/req x$(ratio "${cpu[weir-ratelimit]}" "${cpu[weir]}")"
      for other in nginx haproxy; do
        [ -n "${rps[$other-ratelimit]:-}" ] || continue
        echo "weir-ratelimit/$other-ratelimit (the same never-reached limit per client address): req/s x$(ratio "${rps[weir-ratelimit]}" "${rps[$other-ratelimit]}"), CPU us/req x$(ratio "${cpu[weir-ratelimit]}" "${cpu[$other-ratelimit]}")"
        echo "$other-ratelimit/$other (its own limit's cost): req/s x$(ratio "${rps[$other-ratelimit]}" "${rps[$other]:-}"), CPU us/req x$(ratio "${cpu[$other-ratelimit]}" "${cpu[$other]:-}")"
      done
    fi
    if [ -n "${rps[weir-gzip]:-}" ] && [ -n "${rps[nginx-gzip]:-}" ]; then
      echo "weir-gzip/nginx-gzip (gzip level $gzip_level of a 10 KB JSON body): req/s x$(ratio "${rps[weir-gzip]}" "${rps[nginx-gzip]}"), CPU us/req x$(ratio "${cpu[weir-gzip]}" "${cpu[nginx-gzip]}")"
    fi
  fi
  if [ -n "${rps[weir-cache]:-}" ] && [ -n "${rps[nginx-cache]:-}" ]; then
    echo
    echo "weir-cache/nginx-cache (cache hits, 1 KB object): req/s x$(ratio "${rps[weir-cache]}" "${rps[nginx-cache]}"), CPU us/req x$(ratio "${cpu[weir-cache]}" "${cpu[nginx-cache]}")"
  fi
  if [ -n "${rps[weir-cache]:-}" ] && [ -n "${rps[varnish-cache]:-}" ]; then
    echo "weir-cache/varnish-cache (cache hits, 1 KB object): req/s x$(ratio "${rps[weir-cache]}" "${rps[varnish-cache]}"), CPU us/req x$(ratio "${cpu[weir-cache]}" "${cpu[varnish-cache]}")"
  fi
  if [ "$idle_conns" -gt 0 ]; then
    echo
    echo "Idle keep-alive connections: $idle_conns, each after one request"
    printf '%-10s | %15s | %s\n' "proxy" "bytes per conn" "detail"
    for p in "${ran[@]}"; do
      printf '%-10s | %15s | %s\n' "$p" "${idle_b[$p]}" "${idle_note[$p]}"
    done
  fi
  echo
  echo "CPU us/req = proxy process utime+stime during the run / requests (the whole"
  echo "machine is shared by h2load, the backends and the proxy: compare ratios, not absolutes)."
  echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$summary"
echo "results saved in ${results#"$root"/}/"
[ "${BENCH_SKIP_FAULT:-0}" = 1 ] || "$root/bench/fault.sh" # fault run: see bench/README.md

# ---- the cache's eviction policies: hit ratio on a Zipf(0.99) workload (bench/cache_zipf.c) ----
if [ "${BENCH_SKIP_CACHE_ZIPF:-0}" != 1 ] && [ -x "$build/cache-zipf" ]; then
  "$build/cache-zipf" | tee -a "$summary"
fi

# ---- Redis sharding proxy (bench/redis.sh): weir beside nutcracker and direct Redis ----
[ "${BENCH_SKIP_REDIS:-0}" = 1 ] || "$root/bench/redis.sh"

# ---- TCP mode (bench/tcp.sh): weir (splice) beside HAProxy and nginx stream ----
[ "${BENCH_SKIP_TCP:-0}" = 1 ] || "$root/bench/tcp.sh"

# ---- TCP mode with TLS termination (bench/tcp_tls.sh): weir beside HAProxy and nginx stream ----
[ "${BENCH_SKIP_TCP_TLS:-0}" = 1 ] || "$root/bench/tcp_tls.sh"
