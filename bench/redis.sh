#!/usr/bin/env bash
# Redis sharding proxy benchmark: weir (1 worker) beside nutcracker (twemproxy,
# single-threaded) and direct Redis, over the same 3 redis-server shards, with
# redis-benchmark GET/SET, 50 clients, pipeline 1 and 16. Reports ops/s and the
# proxy's CPU time per op (utime+stime from /proc during the run / ops) and the
# weir/nutcracker ratios. See docs/redis.md.
#
# `bench/redis.sh cluster`: weir (1 worker) in front of a 3-primary Redis Cluster
# (`cluster: [seed]`) against `redis-benchmark --cluster` talking to the cluster
# directly; reports ops/s, weir's CPU per op, the nodes' CPU per op, and the ratio of
# all the CPU spent per op (weir + nodes) to the nodes' alone when clients go direct.
#
# usage: bench/redis.sh [cluster]
# env:   BENCH_REDIS_OPS (200000)   requests per redis-benchmark run
#        BENCH_REDIS_ROUNDS (3)     runs per target and test, interleaved; medians reported
#        BENCH_CONNS (50)           redis-benchmark clients
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench/redis
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1 # die, cleanup (pids, tmp), free_ports, wait_port, cpu_ticks, median, ratio
cd "$(dirname "$0")/.." || exit 1
root=$PWD
ops=${BENCH_REDIS_OPS:-200000}
rounds=${BENCH_REDIS_ROUNDS:-3}
conns=${BENCH_CONNS:-50}
build=${BUILD_DIR:-build/release}
clk_tck=$(getconf CLK_TCK)

for tool in redis-server redis-benchmark nutcracker; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || die "$tool not found (make bench installs it)"
done
nutcracker=$(command -v nutcracker || echo /usr/sbin/nutcracker)
[ -x "$build/weir" ] || die "$build/weir not found; run make first"

stamp=$(date -u +%Y%m%d-%H%M%S)
mode=${1:-shards}
[ "$mode" = shards ] || [ "$mode" = cluster ] || die "usage: bench/redis.sh [cluster]"
results=$root/bench/results/redis-$stamp
[ "$mode" = shards ] || results=$root/bench/results/redis-cluster-$stamp
mkdir -p "$results"
tmp=$(mktemp -d /tmp/weir-bench-redis.XXXXXX)

# cluster_port: a free port whose cluster bus port (+10000) is free too
cluster_port() {
  local p
  while :; do
    p=$(free_ports 1)
    [ "$p" -le 55535 ] && ! port_open $((p + 10000)) && { echo "$p"; return; }
  done
}

# The cluster mode: 3 primaries, weir in front vs redis-benchmark --cluster.
bench_cluster() {
  local ports=() p t pipe test r before after nb na rps us nus
  for _ in 1 2 3; do
    p=$(cluster_port)
    mkdir -p "$tmp/n$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --loglevel warning --dir "$tmp/n$p" --cluster-enabled yes \
      --cluster-config-file nodes.conf >/dev/null 2>&1 &
    pids+=($!)
    ports+=("$p")
    wait_port "$p" "$!" || die "nothing listens on $p"
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 \
    --cluster-yes >"$tmp/create.log" 2>&1 || die "redis-cli --cluster create failed"
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break
      sleep 0.1
    done
  done
  local node_pids=("${pids[@]}")
  local wport
  wport=$(free_ports 1)
  {
    echo "workers: 1"
    echo "log: { level: warn }"
    echo "listeners:"
    echo "  - { name: cache, listen: 127.0.0.1:$wport, protocol: redis, redis_cluster: rc }"
    echo "redis_clusters:"
    echo "  - { name: rc, cluster: [127.0.0.1:${ports[0]}] }"
  } >"$tmp/weir.yaml"
  "$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 &
  local wpid=$!
  pids+=("$wpid")
  wait_port "$wport" "$wpid" || die "nothing listens on $wport"
  for _ in $(seq 100); do # until weir has the slot map
    [ "$(redis-cli -p "$wport" set bench:ready 1 2>/dev/null)" = OK ] && break
    sleep 0.1
  done
  nodes_ticks() { local s=0 q; for q in "${node_pids[@]}"; do s=$((s + $(cpu_ticks "$q"))); done; echo $s; }
  declare -A cops ccpu cnodes
  for pipe in 1 16; do
    for test in get set; do
      for r in $(seq "$rounds"); do
        for t in weir direct; do
          local args=(-h 127.0.0.1 -p "$wport")
          [ "$t" = direct ] && args=(-h 127.0.0.1 -p "${ports[0]}" --cluster)
          before=$(cpu_ticks "$wpid")
          nb=$(nodes_ticks)
          out=$(redis-benchmark "${args[@]}" -c "$conns" -n "$ops" -P "$pipe" -t "$test" \
                -r 100000 --csv -q 2>/dev/null | tail -1)
          after=$(cpu_ticks "$wpid")
          na=$(nodes_ticks)
          rps=$(echo "$out" | awk -F'","' '{gsub(/"/, "", $2); print $2}')
          us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$ops" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
          nus=$(awk -v t=$((na - nb)) -v hz="$clk_tck" -v n="$ops" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
          [ "$t" = direct ] && us=0
          echo "$t $test P$pipe round $r: $rps ops/s, weir ${us} us/op, nodes ${nus} us/op" >>"$results/raw.txt"
          echo "$rps" >>"$tmp/c-$t-$test-$pipe.ops"
          echo "$us" >>"$tmp/c-$t-$test-$pipe.cpu"
          echo "$nus" >>"$tmp/c-$t-$test-$pipe.nodes"
        done
      done
      for t in weir direct; do
        mapfile -t v <"$tmp/c-$t-$test-$pipe.ops"; cops[$t-$test-$pipe]=$(median "${v[@]}")
        mapfile -t v <"$tmp/c-$t-$test-$pipe.cpu"; ccpu[$t-$test-$pipe]=$(median "${v[@]}")
        mapfile -t v <"$tmp/c-$t-$test-$pipe.nodes"; cnodes[$t-$test-$pipe]=$(median "${v[@]}")
      done
    done
  done
  {
    echo "Redis Cluster benchmark $stamp: redis-benchmark -c $conns -n $ops -r 100000 -t get|set -P 1|16"
    echo "3-primary Redis Cluster; weir (1 worker, cluster: [seed]) vs redis-benchmark --cluster"
    echo "straight to the nodes. Medians of $rounds interleaved runs."
    echo
    printf '%-4s %-3s | %11s %8s %8s | %11s %8s | %7s %9s\n' test P "weir ops/s" "weir us" \
      "nodes us" "direct ops/s" "nodes us" "ops x" "cpu x"
    for pipe in 1 16; do
      for test in get set; do
        k=$test-$pipe
        local total
        total=$(awk -v a="${ccpu[weir-$k]}" -v b="${cnodes[weir-$k]}" 'BEGIN {printf "%.2f", a + b}')
        printf '%-4s %-3s | %11s %8s %8s | %11s %8s | %7s %9s\n' "$test" "$pipe" \
          "${cops[weir-$k]}" "${ccpu[weir-$k]}" "${cnodes[weir-$k]}" \
          "${cops[direct-$k]}" "${cnodes[direct-$k]}" \
          "$(ratio "${cops[weir-$k]}" "${cops[direct-$k]}" n/a)" \
          "$(ratio "$total" "${cnodes[direct-$k]}" n/a)"
      done
    done
    echo
    echo "us = CPU time per op (utime+stime during the run / ops): weir's process, and the three"
    echo "nodes' together. ops x = weir/direct throughput; cpu x = (weir + nodes) / nodes-direct"
    echo "CPU per op (what going through weir costs the servers' side; redis-benchmark's own CPU"
    echo "is not counted). The machine is shared: compare ratios, not absolutes."
    echo "nproc: $(nproc), loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$results/summary.txt"
  echo "results saved in ${results#"$root"/}/"
}

if [ "$mode" = cluster ]; then
  bench_cluster
  exit 0
fi

shard_ports=()
for _ in 1 2 3; do
  p=$(free_ports 1)
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --loglevel warning --dir "$tmp" >/dev/null 2>&1 &
  pids+=($!)
  shard_ports+=("$p")
  wait_port "$p" "$!" || die "nothing listens on $p"
done

weir_port=$(free_ports 1)
{
  echo "workers: 1"
  echo "log: { level: warn }"
  echo "listeners:"
  echo "  - { name: cache, listen: 127.0.0.1:$weir_port, protocol: redis, redis_cluster: c }"
  echo "redis_clusters:"
  echo "  - name: c"
  echo "    distribution: consistent_hash"
  echo "    hash: fnv1a_64"
  echo "    shards:"
  for p in "${shard_ports[@]}"; do echo "      - { primary: 127.0.0.1:$p }"; done
} >"$tmp/weir.yaml"
"$build/weir" -c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 &
weir_pid=$!
pids+=("$weir_pid")
wait_port "$weir_port" "$weir_pid" || die "nothing listens on $weir_port"

nc_port=$(free_ports 1)
{
  echo "pool:"
  echo "  listen: 127.0.0.1:$nc_port"
  echo "  hash: fnv1a_64"
  echo "  distribution: ketama"
  echo "  redis: true"
  echo "  servers:"
  for p in "${shard_ports[@]}"; do echo "   - 127.0.0.1:$p:1"; done
} >"$tmp/nc.yml"
"$nutcracker" -c "$tmp/nc.yml" -s "$(free_ports 1)" >"$tmp/nc.log" 2>&1 &
nc_pid=$!
pids+=("$nc_pid")
wait_port "$nc_port" "$nc_pid" || die "nothing listens on $nc_port"

declare -A port=([weir]=$weir_port [nutcracker]=$nc_port [direct]=${shard_ports[0]})
declare -A pid=([weir]=$weir_pid [nutcracker]=$nc_pid [direct]=${pids[0]})
targets=(weir nutcracker direct)
declare -A res_ops res_cpu

for pipe in 1 16; do
  for test in get set; do
    for r in $(seq "$rounds"); do
      for t in "${targets[@]}"; do
        before=$(cpu_ticks "${pid[$t]}")
        out=$(redis-benchmark -h 127.0.0.1 -p "${port[$t]}" -c "$conns" -n "$ops" -P "$pipe" \
              -t "$test" -r 100000 --csv -q 2>/dev/null | tail -1)
        after=$(cpu_ticks "${pid[$t]}")
        rps=$(echo "$out" | awk -F'","' '{gsub(/"/, "", $2); print $2}')
        us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$ops" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
        echo "$t $test P$pipe round $r: $rps ops/s, ${us} us/op CPU" >>"$results/raw.txt"
        echo "$rps" >>"$tmp/$t-$test-$pipe.ops"
        echo "$us" >>"$tmp/$t-$test-$pipe.cpu"
      done
    done
    for t in "${targets[@]}"; do
      mapfile -t v <"$tmp/$t-$test-$pipe.ops"
      res_ops[$t-$test-$pipe]=$(median "${v[@]}")
      mapfile -t v <"$tmp/$t-$test-$pipe.cpu"
      res_cpu[$t-$test-$pipe]=$(median "${v[@]}")
    done
  done
done

{
  echo "Redis proxy benchmark $stamp: redis-benchmark -c $conns -n $ops -r 100000 -t get|set -P 1|16"
  echo "3 redis-server shards; weir (1 worker) and nutcracker over the same shards, ketama/fnv1a_64;"
  echo "direct = redis-benchmark straight to one shard (no proxy). Medians of $rounds interleaved runs."
  echo
  printf '%-6s %-4s | %12s %10s | %12s %10s | %12s %10s | %9s %9s\n' test P "weir ops/s" "us/op" \
    "twem ops/s" "us/op" "direct ops/s" "us/op" "ops x" "cpu x"
  for pipe in 1 16; do
    for test in get set; do
      k=$test-$pipe
      printf '%-6s %-4s | %12s %10s | %12s %10s | %12s %10s | %9s %9s\n' "$test" "$pipe" \
        "${res_ops[weir-$k]}" "${res_cpu[weir-$k]}" "${res_ops[nutcracker-$k]}" "${res_cpu[nutcracker-$k]}" \
        "${res_ops[direct-$k]}" "${res_cpu[direct-$k]}" \
        "$(ratio "${res_ops[weir-$k]}" "${res_ops[nutcracker-$k]}" n/a)" \
        "$(ratio "${res_cpu[weir-$k]}" "${res_cpu[nutcracker-$k]}" n/a)"
    done
  done
  echo
  echo "ops x = weir/nutcracker throughput; cpu x = weir/nutcracker CPU per op (proxy process"
  echo "utime+stime during the run / ops; for direct, the redis-server's own). The machine is"
  echo "shared by redis-benchmark, the shards and the proxy: compare ratios, not absolutes."
  echo "nproc: $(nproc), loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$results/summary.txt"
echo "results saved in ${results#"$root"/}/"
