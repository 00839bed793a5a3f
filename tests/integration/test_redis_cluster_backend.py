"""Redis Cluster as the backend of weir's Redis proxy (`cluster: [seeds]`):
a real 3-primary, 3-replica cluster (redis-server --cluster-enabled yes,
redis-cli --cluster create), a cluster-unaware client (redis.Redis) through
weir. Keys of every slot, MSET/MGET across slots, CROSSSLOT, a slot moved
by hand under load (MOVED / ASK followed by weir) and a manual failover
under load, each checked against what the cluster itself holds."""
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest
import redis
from redis.cluster import RedisCluster

from conftest import WEIR_BIN, free_port, wait_port, wait_until


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def slot_of(key):
    k = key.encode()
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    return crc16(k) & 16383


def cluster_port():
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class ClusterNode:
    def __init__(self, port, base):
        self.port = port
        self.addr = "127.0.0.1:%d" % port
        self.dir = tempfile.mkdtemp(prefix="weir-rc-", dir=base)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
             "--dir", self.dir, "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, self.proc, what="redis-server")
        self.client = redis.Redis(port=port, socket_timeout=10, decode_responses=True)

    def node_id(self):
        return self.client.execute_command("CLUSTER", "MYID")

    def role(self):
        return self.client.execute_command("ROLE")[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Cluster:
    """3 primaries and 3 replicas on free ports, created with redis-cli."""

    def __init__(self, base):
        self.nodes = []
        try:
            for _ in range(6):
                self.nodes.append(ClusterNode(cluster_port(), base))
            subprocess.run(["redis-cli", "--cluster", "create"] + [n.addr for n in self.nodes] +
                           ["--cluster-replicas", "1", "--cluster-yes"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60)
            for n in self.nodes:
                wait_until(lambda: "cluster_state:ok" in n.client.execute_command("CLUSTER", "INFO"),
                           timeout=30, what="cluster_state:ok on %s" % n.addr)
            for n in self.nodes:
                if n.role() == "slave":
                    wait_until(lambda: n.client.info("replication").get("master_link_status") == "up",
                               timeout=30, what="replica %s in sync" % n.addr)
        except Exception:
            self.stop()
            raise

    def client(self):
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, decode_responses=True)

    def by_slot(self, slot):
        """The node serving `slot` (its primary), as the cluster says."""
        for lo, hi, primary, *rest in self.nodes[0].client.execute_command("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return next(n for n in self.nodes if n.port == primary[1])
        raise AssertionError("slot %d not served" % slot)

    def primaries(self):
        return [n for n in self.nodes if n.role() == "master"]

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="module")
def cluster():
    if not shutil.which("redis-cli"):
        pytest.fail("redis-cli not installed: run scripts/deps.sh test")
    base = tempfile.mkdtemp(prefix="weir-rcluster-")
    c = Cluster(base)
    yield c
    c.stop()
    shutil.rmtree(base, ignore_errors=True)


def weir_yaml(port, cluster, extra=""):
    return ("workers: 2\nlog: { level: info }\nlisteners:\n  - name: cache\n"
            "    listen: 127.0.0.1:%d\n    protocol: redis\n    redis_cluster: rc\n"
            "redis_clusters:\n  - name: rc\n    health_check: { interval: 500ms }\n"
            "    cluster: [%s]\n%s" % (port, cluster.nodes[0].addr, extra))


def start_weir(weir_factory, cluster, extra=""):
    port = free_port()
    w = weir_factory(weir_yaml(port, cluster, extra))
    c = redis.Redis(port=port, socket_timeout=10, decode_responses=True)

    def ready():
        try:
            return c.set("weir:ready", "1") is True
        except redis.ResponseError:
            return False  # -CLUSTERDOWN until the first slot map is in
    wait_until(ready, what="weir has the slot map")
    return w, c, port


def key_per_slot():
    """One key for each of the 16384 slots."""
    keys = [None] * 16384
    i = left = 0
    left = 16384
    while left:
        k = "k%d" % i
        s = slot_of(k)
        if keys[s] is None:
            keys[s] = k
            left -= 1
        i += 1
    return keys


def test_keys_of_every_slot_and_multi_key(weir_factory, cluster):
    w, c, _ = start_weir(weir_factory, cluster)
    keys = key_per_slot()

    def rejected():  # MOVED / ASK replies the primaries gave (Redis 7 counts them)
        return sum(n.client.info("commandstats").get("cmdstat_set", {}).get("rejected_calls", 0)
                   for n in cluster.primaries())
    before = rejected()
    p = c.pipeline(transaction=False)
    for i, k in enumerate(keys):
        p.set(k, "v%d" % i)
    assert all(r is True for r in p.execute())
    assert rejected() == before  # weir sent every key straight to its slot's primary
    p = c.pipeline(transaction=False)
    for k in keys:
        p.get(k)
    assert p.execute() == ["v%d" % i for i in range(16384)]
    direct = cluster.client()
    for i in range(0, 16384, 97):  # the cluster itself holds them where they belong
        assert direct.get(keys[i]) == "v%d" % i
        assert cluster.by_slot(i).client.get(keys[i]) == "v%d" % i

    # MSET / MGET / DEL / EXISTS across slots: split by slot, merged
    pairs = {"m:%d" % i: "x%d" % i for i in range(50)}
    assert len({slot_of(k) for k in pairs}) > 40
    assert c.mset(pairs) is True
    assert c.mget(list(pairs)) == list(pairs.values())
    assert c.mget(["m:1", "nope", "m:2"]) == ["x1", None, "x2"]
    for k, v in pairs.items():
        assert direct.get(k) == v
    assert c.exists(*pairs) == 50
    assert c.delete(*list(pairs)[:10], "nope") == 10
    # keys of one slot (hash tags) go as one command
    assert c.mset({"{u1}:a": "1", "{u1}:b": "2"}) is True
    assert c.mget("{u1}:a", "{u1}:b") == ["1", "2"]
    assert direct.get("{u1}:b") == "2"
    # INFO: the primaries of the map; keyspace and DBSIZE summed over them
    info = c.info("weir")
    assert info["distribution"] == "redis_cluster" and info["shards"] == 3
    assert sum(info["shard%d" % i]["slots"] for i in range(3)) == 16384
    assert c.dbsize() == sum(n.client.dbsize() for n in cluster.primaries())
    assert c.info("keyspace")["db0"]["keys"] == c.dbsize()


def test_crossslot(weir_factory, cluster):
    w, c, port = start_weir(weir_factory, cluster)
    a, b = "x:a", "x:b"
    assert slot_of(a) != slot_of(b)
    with pytest.raises(redis.ResponseError, match="^CROSSSLOT Keys in request don't hash to the same slot$"):
        c.rename(a, b)
    with pytest.raises(redis.ResponseError, match="^CROSSSLOT"):
        c.sunionstore(a, b)
    # MULTI across slots: the second key is refused and EXEC aborts, as Redis Cluster does
    raw = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
    conn = raw.connection_pool.get_connection("MULTI")
    conn.send_command("MULTI")
    assert conn.read_response() == "OK"
    conn.send_command("SET", a, "1")
    assert conn.read_response() == "QUEUED"
    conn.send_command("SET", b, "2")
    with pytest.raises(redis.ResponseError, match="^CROSSSLOT"):
        conn.read_response()
    conn.send_command("EXEC")
    with pytest.raises(redis.exceptions.ExecAbortError):
        conn.read_response()
    raw.connection_pool.release(conn)
    assert c.get(a) is None and c.get(b) is None
    # one slot: the transaction runs
    p = c.pipeline(transaction=True)
    p.set("{t}:a", "1").incr("{t}:n").get("{t}:a")
    assert p.execute() == [True, 1, "1"]


class Load(threading.Thread):
    """SET then GET of keys through weir until stopped; every reply checked."""

    def __init__(self, port, keys):
        super().__init__(daemon=True)
        self.c = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
        self.keys = keys
        self.last = {}
        self.errors = []
        self.ops = 0
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            k = self.keys[n % len(self.keys)]
            v = "v%d" % n
            try:
                assert self.c.set(k, v) is True
                self.last[k] = v
                got = self.c.get(k)
                if got != v:
                    self.errors.append("GET %s: %r, expected %r" % (k, got, v))
                p = self.c.pipeline(transaction=False)
                p.mset({k: v, "other:%d" % (n % 7): v})
                p.mget(k, "other:%d" % (n % 7))
                r = p.execute()
                if r != [True, [v, v]]:
                    self.errors.append("pipeline: %r" % (r,))
                self.last["other:%d" % (n % 7)] = v
            except Exception as e:  # noqa: BLE001 - any error fails the test
                self.errors.append("%s: %s" % (type(e).__name__, e))
            n += 1
            self.ops = n

    def stop(self):
        self.halt.set()
        self.join(30)


def migrate_slot(cluster, slot, src, dst):
    """Moves `slot` from src to dst by hand, as redis-cli --cluster reshard does."""
    sid, did = src.node_id(), dst.node_id()
    dst.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
    src.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", did)
    while True:
        keys = src.client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
        if not keys:
            break
        src.client.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
    for n in cluster.primaries():
        n.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)


def test_reshard_under_load(weir_factory, cluster):
    w, c, port = start_weir(weir_factory, cluster)
    keys = ["{mig}:%d" % i for i in range(200)] + ["free:%d" % i for i in range(50)]
    slot = slot_of("{mig}")
    for k in keys[:200]:
        assert c.set(k, "seed") is True
    load = Load(port, keys)
    load.start()
    wait_until(lambda: load.ops > 50, what="load running")
    src = cluster.by_slot(slot)
    dst = next(n for n in cluster.primaries() if n.port != src.port)
    migrate_slot(cluster, slot, src, dst)
    before = load.ops
    wait_until(lambda: load.ops > before + 200, timeout=30, what="load after the move")
    load.stop()
    assert load.errors == []
    assert cluster.by_slot(slot).port == dst.port
    direct = cluster.client()
    for k, v in load.last.items():
        assert direct.get(k) == v, k
    assert dst.client.get(keys[0]) is not None  # the data did move
    # weir followed the redirections and fetched the new map
    wait_until(lambda: "slot map from" in w.errlog(), what="map logged")


def test_failover_under_load(weir_factory, cluster):
    w, c, port = start_weir(weir_factory, cluster)
    keys = ["fo:%d" % i for i in range(300)]
    load = Load(port, keys)
    load.start()
    wait_until(lambda: load.ops > 50, what="load running")
    old = cluster.by_slot(slot_of(keys[0]))
    replica = next(n for n in cluster.nodes if n.role() == "slave" and
                   n.client.info("replication").get("master_port") == old.port)
    assert replica.client.execute_command("CLUSTER", "FAILOVER") == "OK"
    wait_until(lambda: replica.role() == "master" and old.role() == "slave", timeout=30,
               what="failover done")
    wait_until(lambda: cluster.by_slot(slot_of(keys[0])).port == replica.port, timeout=30,
               what="the cluster sees the new primary")
    before = load.ops
    wait_until(lambda: load.ops > before + 200, timeout=30, what="load after the failover")
    load.stop()
    assert load.errors == []
    direct = cluster.client()
    for k, v in load.last.items():
        assert direct.get(k) == v, k


def test_read_from_replica(weir_factory, cluster):
    w, c, port = start_weir(weir_factory, cluster, "    read_from: prefer_replica\n")
    assert c.set("rr:1", "x") is True
    src = cluster.by_slot(slot_of("rr:1"))
    replica = next(n for n in cluster.nodes if n.role() == "slave" and
                   n.client.info("replication").get("master_port") == src.port)
    wait_until(lambda: replica.client.execute_command("READONLY") and
               replica.client.get("rr:1") == "x", what="replicated")
    gets = lambda: replica.client.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    def twenty_reads_on_the_replica():
        # a failover in an earlier test may leave a node's view of the roles behind for
        # a moment; weir's next map refresh (health_check.interval) catches up
        before = gets()
        for _ in range(20):
            assert c.get("rr:1") == "x"
        return gets() - before >= 20
    wait_until(twenty_reads_on_the_replica, timeout=30, what="reads served by the replica")


def test_tryagain_while_a_slot_moves(weir_factory, cluster):
    """MGET of two keys of a slot half moved: the source answers TRYAGAIN
    (one key left, one gone); weir tries again until the move is done."""
    w, c, port = start_weir(weir_factory, cluster)
    a, b = "{ta}:a", "{ta}:b"
    slot = slot_of(a)
    assert c.mset({a: "1", b: "2"}) is True
    src = cluster.by_slot(slot)
    dst = next(n for n in cluster.primaries() if n.port != src.port)
    sid, did = src.node_id(), dst.node_id()
    dst.client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
    src.client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", did)
    others = [k for k in src.client.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000) if k != b]
    assert a in others
    src.client.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *others)
    got = {}
    t = threading.Thread(target=lambda: got.update(r=c.mget(a, b)), daemon=True)
    t.start()
    wait_until(lambda: src.client.info("commandstats").get("cmdstat_mget", {})
               .get("rejected_calls", 0) > 0, what="TRYAGAIN given")
    assert not got  # still waiting: weir did not pass TRYAGAIN on
    src.client.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", b)
    for n in cluster.primaries():
        n.client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", did)
    t.join(20)
    assert got.get("r") == ["1", "2"]


def test_connections_lost_under_load(weir_factory, cluster):
    """The primaries close weir's connections again and again: commands
    in flight on them are sent again, the client sees no error."""
    w, c, port = start_weir(weir_factory, cluster)
    load = Load(port, ["cl:%d" % i for i in range(100)])
    load.start()
    wait_until(lambda: load.ops > 50, what="load running")
    for _ in range(30):
        before = load.ops
        for n in cluster.primaries():
            n.client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        wait_until(lambda: load.ops > before + 5, what="load goes on")
    load.stop()
    assert load.errors == []
    direct = cluster.client()
    for k, v in load.last.items():
        assert direct.get(k) == v, k


def test_config_errors(tmp_path):
    p = tmp_path / "w.yaml"
    head = ("listeners:\n  - name: cache\n    listen: 127.0.0.1:%d\n    protocol: redis\n"
            "    redis_cluster: rc\nredis_clusters:\n  - name: rc\n" % free_port())
    for body, msg in (
            ("    cluster: [127.0.0.1:7000]\n    shards:\n      - { primary: 127.0.0.1:7001 }\n",
             "'cluster' (a Redis Cluster's seed nodes) and 'shards' exclude each other"),
            ("    read_from: primary\n",
             "a redis cluster needs 'shards' (weir places the keys) or 'cluster'"),
            ("    cluster: [127.0.0.1:7000]\n    hash: crc32\n",
             "with 'cluster' Redis Cluster places the keys"),
            ("    cluster: [127.0.0.1:7000]\n    auto_eject: true\n",
             "with 'cluster' Redis Cluster places the keys"),
            ("    cluster: []\n", "'cluster'"),
            ("    cluster: [nowhere]\n", "bad address 'nowhere'")):
        p.write_text(head + body)
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr + r.stdout, (body, r.stderr + r.stdout)
        print(r.stderr.strip())
    p.write_text(head + "    cluster: [127.0.0.1:7000, 127.0.0.1:7001]\n    read_from: prefer_replica\n")
    r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_reload_keeps_the_slot_map(weir_factory, cluster):
    w, c, port = start_weir(weir_factory, cluster)
    for i in range(3):
        w.reload(weir_yaml(port, cluster, "    connections: %d\n" % (i + 2)))
        for k in range(100):  # at once: the new snapshot inherits the map (or fetches it at once)
            assert c.set("rl:%d" % k, i) is True
            assert c.get("rl:%d" % k) == str(i)


def test_big_split_commands(weir_factory, cluster):
    """MSET / MGET bigger than weir's read buffer stream per key, each key
    to its slot's primary (one connection per primary for the command)."""
    w, c, port = start_weir(weir_factory, cluster)
    big = "x" * 100000
    pairs = {"big:%d" % i: (big + str(i) if i % 3 == 0 else "s%d" % i) for i in range(30)}
    p = c.pipeline(transaction=False)
    p.set("before", "1")
    p.mset(pairs)
    p.get("before")
    p.mget(list(pairs))
    p.delete(*pairs)
    r = p.execute()
    assert r[:3] == [True, True, "1"]
    assert r[3] == list(pairs.values())
    assert r[4] == 30
    direct = cluster.client()
    assert direct.exists(*pairs) == 0
