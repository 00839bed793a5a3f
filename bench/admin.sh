#!/usr/bin/env bash
# Admin benchmark: the cost of a /metrics scrape with many endpoints. Starts
# weir (2 workers) with one cluster of BENCH_ADMIN_ENDPOINTS endpoints (no
# traffic, no health checks: the scrape is what is measured), scrapes
# /metrics BENCH_ADMIN_SCRAPES times with curl, and prints the median
# scrape time, the body size and weir's CPU time per scrape. The request
# path cost of the counters is measured by bench/run.sh with
# BENCH_BASELINE=<a build without them>.
#
# usage: bench/admin.sh
# env:   BENCH_ADMIN_ENDPOINTS (1000)  BENCH_ADMIN_SCRAPES (50)  BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench/admin
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1
cd "$(dirname "$0")/.." || exit 1
n_eps=${BENCH_ADMIN_ENDPOINTS:-1000}
scrapes=${BENCH_ADMIN_SCRAPES:-50}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)
command -v curl >/dev/null || die "curl not found"
[ -x "$build/weir" ] || die "$build/weir not found; run make first"
tmp=$(mktemp -d /tmp/weir-bench-admin.XXXXXX)
read -r port aport < <(free_ports 2 | tr '\n' ' ')
{
  echo "workers: 2"
  echo "log: { level: warn }"
  echo "admin: { listen: 127.0.0.1:$aport }"
  echo "listeners: [{ name: web, listen: 127.0.0.1:$port, routes: [{ cluster: big }] }]"
  echo "clusters:"
  echo "  - name: big"
  echo "    endpoints:"
  for i in $(seq 0 $((n_eps - 1))); do
    echo "      - 127.0.$((i / 250 + 1)).$((i % 250 + 1)):8080"
  done
} > "$tmp/weir.yaml"
"$build/weir" -c "$tmp/weir.yaml" 2> "$tmp/weir.log" &
pid=$!
pids=("$pid")
wait_port "$aport" || die "weir did not start: $(tail -3 "$tmp/weir.log")"
size=$(curl -s "http://127.0.0.1:$aport/metrics" | wc -c)
lines=$(curl -s "http://127.0.0.1:$aport/metrics" | grep -vc '^#')
t0=$(cpu_ticks "$pid")
times=()
for _ in $(seq "$scrapes"); do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$aport/metrics")")
done
t1=$(cpu_ticks "$pid")
med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
cpu_ms=$(awk -v a="$t0" -v b="$t1" -v n="$scrapes" -v hz="$clk_tck" 'BEGIN {printf "%.2f", (b - a) * 1000 / hz / n}')
echo "bench/admin: $n_eps endpoints: /metrics is $size bytes, $lines samples"
echo "bench/admin: median scrape time $(awk -v t="$med" 'BEGIN {printf "%.2f", t * 1000}') ms over $scrapes scrapes; weir CPU $cpu_ms ms per scrape"
