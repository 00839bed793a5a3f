#!/usr/bin/env bash
# Runs the demo: three weir-demo backends on 127.0.0.1:9001..9003 and weir on
# 127.0.0.1:8080 in front of them (conf/demo.yaml). Ctrl-C stops everything.
# usage: scripts/run-demo.sh [BUILD_DIR]      (default build/release; `make run`)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=${1:-build/release}
conf=conf/demo.yaml
backend_ports=(9001 9002 9003)
weir_port=8080
admin_port=9901
sqs_port=9324
pids=()

for bin in "$build/weir" "$build/weir-demo"; do
  if [ ! -x "$bin" ]; then
    echo "run-demo: $bin not found; build it first (make)" >&2
    exit 1
  fi
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

busy=()
for p in "${backend_ports[@]}" "$weir_port" "$admin_port" "$sqs_port"; do
  port_busy "$p" && busy+=("$p")
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "run-demo: port(s) ${busy[*]} on 127.0.0.1 already in use; stop what listens there" >&2
  echo "          (see who: ss -ltnp | grep 127.0.0.1) and try again" >&2
  exit 1
fi

stopping=0
# shellcheck disable=SC2317 # called from the traps
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "run-demo: stopping weir and the backends"
    kill -TERM "${pids[@]}" 2>/dev/null
    # weir drains in-flight requests; give everything a few seconds, then insist.
    for _ in $(seq 50); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
  fi
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

i=1
for p in "${backend_ports[@]}"; do
  "$build/weir-demo" -l "127.0.0.1:$p" -n "backend-$i" &
  pids+=($!)
  i=$((i + 1))
done

# Wait until the backends listen (or one died: its message says why).
for _ in $(seq 50); do
  up=0
  for p in "${backend_ports[@]}"; do port_busy "$p" && up=$((up + 1)); done
  [ "$up" = ${#backend_ports[@]} ] && break
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-demo: a backend failed to start (see above)" >&2
      exit 1
    fi
  done
  sleep 0.1
done

"$build/weir" -c "$conf" &
weir_pid=$!
pids+=("$weir_pid")

for _ in $(seq 50); do
  port_busy "$weir_port" && break
  if ! kill -0 "$weir_pid" 2>/dev/null; then
    echo "run-demo: weir failed to start (see above)" >&2
    exit 1
  fi
  sleep 0.1
done

cat <<MSG

weir is listening on http://127.0.0.1:$weir_port/ in front of backend-1..3 (127.0.0.1:9001..9003).
Try:
  curl -i http://127.0.0.1:$weir_port/                      # round robin over the three backends
  curl -i http://127.0.0.1:$weir_port/headers               # the request head as the backend saw it
  curl -i --data-binary 'hi there' http://127.0.0.1:$weir_port/echo
  curl -i 'http://127.0.0.1:$weir_port/slow?ms=500'
  curl -i http://127.0.0.1:$weir_port/fail
  curl -i 'http://127.0.0.1:$weir_port/fail?status=503'
  curl -i -b session=alice http://127.0.0.1:$weir_port/sticky/   # consistent hash on the cookie
  curl -X POST 'http://127.0.0.1:$weir_port/admin/fail?on=1'     # the backend that gets it fails
  curl -X POST 'http://127.0.0.1:$weir_port/admin/fail?on=0'     #   (each call goes to the next one)
  curl -i -d 'resize image 42' http://127.0.0.1:$weir_port/jobs   # 202: a durable message in queue jobs
  curl -s -H 'X-Amz-Target: AmazonSQS.ReceiveMessage' -H 'Content-Type: application/x-amz-json-1.0' \\
       -d '{"QueueUrl": "http://127.0.0.1:$sqs_port/000000000000/jobs"}' http://127.0.0.1:$sqs_port/
                                                             # the SQS API (boto3: endpoint_url=http://127.0.0.1:$sqs_port)
  h2load --h1 -n 100000 -c 50 http://127.0.0.1:$weir_port/
  http://127.0.0.1:$admin_port/                              # the live dashboard (in a browser)
  curl http://127.0.0.1:$admin_port/metrics                  # Prometheus metrics
  curl http://127.0.0.1:$admin_port/api/v1/clusters           # every endpoint's state (JSON)
Config: $conf. Access log below. Ctrl-C stops weir and the backends.

MSG

# Stay until weir exits or we are told to stop (wait returns early on a signal).
wait "$weir_pid"
rc=$?
[ "$stopping" = 1 ] && exit 0
echo "run-demo: weir exited with status $rc" >&2
exit "$rc"
