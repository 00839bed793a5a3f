#!/usr/bin/env bash
# Durable queue benchmark: persistent 1 KB messages through weir's SQS
# listener, producers and consumers at the same time, with wrk and a raw
# HTTP Lua client (bench/queue_send.lua, bench/queue_consume.lua): boto3
# would be the bottleneck long before weir. Producers send one message per
# request (SendMessage); consumers receive in batches of 10 (long poll 1 s)
# and delete in batches (DeleteMessageBatch). One run per durability setting
# (fsync: always, fsync: interval 10ms). Reports messages/s sent and
# consumed and the p50/p99 send latency. See docs/queue.md.
#
# RabbitMQ runs beside it when rabbitmq-server and librabbitmq-dev are
# installed (make bench installs them): its own node on free ports under a
# temp dir, a durable queue, persistent messages, publisher confirms (one
# publish in flight per producer, like one SendMessage per request), manual
# acks with prefetch 10 acked ten at a time (bench/amqp_bench.c, a C client).
# beanstalkd too when installed: its binlog with -f0 (fsync after every
# write), put one job at a time per producer, reserve + delete per job
# (bench/beanstalk_bench.c; the protocol has no batches).
#
# usage: bench/queue.sh
# env:   BENCH_QUEUE_SECONDS (10)  length of each run
#        BENCH_QUEUE_PRODUCERS (50), BENCH_QUEUE_CONSUMERS (50)  connections
#        BENCH_QUEUE_WORKERS (2)   weir workers
#        BUILD_DIR (build/release)
set -uo pipefail
BENCH_NAME=bench/queue
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh" || exit 1
cd "$(dirname "$0")/.." || exit 1
root=$PWD
seconds=${BENCH_QUEUE_SECONDS:-10}
producers=${BENCH_QUEUE_PRODUCERS:-50}
consumers=${BENCH_QUEUE_CONSUMERS:-50}
workers=${BENCH_QUEUE_WORKERS:-2}
build=${BUILD_DIR:-build/release}
command -v wrk >/dev/null || die "wrk not found (make bench installs it)"
[ -x "$build/weir" ] || die "$build/weir not found; run make first"
tmp=$(mktemp -d)

run_one() { # run_one FSYNC
  local fsync=$1 port data pid url
  port=$(free_ports 1)
  data="$tmp/data-$fsync"
  cat >"$tmp/weir-$fsync.yaml" <<YAML
workers: $workers
data_dir: $data
listeners:
  - name: sqs
    listen: 127.0.0.1:$port
    protocol: sqs
queues:
  - name: bench
    durability: { fsync: $fsync, every: 10ms }
YAML
  "$root/$build/weir" -c "$tmp/weir-$fsync.yaml" 2>"$tmp/weir-$fsync.err" &
  pid=$!
  pids+=("$pid")
  wait_port "$port" "$pid" || die "weir did not start: $(cat "$tmp/weir-$fsync.err")"
  url="http://127.0.0.1:$port/000000000000/bench"
  local pt=$((producers < 4 ? producers : 4)) ct=$((consumers < 4 ? consumers : 4))
  QUEUE_URL=$url wrk -t"$pt" -c"$producers" -d"${seconds}s" --latency -s bench/queue_send.lua \
    "http://127.0.0.1:$port/" >"$tmp/send-$fsync.out" 2>&1 &
  local wp=$!
  QUEUE_URL=$url wrk -t"$ct" -c"$consumers" -d"${seconds}s" -s bench/queue_consume.lua \
    "http://127.0.0.1:$port/" >"$tmp/consume-$fsync.out" 2>&1 &
  local wc=$!
  wait "$wp" "$wc"
  local send consume
  send=$(grep '^SEND' "$tmp/send-$fsync.out")
  consume=$(grep '^CONSUME' "$tmp/consume-$fsync.out")
  local sent p50 p99 consumed serr cerr
  sent=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$send")
  serr=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$send")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$send")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$send")
  consumed=$(sed -E 's/.*consumed=([0-9]+).*/\1/' <<<"$consume")
  cerr=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$consume")
  printf '%-16s %10.0f %12.0f %10.2f %10.2f %8s\n' "weir $fsync" \
    "$(echo "$sent / $seconds" | bc -l)" "$(echo "$consumed / $seconds" | bc -l)" \
    "$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)" "$((serr + cerr))"
  stop_pid "$pid"
}

echo "durable queue: 1 KB messages, $producers producers (SendMessage), $consumers consumers"
echo "(ReceiveMessage x10 + DeleteMessageBatch), ${seconds}s per run, weir $workers worker(s)"
printf '%-16s %10s %12s %10s %10s %8s\n' target "sent/s" "consumed/s" "p50 ms" "p99 ms" errors
for fsync in always interval; do
  run_one "$fsync"
done

run_beanstalkd() {
  local port pid out
  command -v beanstalkd >/dev/null || { echo "beanstalkd: not installed, skipped"; return; }
  cc -O2 -pthread -o "$tmp/beanstalk_bench" bench/beanstalk_bench.c 2>"$tmp/bs_cc.err" ||
    { echo "beanstalkd: cannot build bench/beanstalk_bench.c, skipped"; return; }
  port=$(free_ports 1)
  mkdir -p "$tmp/binlog"
  beanstalkd -l 127.0.0.1 -p "$port" -b "$tmp/binlog" -f 0 >"$tmp/beanstalkd.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port" "$pid" || { echo "beanstalkd: did not start, skipped"; return; }
  out=$("$tmp/beanstalk_bench" 127.0.0.1 "$port" "$producers" "$consumers" "$seconds")
  local sent consumed p50 p99 errs
  sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$out")
  consumed=$(sed -E 's/.*consumed=([0-9]+).*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")
  errs=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")
  printf '%-16s %10.0f %12.0f %10.2f %10.2f %8s\n' "beanstalkd -f0" \
    "$(echo "$sent / $seconds" | bc -l)" "$(echo "$consumed / $seconds" | bc -l)" \
    "$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)" "$errs"
  stop_pid "$pid"
}

run_rabbitmq() {
  local rmq=/usr/lib/rabbitmq/bin/rabbitmq-server ports port dist epmd_port pid
  [ -x "$rmq" ] || { echo "rabbitmq: not installed, skipped"; return; }
  cc -O2 -pthread -o "$tmp/amqp_bench" bench/amqp_bench.c -lrabbitmq 2>"$tmp/amqp_cc.err" ||
    { echo "rabbitmq: cannot build bench/amqp_bench.c (librabbitmq-dev?), skipped"; return; }
  ports=$(free_ports 3)
  read -r port dist epmd_port <<<"$ports"
  export ERL_EPMD_PORT=$epmd_port # a private epmd, stopped below (not the host's)
  mkdir -p "$tmp/rmq"
  echo '[].' >"$tmp/rmq/plugins"
  HOME="$tmp/rmq" RABBITMQ_NODENAME="weirbench$$@localhost" RABBITMQ_NODE_PORT=$port \
    RABBITMQ_DIST_PORT=$dist RABBITMQ_MNESIA_BASE="$tmp/rmq/mnesia" RABBITMQ_LOG_BASE="$tmp/rmq/log" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/rmq/plugins" RABBITMQ_PID_FILE="$tmp/rmq/pid" \
    "$rmq" >"$tmp/rmq/out" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do port_open "$port" && break; sleep 0.1; done
  port_open "$port" || { echo "rabbitmq: did not start, skipped"; return; }
  local out sent consumed p50 p99 errs
  out=$("$tmp/amqp_bench" 127.0.0.1 "$port" bench "$producers" "$consumers" "$seconds")
  sent=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$out")
  consumed=$(sed -E 's/.*consumed=([0-9]+).*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")
  errs=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")
  printf '%-16s %10.0f %12.0f %10.2f %10.2f %8s\n' "rabbitmq" \
    "$(echo "$sent / $seconds" | bc -l)" "$(echo "$consumed / $seconds" | bc -l)" \
    "$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)" "$errs"
  # the node is several processes: stop the VM through its pid file, then the script
  [ -s "$tmp/rmq/pid" ] && kill -TERM "$(cat "$tmp/rmq/pid")" 2>/dev/null
  stop_pid "$pid"
  epmd -kill >/dev/null 2>&1
  unset ERL_EPMD_PORT
}
run_rabbitmq
run_beanstalkd
