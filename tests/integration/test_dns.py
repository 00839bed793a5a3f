"""DNS discovery: an endpoint given as NAME:PORT is resolved at start through
the configured DNS server (a tiny one made by the test on loopback) and again
every resolve.interval; the pool follows the answers, a failing server keeps
the last addresses, NXDOMAIN empties the set."""
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import config, free_port, get, wait_port, wait_until


def dns_name(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"


class TinyDNS:
    """Answers A queries for the names in `self.records` ({name: [ip, ...]})
    and SRV queries for those in `self.srv` ({name: [(priority, weight,
    port, target), ...]}), with the A records of the targets named in
    `self.additional` in the additional section; NXDOMAIN for others;
    `self.silent` drops every query."""

    def __init__(self):
        self.records = {}
        self.srv = {}
        self.additional = set()
        self.asked = []
        self.silent = False
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            self.queries += 1
            if self.silent:
                continue
            self.sock.sendto(self.answer(data), peer)

    def answer(self, q):
        qid, = struct.unpack("!H", q[:2])
        o, labels = 12, []
        while q[o]:
            labels.append(q[o + 1:o + 1 + q[o]].decode())
            o += 1 + q[o]
        question = q[12:o + 5]
        qtype, = struct.unpack("!H", q[o + 1:o + 3])
        name = ".".join(labels).lower()
        self.asked.append((name, qtype))
        if qtype == 33:
            return self.answer_srv(qid, question, name)
        ips = self.records.get(name)
        rcode = 3 if ips is None else 0
        answers = b""
        if ips and qtype == 1:
            for ip in ips:
                answers += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
        n = len(ips) if ips and qtype == 1 else 0
        head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, n, 0, 0)
        return head + question + answers

    def answer_srv(self, qid, question, name):
        recs = self.srv.get(name)
        if recs is None:
            return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
        answers = b""
        for prio, weight, port, target in recs:
            rdata = struct.pack("!HHH", prio, weight, port) + dns_name(target)
            answers += b"\xc0\x0c" + struct.pack("!HHIH", 33, 1, 5, len(rdata)) + rdata
        extra, n_extra = b"", 0
        for _, _, _, target in recs:
            if target in self.additional:
                for ip in self.records.get(target, []):
                    extra += dns_name(target) + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
                    n_extra += 1
        head = struct.pack("!HHHHHH", qid, 0x8180, 1, len(recs), 0, n_extra)
        return head + question + answers + extra

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        self.sock.close()


class Named(ThreadingHTTPServer):
    daemon_threads = True


def backend(ip, port, hits):
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            hits[ip] = hits.get(ip, 0) + 1
            body = ip.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    s = Named((ip, port), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


@pytest.fixture
def dns():
    d = TinyDNS()
    yield d
    d.stop()


@pytest.fixture
def backends():
    made, hits = [], {}

    def make(ips, port):
        for ip in ips:
            made.append(backend(ip, port, hits))
        return hits
    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def cluster(port, dport, extra=""):
    return """- name: app
  resolve: { interval: 200ms, timeout: 300ms, servers: [127.0.0.1:%d]%s }
  endpoints: [svc.test:%d]
""" % (dport, extra, port)


def eps(aport):
    r = requests.get("http://127.0.0.1:%d/api/v1/clusters/app" % aport, timeout=10).json()
    return sorted(e["address"] for e in r["endpoints"])


def test_dns_endpoints_follow_the_answers(weir_factory, dns, backends):
    bport, port, aport = free_port(), free_port(), free_port()
    hits = backends(["127.0.0.2", "127.0.0.3"], bport)
    dns.records["svc.test"] = ["127.0.0.2"]
    w = weir_factory(config(port, clusters=[cluster(bport, dns.port)], workers=2,
                            top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport), port=port)
    wait_port(aport)
    # resolved before the first request: no 503 while DNS answers
    for i in range(10):
        r = get(w.port, "/a%d" % i)
        assert r.status == 200 and r.body == b"127.0.0.2"
    assert eps(aport) == ["127.0.0.2:%d" % bport]
    src = requests.get("http://127.0.0.1:%d/api/v1/clusters/app" % aport, timeout=10).json()
    assert src["endpoints"][0]["source"] == "dns"
    # a second address appears: both get traffic
    dns.records["svc.test"] = ["127.0.0.2", "127.0.0.3"]
    wait_until(lambda: len(eps(aport)) == 2, what="second address added")
    before = dict(hits)
    for i in range(20):
        assert get(w.port, "/b%d" % i).status == 200
    assert hits["127.0.0.2"] > before.get("127.0.0.2", 0)
    assert hits.get("127.0.0.3", 0) > 0
    # the first one goes away
    dns.records["svc.test"] = ["127.0.0.3"]
    wait_until(lambda: eps(aport) == ["127.0.0.3:%d" % bport], what="first address removed")
    before2 = hits["127.0.0.2"]
    for i in range(10):
        assert get(w.port, "/c%d" % i).body == b"127.0.0.3"
    assert hits["127.0.0.2"] == before2
    w.wait_log("svc.test:%d no longer resolves to 127.0.0.2:%d" % (bport, bport))
    # the server stops answering: the last addresses stay
    dns.silent = True
    w.wait_log("cannot resolve svc.test:%d" % bport)
    assert eps(aport) == ["127.0.0.3:%d" % bport]
    assert get(w.port, "/d").status == 200
    # NXDOMAIN: nothing is there any more -> 503
    dns.silent = False
    del dns.records["svc.test"]
    wait_until(lambda: eps(aport) == [], what="set emptied by NXDOMAIN")
    assert get(w.port, "/e").status == 503


def test_dns_name_removed_by_reload(weir_factory, dns, backends):
    bport, port, aport = free_port(), free_port(), free_port()
    backends(["127.0.0.2"], bport)
    dns.records["svc.test"] = ["127.0.0.2"]
    text = config(port, clusters=[cluster(bport, dns.port)],
                  top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport)
    w = weir_factory(text, port=port)
    wait_port(aport)
    assert eps(aport) == ["127.0.0.2:%d" % bport]
    w.reload(config(port, clusters=["- name: app\n  endpoints: [127.0.0.1:%d]\n" % bport],
                    top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport))
    assert eps(aport) == ["127.0.0.1:%d" % bport]
    w.wait_log("no longer has its name")
    n = dns.queries
    import time
    time.sleep(0.6)  # three intervals: the name is no longer resolved
    assert dns.queries == n


def test_dns_config_errors(tmp_path):
    import subprocess
    from conftest import WEIR_BIN
    port = free_port()
    cases = [
        ("- name: app\n  resolve: { interval: 1s }\n  endpoints: [127.0.0.1:80]\n",
         "'resolve' is used only when an endpoint is a host name"),
        ("- name: app\n  endpoints: [bad_name:80]\n", "bad address"),
        ("- name: app\n  resolve: { family: ipv5 }\n  endpoints: [svc.test:80]\n", "family"),
        ("- name: app\n  endpoints: [svc.test:80, svc.test:80]\n", "duplicate endpoint"),
    ]
    for cl, msg in cases:
        p = tmp_path / "w.yaml"
        p.write_text(config(port, clusters=[cl]))
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "w.yaml:" in r.stderr, r.stderr


def srv_cluster(dport, extra=""):
    return """- name: app
  balance: weighted_round_robin
  resolve: { srv: _http._tcp.svc.test, interval: 200ms, timeout: 300ms, servers: [127.0.0.1:%d]%s }
""" % (dport, extra)


def weights(aport):
    r = requests.get("http://127.0.0.1:%d/api/v1/clusters/app" % aport, timeout=10).json()
    return {e["address"]: e["weight"] for e in r["endpoints"]}


def spread(w, hits, n, tag):
    before = dict(hits)
    for i in range(n):
        assert get(w.port, "/%s%d" % (tag, i)).status == 200
    return {ip: hits.get(ip, 0) - before.get(ip, 0) for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4")}


def test_srv_gives_endpoints_ports_and_weights(weir_factory, dns, backends):
    p2, p3, p4, port, aport = free_port(), free_port(), free_port(), free_port(), free_port()
    hits = backends(["127.0.0.2"], p2)
    backends(["127.0.0.3"], p3)
    backends(["127.0.0.4"], p4)
    a, b, c = "127.0.0.2:%d" % p2, "127.0.0.3:%d" % p3, "127.0.0.4:%d" % p4
    dns.records.update({"a.svc.test": ["127.0.0.2"], "b.svc.test": ["127.0.0.3"],
                        "c.svc.test": ["127.0.0.4"]})
    dns.additional = {"a.svc.test"}  # b.svc.test is asked for (A) on its own
    # priority 10 is used; c (priority 20) is a fallback and stays out
    dns.srv["_http._tcp.svc.test"] = [(10, 1, p2, "a.svc.test"), (10, 3, p3, "b.svc.test"),
                                      (20, 5, p4, "c.svc.test")]
    text = config(port, clusters=[srv_cluster(dns.port)], workers=1,
                  top_extra="admin: { listen: 127.0.0.1:%d }\n" % aport)
    w = weir_factory(text, port=port)
    wait_port(aport)
    assert weights(aport) == {a: 1, b: 3}
    w.reload(text)  # the file still names the service: its endpoints stay
    assert weights(aport) == {a: 1, b: 3}
    assert ("b.svc.test", 1) in dns.asked and ("a.svc.test", 1) not in dns.asked
    assert ("c.svc.test", 1) not in dns.asked
    # smooth weighted round robin on one worker: exactly 1:3
    assert spread(w, hits, 40, "x") == {"127.0.0.2": 10, "127.0.0.3": 30, "127.0.0.4": 0}
    # the weights change in the answer: the pool follows
    dns.srv["_http._tcp.svc.test"] = [(10, 3, p2, "a.svc.test"), (10, 1, p3, "b.svc.test"),
                                      (20, 5, p4, "c.svc.test")]
    wait_until(lambda: weights(aport) == {a: 3, b: 1}, what="weights follow the SRV answer")
    assert spread(w, hits, 40, "y") == {"127.0.0.2": 30, "127.0.0.3": 10, "127.0.0.4": 0}
    # the priority-10 records go: the next group takes over
    dns.srv["_http._tcp.svc.test"] = [(20, 5, p4, "c.svc.test")]
    wait_until(lambda: weights(aport) == {c: 5}, what="the fallback group in use")
    assert spread(w, hits, 8, "z") == {"127.0.0.2": 0, "127.0.0.3": 0, "127.0.0.4": 8}
    w.wait_log("_http._tcp.svc.test no longer resolves to %s" % a)
    # NXDOMAIN for the service: nothing there -> 503
    del dns.srv["_http._tcp.svc.test"]
    wait_until(lambda: weights(aport) == {}, what="set emptied by NXDOMAIN")
    assert get(w.port, "/e").status == 503


def test_srv_config(tmp_path):
    import subprocess
    from conftest import WEIR_BIN
    port = free_port()
    cases = [
        ("- name: app\n  resolve: { srv: 'bad name' }\n", "bad SRV name"),
        ("- name: app\n  balance: round_robin\n", "missing required key 'endpoints'"),
    ]
    for cl, msg in cases:
        p = tmp_path / "w.yaml"
        p.write_text(config(port, clusters=[cl]))
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "w.yaml:" in r.stderr, r.stderr
    p.write_text(config(port, clusters=["- name: app\n  resolve: { srv: _http._tcp.svc.test }\n"]))
    r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
