#!/usr/bin/python3
"""Steady HTTP/1.1 load with one record per request, for bench/fault.sh.

usage:
  fault_load.py run HOST PORT OUT.csv STARTED_FILE [options]
      -n N        requests in all (default 10000)
      -r RPS      requests started per second, at most (default 500)
      -c CONNS    keep-alive connections (default 20)
      -p PATH     request target (default /)
      -t SECONDS  per-request timeout (default 10)
  fault_load.py report EVENTS_FILE NAME=OUT.csv [NAME=OUT.csv ...]

run: CONNS workers on one asyncio loop, each with its own keep-alive
connection, send GETs one at a time. Request i may not start before
t0 + i/RPS (an open-loop schedule shared by all connections: a connection
stuck on a slow request does not hold the others back). Latency is from the
first byte written (or the connect, when the connection had to be opened) to
the last byte of the answer. A request fails when the answer is not 2xx, the
connection is refused, reset or closed before a whole answer, the answer is
malformed, or it takes longer than the timeout; after a failure the worker
opens a new connection. When the load starts, t0 (Unix time, seconds) is
written to STARTED_FILE, so the caller can time faults from it. Each request
is a CSV row: seq, conn, sched_s, start_s, latency_ms, status, backend, error
(times relative to t0; conn is WORKER.NTH_CONNECTION; backend is the
X-Backend answer header). A one-line
summary goes to stdout.

report: reads the run CSVs and EVENTS_FILE (lines "NAME EVENT UNIX_TIME",
e.g. "weir kill 1700000000.12") and prints the side-by-side table, then for
each run the failed requests (all of them up to 20, else the first 20) with
their times relative to the events.

Standard library only.
"""
import asyncio
import csv
import sys
import time

HEAD_MAX = 65536


class Failure(Exception):
    pass


async def read_answer(reader):
    """Reads one HTTP/1.1 answer; returns (status, backend, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > HEAD_MAX:
        raise Failure("head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise Failure("bad status line %r" % lines[0][:60])
    status = int(parts[1])
    length = None
    chunked = False
    backend = ""
    keep_alive = parts[0] == "HTTP/1.1"
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif name == "x-backend":
            backend = value
        elif name == "connection":
            tokens = [t.strip().lower() for t in value.split(",")]
            if "close" in tokens:
                keep_alive = False
            elif "keep-alive" in tokens:
                keep_alive = True
    if status in (204, 304) or 100 <= status < 200:
        return status, backend, keep_alive
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailer fields
                break
            await reader.readexactly(size + 2)
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # delimited by the close
        keep_alive = False
    return status, backend, keep_alive


class Load:
    def __init__(self, host, port, total, rps, conns, path, timeout_s):
        self.host, self.port = host, port
        self.total, self.rps, self.conns = total, rps, conns
        self.timeout_s = timeout_s
        self.request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: weir-fault-bench\r\n\r\n"
                        % (path, host, port)).encode()
        self.next_seq = 0
        self.rows = []
        self.t0 = 0.0  # loop time of the schedule's start
        self.max_lag = 0.0

    async def one(self, state):
        """One request on state['rw'] (opened if None). Returns (status, backend)."""
        if state["rw"] is None:
            state["rw"] = await asyncio.open_connection(self.host, self.port)
            state["opened"] += 1
        reader, writer = state["rw"]
        writer.write(self.request)
        await writer.drain()
        status, backend, keep_alive = await read_answer(reader)
        if not keep_alive:
            self.drop(state)
        return status, backend

    @staticmethod
    def drop(state):
        if state["rw"] is not None:
            state["rw"][1].transport.abort()
            state["rw"] = None

    async def worker(self, wid):
        loop = asyncio.get_running_loop()
        state = {"rw": None, "opened": 0}
        while self.next_seq < self.total:
            seq = self.next_seq
            self.next_seq += 1
            sched = seq / self.rps
            delay = self.t0 + sched - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            start = loop.time()
            self.max_lag = max(self.max_lag, start - self.t0 - sched)
            status, backend, error = 0, "", ""
            try:
                status, backend = await asyncio.wait_for(self.one(state), self.timeout_s)
                if not 200 <= status < 300:
                    error = "status %d" % status
            except asyncio.TimeoutError:
                error = "timeout"
            except asyncio.IncompleteReadError as e:
                error = "closed after %d bytes" % len(e.partial)
            except (ConnectionError, OSError) as e:
                error = "%s: %s" % (type(e).__name__, e.strerror or e)
            except (Failure, ValueError, asyncio.LimitOverrunError) as e:
                error = "malformed: %s" % e
            end = loop.time()
            if error and not error.startswith("status"):
                self.drop(state)
            self.rows.append((seq, "%d.%d" % (wid, state["opened"]), round(sched, 6), round(start - self.t0, 6),
                              round((end - start) * 1000, 3), status, backend, error))
        self.drop(state)

    async def main(self, started_file):
        loop = asyncio.get_running_loop()
        self.t0 = loop.time() + 0.05
        with open(started_file, "w") as f:
            f.write("%.6f\n" % (time.time() + 0.05))
        await asyncio.gather(*(self.worker(w) for w in range(self.conns)))


def percentile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    k = max(0, min(len(sorted_vals) - 1, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def summarize(rows):
    lat = sorted(r[4] for r in rows)
    failed = sum(1 for r in rows if r[7])
    return {
        "requests": len(rows), "failed": failed,
        "p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99),
        "p999": percentile(lat, 0.999), "max": lat[-1] if lat else 0.0,
    }


def cmd_run(argv):
    host, port, out, started = argv[0], int(argv[1]), argv[2], argv[3]
    opts = {"-n": 10000, "-r": 500.0, "-c": 20, "-p": "/", "-t": 10.0}
    i = 4
    while i < len(argv):
        key = argv[i]
        if key not in opts or i + 1 >= len(argv):
            sys.exit("fault_load: bad option %s" % key)
        opts[key] = type(opts[key])(argv[i + 1])
        i += 2
    load = Load(host, port, opts["-n"], opts["-r"], opts["-c"], opts["-p"], opts["-t"])
    asyncio.run(load.main(started))
    load.rows.sort()
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seq", "conn", "sched_s", "start_s", "latency_ms", "status", "backend", "error"])
        w.writerows(load.rows)
    s = summarize(load.rows)
    print("requests=%d failed=%d p50=%.2fms p99=%.2fms max=%.2fms max_start_lag=%.1fms"
          % (s["requests"], s["failed"], s["p50"], s["p99"], s["max"], load.max_lag * 1000))


def read_rows(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append((int(r["seq"]), r["conn"], float(r["sched_s"]), float(r["start_s"]),
                         float(r["latency_ms"]), int(r["status"]), r["backend"], r["error"]))
    return rows


def cmd_report(argv):
    events = {}
    with open(argv[0]) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                events.setdefault(parts[0], []).append((parts[1], float(parts[2])))
    runs = []
    for arg in argv[1:]:
        name, _, path = arg.partition("=")
        runs.append((name, read_rows(path), summarize(read_rows(path))))
    fmt = "%-8s | %8s | %6s | %9s | %9s | %9s | %9s"
    print(fmt % ("proxy", "requests", "failed", "p50 ms", "p99 ms", "p99.9 ms", "max ms"))
    print(fmt % ("-" * 8, "-" * 8, "-" * 6, "-" * 9, "-" * 9, "-" * 9, "-" * 9))
    for name, _, s in runs:
        print(fmt % (name, s["requests"], s["failed"], "%.2f" % s["p50"], "%.2f" % s["p99"],
                     "%.2f" % s["p999"], "%.2f" % s["max"]))
    by_name = {name: s for name, _, s in runs}
    if "weir" in by_name and "haproxy" in by_name:
        w, h = by_name["weir"], by_name["haproxy"]
        ratio = lambda a, b: "%.2f" % (a / b) if b else "-"
        print("\nweir/haproxy: p50 x%s, p99 x%s, max x%s; failed %d vs %d"
              % (ratio(w["p50"], h["p50"]), ratio(w["p99"], h["p99"]), ratio(w["max"], h["max"]),
                 w["failed"], h["failed"]))
    # Where the tail comes from: requests started in the 2 s after the kill (the
    # health checks need ~0.5-1 s to mark the backend down) against all others.
    print("\n%-13s  %-22s | %-22s" % ("by start", "kill .. kill+2s", "rest of the run"))
    for name, rows, _ in runs:
        ev = dict(events.get(name, []))
        if "start" not in ev or "kill" not in ev:
            continue
        k = ev["kill"] - ev["start"]
        inside = sorted(r[4] for r in rows if k <= r[3] < k + 2)
        outside = sorted(r[4] for r in rows if not k <= r[3] < k + 2)
        cell = lambda v: "n=%d p99 %.2f ms" % (len(v), percentile(v, 0.99))
        print("%-13s  %-22s | %-22s" % (name, cell(inside), cell(outside)))
    for name, rows, s in runs:
        ev = events.get(name, [])
        t0 = dict(ev).get("start")
        marks = ", ".join("%s at %.2fs" % (e, t - t0) for e, t in ev if e != "start" and t0)
        print("\n%s: %s" % (name, marks or "no fault events recorded"))
        failed = [r for r in rows if r[7]]
        if not failed:
            slow = sorted(rows, key=lambda r: -r[4])[:5]
            print("  0 failed; slowest: " + ", ".join(
                "#%d %.1fms at %.2fs (%s)" % (r[0], r[4], r[3], r[6] or "?") for r in slow))
            continue
        print("  %d failed (first %d): seq conn start_s latency_ms status error"
              % (len(failed), min(20, len(failed))))
        for r in failed[:20]:
            print("   #%d conn=%s %.3fs %.1fms %d %s" % (r[0], r[1], r[3], r[4], r[5], r[7]))


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "run":
        cmd_run(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "report":
        cmd_report(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
