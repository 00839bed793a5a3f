#!/usr/bin/env bash
# bench/autoscale.sh: the autoscaler under a load step. weir runs a cluster
# of tests/integration/autoscale_worker.py instances (each serves 2 requests
# at a time, 100 ms each: about 20 req/s) scaled on in_flight (target 2 per
# instance), and an open-loop load offers 10 req/s, then 80, then 10 again.
# Every second goes to bench/autoscale.csv (offered and answered rates,
# failures, p95, instances) and bench/autoscale.svg is drawn from it; the
# summary prints the time to scale out and in and the failed requests.
#
# usage: bench/autoscale.sh   (after `make`; AUTOSCALE_SCHEDULE="SEC:RPS,..." to change the load)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_NAME=autoscale
. bench/lib.sh

weir=build/release/weir
[ -x "$weir" ] || die "build first: make -j2"
schedule=${AUTOSCALE_SCHEDULE:-10:10,40:80,40:10}
tmp=$(mktemp -d)
read -r port aport <<<"$(free_ports 2)"
base=$(( 20000 + ($$ * 37) % 30000 ))
cat >"$tmp/weir.yaml" <<YAML
workers: 2
log: { level: info, access: off }
listeners:
  - name: web
    listen: 127.0.0.1:$port
    routes:
      - cluster: app
clusters:
  - name: app
    timeouts: { response: 30s }
    autoscale:
      command: "$py $PWD/tests/integration/autoscale_worker.py {port} inst{instance} 2"
      ports: $base-$((base + 40))
      min: 1
      max: 8
      period: 1s
      stabilization: { up: 0s, down: 10s }
      grace: 5s
      output: null
      metrics:
        in_flight: { target: 2 }
admin: { listen: 127.0.0.1:$aport }
YAML
"$weir" -c "$tmp/weir.yaml" 2>"$tmp/weir.err" &
pids+=($!)
wait_port "$port" "${pids[0]}"
wait_port "$aport" "${pids[0]}"
sleep 2
echo "autoscale: load $schedule (seconds:req/s) on /slow?ms=100"
bg_wait "$py" bench/autoscale_load.py "$port" "$aport" bench/autoscale.csv "/slow?ms=100" "$schedule"
"$py" bench/autoscale_svg.py bench/autoscale.csv bench/autoscale.svg
"$py" - bench/autoscale.csv "$schedule" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
phases = [tuple(float(v) for v in p.split(":")) for p in sys.argv[2].split(",")]
up_at = int(phases[0][0]); down_at = int(phases[0][0] + phases[1][0])
peak = max(int(r["ready"]) for r in rows)
t_out = next((int(r["second"]) - up_at for r in rows if int(r["second"]) >= up_at and int(r["ready"]) == peak), None)
base = int(rows[up_at - 1]["ready"]) if up_at > 0 else 1
t_in = next((int(r["second"]) - down_at for r in rows if int(r["second"]) >= down_at and int(r["instances"]) <= base), None)
f_out = sum(int(r["failed"]) for r in rows if up_at <= int(r["second"]) < down_at)
f_in = sum(int(r["failed"]) for r in rows if int(r["second"]) >= down_at)
total = sum(int(r["answered_ok"]) + int(r["failed"]) for r in rows)
print("instances %d -> %d -> %d" % (base, peak, int(rows[-1]["instances"])))
print("time to scale out (load step to %d ready): %s s" % (peak, t_out))
print("time to scale in (load drop to %d counted, 10 s window included): %s s" % (base, t_in))
print("requests %d; failed during scale-out %d, during scale-in %d" % (total, f_out, f_in))
PY
echo "autoscale: wrote bench/autoscale.csv and bench/autoscale.svg; weir's log: $(grep -c 'autoscale:' "$tmp/weir.err") autoscale lines"
grep -E "scale (up|down)" "$tmp/weir.err" | sed 's/^/  /' | head -20
