"""Helpers for weir's Redis proxy tests: real redis-server processes on free
ports (primaries, and replicas started with --replicaof), and the YAML of a
redis listener in front of them. Everything started is stopped by stop()."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import IO_TIMEOUT, free_port, wait_port, wait_until

import redis

REDIS_SERVER = "redis-server"
REDIS_SENTINEL = "redis-sentinel"


class RedisProc:
    def __init__(self, port, replicaof=None):
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        # its own directory: a replica writes the RDB of its first sync to disk
        self.dir = tempfile.mkdtemp(prefix="weir-redis-")
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                "--dir", self.dir]
        if replicaof is not None:
            args += ["--replicaof", "127.0.0.1", str(replicaof)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, self.proc, what="redis-server")
        self.client = redis.Redis(port=port, socket_timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def commandstats(self, name):
        s = self.client.info("commandstats").get("cmdstat_" + name)
        return s["calls"] if s else 0


class Shards:
    """n primaries, each with `replicas` replicas."""

    def __init__(self, n, replicas=0):
        self.primaries = []
        self.replicas = []
        try:
            for _ in range(n):
                p = RedisProc(free_port())
                self.primaries.append(p)
                self.replicas.append([RedisProc(free_port(), replicaof=p.port) for _ in range(replicas)])
            for reps in self.replicas:
                for r in reps:
                    wait_until(lambda: r.client.info("replication").get("master_link_status") == "up",
                               what="replica %s in sync" % r.addr)
        except Exception:
            self.stop()
            raise

    def all(self):
        return self.primaries + [r for reps in self.replicas for r in reps]

    def flush(self):
        for p in self.primaries:
            if p.proc.poll() is None:
                p.client.flushall()
        for reps in self.replicas:
            for r in reps:
                if r.proc.poll() is None:
                    wait_until(lambda: r.client.dbsize() == 0, what="replica flushed")

    def stop(self):
        for p in self.all():
            p.stop()

    def yaml(self, with_replicas=True, named=False):
        """The shards: list; `named` gives them fixed names (s0, s1, ...), so
        the consistent-hash ring, built from the names, does not depend on the
        ports they got and a test's keys land on the same shards every run."""
        out = ""
        for i, p in enumerate(self.primaries):
            reps = self.replicas[i] if with_replicas else []
            name = ", name: s%d" % i if named else ""
            if reps:
                out += "      - { primary: %s, replicas: [%s]%s }\n" % (p.addr, ", ".join(r.addr for r in reps), name)
            else:
                out += "      - { primary: %s%s }\n" % (p.addr, name)
        return out

    def holder(self, key):
        """Indexes of the running primaries holding key."""
        return [i for i, p in enumerate(self.primaries) if p.proc.poll() is None and p.client.exists(key)]


def redis_config(port, shards, *, extra="", listener_extra="", workers=1, with_replicas=True,
                 name="c", named=False):
    text = "workers: %d\ndrain_timeout: 5s\nlog: { level: info }\n" % workers
    text += "listeners:\n  - name: cache\n    listen: 127.0.0.1:%d\n    protocol: redis\n" % port
    text += "    redis_cluster: %s\n" % name
    if listener_extra:
        text += "".join("    " + l + "\n" for l in listener_extra.strip("\n").splitlines())
    text += "redis_clusters:\n  - name: %s\n" % name
    if extra:
        text += "".join("    " + l + "\n" for l in extra.strip("\n").splitlines())
    text += "    shards:\n" + shards.yaml(with_replicas, named)
    return text


def raw_exchange(port, data, timeout=5.0):
    """Sends bytes, returns everything received until the server closes or
    `timeout` passes without data."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        s.close()


class SentinelProc:
    """A redis-sentinel watching one master (quorum 1, quick failover)."""

    def __init__(self, port, master_name, master_port, down_after_ms=1000, failover_ms=3000):
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        self.dir = tempfile.mkdtemp(prefix="weir-sentinel-")
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:  # sentinel rewrites its own configuration file
            f.write("port %d\nbind 127.0.0.1\ndir %s\nprotected-mode no\n"
                    "sentinel monitor %s 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds %s %d\n"
                    "sentinel failover-timeout %s %d\n"
                    % (port, self.dir, master_name, master_port, master_name, down_after_ms,
                       master_name, failover_ms))
        self.proc = subprocess.Popen([REDIS_SENTINEL, conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(port, self.proc, what="redis-sentinel")
        self.client = redis.Redis(port=port, socket_timeout=10)

    def master_port(self, name):
        r = self.client.execute_command("SENTINEL", "get-master-addr-by-name", name)
        return int(r[1]) if r else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- for weir's store client (src/store/): a Redis, a 3-node Redis Cluster -----------


class RedisServer:
    def __init__(self, port=None, extra=(), cluster=False, directory=None):
        self.port = port or free_port()
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="weir-store-")
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--loglevel", "warning",
                     "--enable-debug-command", "yes", "--dir", self.dir] + list(extra)
        if cluster:
            self.args += ["--cluster-enabled", "yes", "--cluster-config-file",
                          "nodes-%d.conf" % self.port, "--cluster-node-timeout", "5000"]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, what="redis-server")

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=IO_TIMEOUT, **kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def cluster_port():
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port pair for a cluster node")


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="weir-store-cluster-")
        self.nodes = []
        try:
            for _ in range(3):
                self.nodes.append(RedisServer(port=cluster_port(), cluster=True,
                                              directory=self.dir))
            subprocess.run(["redis-cli", "--cluster", "create"] +
                           ["127.0.0.1:%d" % n.port for n in self.nodes] +
                           ["--cluster-replicas", "0", "--cluster-yes"],
                           check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
            for n in self.nodes:
                wait_until(lambda: n.client().cluster("info")["cluster_state"] == "ok",
                           timeout=30, what="cluster_state:ok on %d" % n.port)
            self.ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode()
                        for n in self.nodes}
        except Exception:
            self.stop()
            raise

    def seeds_yaml(self, extra=""):
        return "  - { name: c, cluster: [%s]%s }\n" % (
            ", ".join("127.0.0.1:%d" % n.port for n in self.nodes), extra)

    def slot(self, key):
        return self.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key)

    def owner(self, slot):
        for start, end, primary, *_ in self.nodes[0].client().execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                port = primary[1]
                return next(n for n in self.nodes if n.port == port)
        raise AssertionError("slot %d not covered" % slot)

    def errorstat(self, node, name):
        raw = node.client().execute_command("INFO", "errorstats")
        if isinstance(raw, bytes):
            raw = raw.decode()
        if isinstance(raw, dict):
            raw = "\n".join("%s:%s" % kv for kv in raw.items())
        m = re.search(r"errorstat_%s:count=(\d+)" % name, str(raw))
        return int(m.group(1)) if m else 0

    def stop(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
