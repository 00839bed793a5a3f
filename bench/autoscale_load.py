"""Open-loop load for bench/autoscale.sh: offers a schedule of request
rates to weir and records, for every second, the requests sent in it and
how many of them were answered 200 or failed, their p95 latency (all by
the second the request was sent), and the autoscaler's instances at that
second (from the admin API: counted, and ready).

usage: autoscale_load.py WEIR_PORT ADMIN_PORT CSV PATH SCHEDULE
SCHEDULE: "SECONDS:RPS,SECONDS:RPS,..." e.g. "10:10,40:80,40:10".
Open loop: each request is sent at its scheduled time whether or not the
ones before it were answered (a thread pool of 400), so a saturated backend
shows as latency, not as a lower offered rate."""
import csv
import http.client
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

port, aport, out_path, path, schedule = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                         sys.argv[4], sys.argv[5])
phases = [(float(a), float(b)) for a, b in (p.split(":") for p in schedule.split(","))]
local = threading.local()
lock = threading.Lock()
results = []  # (second, latency_s, ok)


def one(second):
    t0 = time.monotonic()
    ok = False
    try:
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", path, body=b"x")
        r = c.getresponse()
        r.read()
        ok = r.status == 200
    except (OSError, http.client.HTTPException):
        local.conn = None
    with lock:
        results.append((second, time.monotonic() - t0, ok))


samples = {}  # second -> (current, ready)


def sample_admin(stop, start):
    while not stop.is_set():
        try:
            c = http.client.HTTPConnection("127.0.0.1", aport, timeout=5)
            c.request("GET", "/api/v1/autoscale/app")
            s = json.loads(c.getresponse().read())
            c.close()
            ready = sum(1 for i in s["instances"] if i["state"] == "ready")
            samples[int(time.monotonic() - start)] = (s["current"], ready)
        except (OSError, ValueError, KeyError):
            pass
        stop.wait(0.25)


def main():
    pool = ThreadPoolExecutor(max_workers=400)
    start = time.monotonic()
    stop = threading.Event()
    sampler = threading.Thread(target=sample_admin, args=(stop, start), daemon=True)
    sampler.start()
    offered = {}
    t = 0.0
    for duration, rps in phases:
        n = int(duration * rps)
        for i in range(n):
            at = start + t + i / rps
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            second = int(at - start)
            offered[second] = offered.get(second, 0) + 1
            pool.submit(one, second)
        t += duration
        time.sleep(max(0.0, start + t - time.monotonic()))
    pool.shutdown(wait=True)
    time.sleep(0.5)
    stop.set()
    sampler.join()
    total = int(t)
    by_second = {s: [] for s in range(total + 1)}
    for second, lat, ok in results:
        by_second.setdefault(second, []).append((lat, ok))
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["second", "offered_rps", "answered_ok", "failed", "p95_ms", "instances",
                    "ready"])
        last = (0, 0)
        for s in range(total):
            rs = by_second.get(s, [])
            lats = sorted(l for l, ok in rs if ok)
            p95 = lats[min(len(lats) - 1, int(0.95 * len(lats)))] * 1000 if lats else ""
            last = samples.get(s, last)
            w.writerow([s, offered.get(s, 0), sum(1 for _, ok in rs if ok),
                        sum(1 for _, ok in rs if not ok),
                        "%.1f" % p95 if p95 != "" else "", last[0], last[1]])
    print("requests %d, failed %d" % (len(results), sum(1 for r in results if not r[2])))


main()
