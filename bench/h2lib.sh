# shellcheck shell=bash disable=SC2154  # the sourcing script sets the ports, counts and proxy_pid
# h2lib.sh: the part of bench/h2.sh and bench/h2_upstream.sh that is the
# same: h2load runs against each proxy in interleaved rounds, medians and
# weir/HAProxy ratios. Sourced after lib.sh; the script defines
# start_proxy NAME (sets proxy_pid) and the ports weir_t weir_c hap_t
# hap_c (TLS, h2c), and sets requests, conns, streams, rounds, proxies, tests, clk_tck.
# h2_bench TITLE BACKEND [PATH] runs everything and prints the report.

ports_of() {
  case $1 in weir) echo "$weir_t $weir_c" ;; haproxy) echo "$hap_t $hap_c" ;; esac
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# h2_run URL -> prints "RATE CPU_US_PER_REQ FAILED RSS_KB"; a request
# counts as failed unless its answer was 2xx (an error page is fast)
h2_run() {
  local url=$1 t0 t1 out rate failed
  h2load -n 2000 -c "$conns" -m "$streams" -t 1 "$url" >/dev/null 2>&1 # warm-up
  t0=$(cpu_ticks "$proxy_pid")
  out=$(timeout 300 h2load -n "$requests" -c "$conns" -m "$streams" -t 1 "$url" 2>&1)
  t1=$(cpu_ticks "$proxy_pid")
  rate=$(awk '/^finished in/ {print $4}' <<<"$out")
  failed=$(awk -v n="$requests" '/^status codes:/ {print n - $3}' <<<"$out")
  awk -v r="$rate" -v t=$((t1 - t0)) -v n="$requests" -v hz="$clk_tck" -v f="${failed:-?}" -v m="$(rss_kb "$proxy_pid")" \
    'BEGIN { printf "%s %.1f %s %s\n", r, t / hz * 1e6 / n, f, m }'
}

h2_bench() {
  local title=$1 backend=$2 path=${3:-} round p test url r c f m key pt pc mr mc mm
  declare -A rate cpu mem
  echo "$title $(date -u +%Y%m%d-%H%M%S): $(nproc) cpu(s), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $(h2load --version 2>/dev/null | head -1) | $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3)"
  echo "runs: $requests requests, $conns connections x $streams streams (h2load -m), backend $backend"
  for round in $(seq "$rounds"); do
    for p in $proxies; do
      start_proxy "$p"
      read -r pt pc <<<"$(ports_of "$p")"
      for test in $tests; do
        case $test in tls) url="https://127.0.0.1:$pt/$path" ;; h2c) url="http://127.0.0.1:$pc/$path" ;; esac
        read -r r c f m <<<"$(h2_run "$url")"
        key="$p $test"
        rate[$key]="${rate[$key]:-} $r"
        cpu[$key]="${cpu[$key]:-} $c"
        mem[$key]="${mem[$key]:-} $m"
        printf '   round %d %-8s %-4s %10s req/s  %6s us CPU/req  RSS %6s kB  failed %s\n' "$round" "$p" "$test" "$r" "$c" "$m" "$f"
      done
      stop_pid "$proxy_pid"
    done
  done

  echo
  echo "median of $rounds round(s)      req/s   proxy us CPU/req   RSS kB"
  for test in $tests; do
    for p in $proxies; do
      # shellcheck disable=SC2086
      mr=$(median ${rate[$p $test]}) mc=$(median ${cpu[$p $test]}) mm=$(median ${mem[$p $test]})
      declare "m_${p}_rate=$mr" "m_${p}_cpu=$mc" "m_${p}_mem=$mm"
      printf '%-8s %-6s %12s %14s %10s\n' "$p" "$test" "$mr" "$mc" "$mm"
    done
    if [[ " $proxies " == *" weir "* && " $proxies " == *" haproxy "* ]]; then
      printf '%-6s ratios weir/haproxy: req/s %s, CPU/req %s, RSS %s\n' "$test" \
        "$(ratio "${m_weir_rate:-}" "${m_haproxy_rate:-}")" "$(ratio "${m_weir_cpu:-}" "${m_haproxy_cpu:-}")" \
        "$(ratio "${m_weir_mem:-}" "${m_haproxy_mem:-}")"
    fi
  done
}
