"""The autoscaler (`autoscale:` on a cluster) with real processes: weir
starts weir-demo instances on ports it picks, adds them to the cluster when
they answer, drains and stops them, restarts crashed ones with backoff, or
calls hook scripts instead. Periods and windows are short here; nothing is
asserted on timing (the waits are bounded only to avoid hangs)."""
import json
import os
import re
import signal
import stat
import sys
import threading
import time

import pytest
import requests

from conftest import WEIR_DEMO_BIN, free_port, wait_port, wait_until
from redis_helpers import RedisServer

SLOW = 30  # bound for waits that span several periods and windows


def ports_range():
    """A range of 40 ports, free when chosen (weir checks each again)."""
    base = 20000 + (os.getpid() * 53) % 30000
    return "%d-%d" % (base, base + 39)


def as_config(tmp_path, port, aport, sport, autoscale, extra_cluster="", routes=None,
              queues="queues:\n  - name: jobs\n"):
    data = tmp_path / "data"
    routes = routes or ("      - match: { path: /enqueue }\n"
                        "        queue: jobs\n"
                        "      - cluster: app\n")
    return (
        "workers: 2\n"
        "drain_timeout: 10s\n"
        "log: { level: info, access: off }\n"
        "data_dir: %s\n"
        "%s"
        "listeners:\n"
        "  - name: web\n    listen: 127.0.0.1:%d\n    routes:\n%s"
        "  - name: sqs\n    listen: 127.0.0.1:%d\n    protocol: sqs\n"
        "clusters:\n"
        "  - name: app\n%s"
        "    autoscale:\n%s"
        "admin: { listen: 127.0.0.1:%d }\n" % (data, queues, port, routes, sport, extra_cluster,
                                              "".join("      " + l + "\n" for l in autoscale), aport))


class Env:
    def __init__(self, weir, port, aport, sport):
        self.w, self.port, self.aport, self.sport = weir, port, aport, sport
        self.pids = set()

    def api(self, path="/api/v1/autoscale/app", method="GET", body=None):
        r = requests.request(method, "http://127.0.0.1:%d%s" % (self.aport, path),
                             data=None if body is None else json.dumps(body), timeout=10)
        return r

    def state(self):
        s = self.api().json()
        for i in s["instances"]:
            if i["pid"]:
                self.pids.add(i["pid"])
        return s

    def ready(self):
        return [i for i in self.state()["instances"] if i["state"] == "ready"]

    def sqs(self, action, **body):
        body.setdefault("QueueUrl", "http://127.0.0.1:%d/000000000000/jobs" % self.sport)
        r = requests.post("http://127.0.0.1:%d/" % self.sport, data=json.dumps(body), timeout=10,
                          headers={"X-Amz-Target": "AmazonSQS." + action,
                                   "Content-Type": "application/x-amz-json-1.0"})
        assert r.status_code == 200, r.text
        return r.json()

    def metric(self, name, **labels):
        text = requests.get("http://127.0.0.1:%d/metrics" % self.aport, timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{"):
                continue
            if all('%s="%s"' % kv in line for kv in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def autoscaled(weir_factory, tmp_path):
    envs = []

    def start(autoscale, **kw):
        port, aport, sport = free_port(), free_port(), free_port()
        w = weir_factory(as_config(tmp_path, port, aport, sport, autoscale, **kw), port)
        wait_port(aport, w.proc, what="weir's admin listener")
        e = Env(w, port, aport, sport)
        envs.append(e)
        return e

    yield start
    for e in envs:  # instances are weir's to stop; kill any a failed test left behind
        if e.w.proc and e.w.proc.poll() is None:
            e.w.stop()
        for pid in e.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def demo_cmd():
    return 'command: "%s -l 127.0.0.1:{port} -n inst{instance}"' % WEIR_DEMO_BIN


def test_queue_backlog_scales_out_to_max_then_back_after_the_window(autoscaled):
    e = autoscaled([demo_cmd(), "ports: %s" % ports_range(), "min: 1", "max: 3",
                    "period: 100ms", "stabilization: { down: 1s }", "grace: 5s",
                    "metrics: { queue_visible: { queue: jobs, target: 5 } }"])
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="min instances")
    first = e.ready()[0]
    r = requests.get("http://127.0.0.1:%d/" % e.port, timeout=10)
    assert r.status_code == 200 and "inst1" in r.text
    for i in range(40):
        assert requests.post("http://127.0.0.1:%d/enqueue" % e.port, data="job%d" % i,
                             timeout=10).status_code == 202
    wait_until(lambda: len(e.ready()) == 3, SLOW, what="3 ready instances")
    s = e.state()
    assert s["current"] == 3 and s["last_decision"]["inputs"]["queue_visible"]["value"] >= 15
    ports = {i["port"] for i in s["instances"]}
    assert len(ports) == 3
    seen = {requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).headers.get("X-Backend")
            for _ in range(12)}
    assert len(seen) == 3, seen
    # never above max, however large the backlog
    time.sleep(0.5)
    assert len(e.state()["instances"]) == 3
    pids = {i["pid"] for i in e.state()["instances"]}
    # a consumer drains the queue
    received = 0
    while True:
        msgs = e.sqs("ReceiveMessage", MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            e.sqs("DeleteMessage", ReceiptHandle=m["ReceiptHandle"])
        received += len(msgs)
    assert received == 40
    wait_until(lambda: len(e.state()["instances"]) == 1, SLOW, what="scale in to min")
    last = e.state()
    assert last["instances"][0]["state"] == "ready"
    gone = pids - {last["instances"][0]["pid"]}
    assert len(gone) == 2
    wait_until(lambda: not any(alive(p) for p in gone), SLOW, what="stopped instances to exit")
    assert e.metric("weir_autoscale_decisions_total", cluster="app", direction="up") >= 1
    assert e.metric("weir_autoscale_decisions_total", cluster="app", direction="down") >= 1
    assert e.metric("weir_autoscale_current", cluster="app") == 1
    assert e.metric("weir_autoscale_desired", cluster="app") == 1
    log = e.w.errlog()
    assert re.search(r"autoscale: cluster app: scale up \d+ -> \d+ .*queue_visible=\d", log)
    assert re.search(r"autoscale: cluster app: scale down [23] -> [12] ", log)
    assert "draining" in log and "stopped" in log
    # weir's own shutdown stops the last instance
    survivor = last["instances"][0]["pid"]
    assert e.w.stop() == 0
    assert not alive(survivor)
    assert "autoscale: 1 instance(s) stopped" in e.w.errlog()
    assert first["pid"] in e.pids


class Load:
    """n threads sending POST path in a loop (POST: weir does not retry a
    reset one, so a request cut by a stopped instance is seen); counts
    answers and failures."""

    def __init__(self, port, path, n):
        self.port, self.path = port, path
        self.ok = self.failed = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        s = requests.Session()
        while not self.stop_ev.is_set():
            try:
                r = s.post("http://127.0.0.1:%d%s" % (self.port, self.path), data=b"x",
                           timeout=10)
                good = r.status_code == 200
                err = None if good else "status %d" % r.status_code
            except requests.RequestException as ex:
                good, err = False, repr(ex)
            with self.lock:
                if good:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(err)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(15)


WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autoscale_worker.py")


def test_in_flight_load_scales_out_and_scale_in_fails_no_request(autoscaled):
    # the python worker dies at once on SIGTERM: a request weir did not let
    # finish before stopping it would fail
    cmd = 'command: "%s %s {port} inst{instance}"' % (sys.executable, WORKER)
    e = autoscaled([cmd, "ports: %s" % ports_range(), "min: 1", "max: 3",
                    "period: 100ms", "stabilization: { down: 1s }", "grace: 5s",
                    "metrics: { in_flight: { target: 3 } }"])
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="min instance")
    heavy = Load(e.port, "/slow?ms=300", 12)
    light = Load(e.port, "/slow?ms=300", 2)
    try:
        wait_until(lambda: len(e.ready()) == 3, SLOW, what="scale out to 3")
        heavy.stop()
        # the light load goes on while instances drain and stop
        wait_until(lambda: len(e.state()["instances"]) == 1, SLOW, what="scale in to 1")
        log = e.w.errlog()
        assert len(re.findall(r"instance \d \(127\.0\.0\.1:\d+\) draining", log)) >= 2
        before = light.ok
        wait_until(lambda: light.ok > before + 5, SLOW, what="requests after scale-in")
    finally:
        heavy.stop()
        light.stop()
    assert heavy.failed == 0 and light.failed == 0, (heavy.errors + light.errors)[:5]
    assert heavy.ok > 0 and light.ok > 0
    assert "request(s) in flight; stopping it anyway" not in e.w.errlog()


@pytest.mark.parametrize("metric,path", [("latency_p95: { target: 50ms }", "/slow?ms=200"),
                                         ("cpu: { target: 20% }", "/burn?ms=100")])
def test_latency_and_cpu_readings_scale_out(autoscaled, metric, path):
    cmd = 'command: "%s %s {port} inst{instance}"' % (sys.executable, WORKER)
    e = autoscaled([cmd, "ports: %s" % ports_range(), "min: 1", "max: 2", "period: 200ms",
                    "stabilization: { down: 1s }", "grace: 5s", "metrics: { %s }" % metric])
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="min instance")
    load = Load(e.port, path, 2)
    try:
        wait_until(lambda: len(e.ready()) == 2, SLOW, what="scale out on " + metric)
    finally:
        load.stop()
    name = metric.split(":")[0]
    assert re.search(r"scale up 1 -> 2 \(reason (metric|max), metric %s;" % name, e.w.errlog())
    value = e.state()["last_decision"]["inputs"][name]["value"]
    assert value is None or value > 0
    assert load.failed == 0, load.errors[:5]


def test_crashing_instance_is_restarted_with_backoff_and_counted(autoscaled, tmp_path):
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\necho \"crash $1\" >> %s\nexit 3\n" % (tmp_path / "runs"))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    e = autoscaled(['command: "%s {port}"' % script, "ports: %s" % ports_range(), "min: 1",
                    "max: 1", "period: 100ms", "metrics: { in_flight: { target: 5 } }"])
    e.w.wait_log(r"instance 1 \(127\.0\.0\.1:\d+\) exited with status 3; restart 3 in 4000 ms",
                 timeout=SLOW)
    log = e.w.errlog()
    assert re.search(r"exited with status 3; restart 1 in 1000 ms", log)
    assert re.search(r"exited with status 3; restart 2 in 2000 ms", log)
    s = e.state()
    assert s["restarts"] >= 3 and s["instances"][0]["restarts"] >= 3
    assert s["instances"][0]["state"] in ("backoff", "starting")
    assert e.metric("weir_autoscale_restarts_total", cluster="app") >= 3
    runs = (tmp_path / "runs").read_text().splitlines()
    assert len(runs) >= 3  # started again each time, not just counted
    # never added to the cluster: requests get 503, not a dead endpoint
    assert requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).status_code == 503
    assert not s["crash_loop"]
    # the fifth failure in a row (after 4 + 8 s more of backoff) is reported
    e.w.wait_log(r"instance 1 is in a crash loop \(5 failures in a row\)", timeout=SLOW)
    assert e.state()["crash_loop"]
    assert len((tmp_path / "runs").read_text().splitlines()) >= 5


def test_admin_api_changes_min_max_and_pauses(autoscaled):
    e = autoscaled([demo_cmd(), "ports: %s" % ports_range(), "min: 1", "max: 3",
                    "period: 100ms", "stabilization: { down: 0s }", "grace: 5s",
                    "metrics: { queue_visible: { queue: jobs, target: 100 } }"])
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="min instance")
    assert e.api(method="PATCH", body={"min": 3, "max": 2}).status_code == 400
    assert e.api(method="PATCH", body={"min": 0}).status_code == 400  # no scale_to_zero
    assert e.api(method="PATCH", body={"bogus": 1}).status_code == 400
    assert e.api(method="PATCH", body={"paused": "yes"}).status_code == 400
    assert e.api("/api/v1/autoscale/nope").status_code == 404
    assert e.api(method="DELETE").status_code == 405
    r = e.api(method="PATCH", body={"min": 2})
    assert r.status_code == 200 and r.json()["min"] == 2
    wait_until(lambda: len(e.ready()) == 2, SLOW, what="raised min")
    r = e.api(method="PATCH", body={"paused": True, "min": 1})
    assert r.json()["paused"] is True
    time.sleep(0.5)  # several periods: paused, nothing is decided
    assert len(e.state()["instances"]) == 2
    e.api(method="PATCH", body={"paused": False})
    wait_until(lambda: len(e.state()["instances"]) == 1, SLOW, what="back to min 1")
    listing = e.api("/api/v1/autoscale").json()["clusters"]
    assert [c["cluster"] for c in listing] == ["app"]
    assert "admin API: min 2" in e.w.errlog()


HOOK = r'''
import sys
rec, ports = sys.argv[1], sys.argv[2].split(",")
with open(rec, "a") as f:
    f.write(" ".join(sys.argv[3:]) + "\n")
if sys.argv[3] == "up":
    print("127.0.0.1:%s" % ports[int(sys.argv[4]) - 1])
'''


def test_hooks_instead_of_processes(autoscaled, demo_backend, tmp_path):
    backends = [demo_backend("b1"), demo_backend("b2")]
    hook = tmp_path / "hook.py"
    hook.write_text(HOOK)
    rec = tmp_path / "calls"
    ports = ",".join(str(b.port) for b in backends)
    base = '%s %s %s %s' % (sys.executable, hook, rec, ports)
    e = autoscaled(['hooks: { up: "%s up {instance} {count}", down: "%s down {instance} '
                    '{address}" }' % (base, base), "min: 1", "max: 2", "period: 100ms",
                    "stabilization: { down: 1s }",
                    "metrics: { queue_visible: { queue: jobs, target: 5 } }"])
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="first hook instance")
    assert requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).headers["X-Backend"] == "b1"
    for i in range(10):
        requests.post("http://127.0.0.1:%d/enqueue" % e.port, data="x", timeout=10)
    wait_until(lambda: len(e.ready()) == 2, SLOW, what="second hook instance")
    seen = {requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).headers["X-Backend"]
            for _ in range(6)}
    assert seen == {"b1", "b2"}
    assert e.state()["mode"] == "hooks"
    e.sqs("PurgeQueue")
    wait_until(lambda: len(e.state()["instances"]) == 1, SLOW, what="scale in")
    wait_until(lambda: "down 2" in rec.read_text(), SLOW, what="down hook")
    calls = rec.read_text().splitlines()
    assert calls[0] == "up 1 1"
    assert calls[1] == "up 2 2"
    assert calls[2] == "down 2 127.0.0.1:%d" % backends[1].port
    # weir's shutdown calls the down hook for what is left
    assert e.w.stop() == 0
    assert rec.read_text().splitlines()[-1] == "down 1 127.0.0.1:%d" % backends[0].port


def test_config_errors(tmp_path):
    import subprocess
    from conftest import WEIR_BIN
    base = ("listeners:\n  - name: web\n    listen: 127.0.0.1:%d\n    routes:\n"
            "      - cluster: app\nclusters:\n  - name: app\n" % free_port())

    def check(block):
        p = tmp_path / "w.yaml"
        p.write_text(base + "    autoscale:\n" + "".join("      " + l + "\n" for l in block))
        return subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)

    ok = check(['command: "w --port {port}"', "ports: 20000-20010", "max: 3",
                "metrics: { cpu: { target: 70% }, latency_p95: { target: 200ms } }"])
    assert ok.returncode == 0, ok.stderr
    cases = [
        (['command: "w \'x"', "ports: 1-2", "metrics: { cpu: { target: 50 } }"], "every quote closed"),
        (["ports: 1-2", "metrics: { cpu: { target: 50 } }"], "exactly one of 'command'"),
        (['command: "w"', "metrics: { cpu: { target: 50 } }"], "needs 'ports'"),
        (['command: "w"', "ports: 20000-20001", "max: 5", "metrics: { cpu: { target: 50 } }"],
         "fewer ports than max"),
        (['command: "w"', "ports: 9-3", "metrics: { cpu: { target: 50 } }"], "ports: expected a range"),
        (['command: "w"', "ports: 1-9", "min: 3", "max: 2", "metrics: { cpu: { target: 50 } }"],
         "min (3) is above max (2)"),
        (['command: "w"', "ports: 1-9", "min: 0", "metrics: { cpu: { target: 50 } }"],
         "needs scale_to_zero"),
        (['command: "w"', "ports: 1-9", "metrics: {}"], "at least one of"),
        (['command: "w"', "ports: 1-9", "metrics: { queue_visible: { target: 5 } }"],
         "missing required key 'queue'"),
        (['command: "w"', "ports: 1-9", "metrics: { latency_p95: { target: fast } }"],
         "expected a duration"),
        (['command: "w"', "ports: 1-9", "tolerance: 2", "metrics: { in_flight: { target: 5 } }"],
         "tolerance: expected"),
    ]
    for block, msg in cases:
        r = check(block)
        assert r.returncode == 2 and msg in r.stderr, (block, r.stderr)
    # a cluster without autoscale still needs endpoints
    p = tmp_path / "w.yaml"
    p.write_text(base)
    r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode == 2 and "missing required key 'endpoints'" in r.stderr


def test_reload_follows_the_block_and_its_removal(autoscaled, demo_backend, tmp_path):
    block = [demo_cmd(), "ports: %s" % ports_range(), "min: 1", "max: 1", "period: 100ms",
             "grace: 5s", "metrics: { in_flight: { target: 5 } }"]
    e = autoscaled(block)
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="first instance")
    pid = e.state()["instances"][0]["pid"]
    text = open(e.w.config_path).read()
    e.w.reload(text.replace("min: 1\n", "min: 2\n").replace("max: 1\n", "max: 2\n"))
    wait_until(lambda: len(e.ready()) == 2, SLOW, what="min 2 after reload")
    assert e.state()["instances"][0]["pid"] == pid  # kept across the reload
    pids = {i["pid"] for i in e.state()["instances"]}
    # the block goes: the cluster has a file endpoint now, the instances stop
    b = demo_backend("file")
    start = text.index("    autoscale:\n")
    end = text.index("admin:")
    e.w.reload(text[:start] + "    endpoints: [%s]\n" % b.addr + text[end:])
    e.w.wait_log(r"cluster app: no longer autoscaled")
    wait_until(lambda: not any(alive(p) for p in pids), SLOW, what="instances to stop")
    assert e.api("/api/v1/autoscale/app").status_code == 404
    assert e.api("/api/v1/autoscale").json()["clusters"] == []
    r = requests.get("http://127.0.0.1:%d/" % e.port, timeout=10)
    assert r.headers["X-Backend"] == "file"


def test_scale_to_zero_and_back_from_zero_on_the_queue(autoscaled):
    e = autoscaled([demo_cmd(), "ports: %s" % ports_range(), "min: 0", "max: 2",
                    "scale_to_zero: true", "period: 100ms", "stabilization: { down: 500ms }",
                    "grace: 5s", "metrics: { queue_visible: { queue: jobs, target: 5 } }"])
    time.sleep(0.5)  # several periods: idle, nothing starts
    assert e.state()["instances"] == []
    assert requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).status_code == 503
    requests.post("http://127.0.0.1:%d/enqueue" % e.port, data="one", timeout=10)
    wait_until(lambda: len(e.ready()) == 1, SLOW, what="an instance from zero")
    assert e.state()["last_decision"]["reason"] in ("from_zero", "steady", "min")
    assert requests.get("http://127.0.0.1:%d/" % e.port, timeout=10).status_code == 200
    assert "reason from_zero" in e.w.errlog()
    e.sqs("PurgeQueue")
    wait_until(lambda: e.state()["instances"] == [], SLOW, what="back to zero")
    assert "reason to_zero" in e.w.errlog()


def test_queue_kept_in_redis_is_read_from_the_store(autoscaled):
    """queue_visible of a queue kept in Redis is the store's count (weir's
    own memory has none of its messages)."""
    rs = RedisServer()
    try:
        e = autoscaled([demo_cmd(), "ports: %s" % ports_range(), "min: 1", "max: 3",
                        "period: 100ms", "stabilization: { down: 1s }", "grace: 5s",
                        "metrics: { queue_visible: { queue: jobs, target: 5 } }"],
                       queues="stores:\n  - { name: shared, redis: 127.0.0.1:%d }\n"
                              "queues:\n  - { name: jobs, backend: { store: shared } }\n"
                              % rs.port,
                       routes="      - cluster: app\n")
        wait_until(lambda: len(e.ready()) == 1, SLOW, what="min instances")
        for i in range(40):
            e.sqs("SendMessage", MessageBody="job%d" % i)
        assert rs.client().xlen("{weir:q:jobs}:s") == 40
        wait_until(lambda: len(e.ready()) == 3, SLOW, what="3 ready instances")
        assert e.state()["last_decision"]["inputs"]["queue_visible"]["value"] >= 15
        # the scrape cannot ask Redis: no series rather than a wrong 0
        metrics = requests.get("http://127.0.0.1:%d/metrics" % e.aport, timeout=10).text
        assert 'weir_queue_messages{queue="jobs"' not in metrics
        e.sqs("PurgeQueue")
        wait_until(lambda: len(e.state()["instances"]) == 1, SLOW, what="scale in to min")
        assert e.state()["last_decision"]["inputs"]["queue_visible"]["value"] == 0
    finally:
        rs.cleanup()
