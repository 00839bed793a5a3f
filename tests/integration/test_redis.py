"""weir as a Redis sharding proxy, against real redis-server processes:
commands and replies, key placement, pipelines, multi-key split and merge,
cross-shard refusals, errors like Redis's, malformed RESP, replica reads,
failures and reload."""
import socket
import time
import zlib

import pytest
import redis

from conftest import free_port, wait_until
from redis_helpers import Shards, raw_exchange, redis_config


@pytest.fixture(scope="module")
def shards3():
    s = Shards(3)
    yield s
    s.stop()


@pytest.fixture
def proxy3(shards3, weir_factory):
    """weir over 3 primaries, hash: crc32a, distribution: hash (mod 3)."""
    shards3.flush()
    port = free_port()
    weir_factory(redis_config(port, shards3, extra="distribution: hash\nhash: crc32a\n"
                              "commands: { keys: true, flush: true }"))
    c = redis.Redis(port=port, socket_timeout=10)
    yield port, c
    c.close()


def crc_shard(key, n=3):
    return zlib.crc32(key.encode()) % n


def test_single_key_commands_land_on_their_shard(shards3, proxy3):
    port, c = proxy3
    for i in range(60):
        k = "key:%d" % i
        assert c.set(k, "v%d" % i) is True
        assert c.get(k) == b"v%d" % i
        assert shards3.holder(k) == [crc_shard(k)]
    assert c.incr("counter") == 1
    assert c.incrby("counter", 5) == 6
    assert c.hset("h", mapping={"a": 1, "b": 2}) == 2
    assert c.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert c.rpush("l", "x", "y", "z") == 3
    assert c.lrange("l", 0, -1) == [b"x", b"y", b"z"]
    assert c.sadd("s", "a", "b") == 2
    assert c.zadd("z", {"m": 1.5}) == 1
    assert c.zscore("z", "m") == 1.5
    assert c.expire("l", 100) is True
    assert 0 < c.ttl("l") <= 100
    assert c.getdel("key:1") == b"v1"
    assert c.get("key:1") is None
    assert c.object("encoding", "counter") == b"int"
    assert c.memory_usage("h") > 0
    assert c.pfadd("hll", "a", "b", "c") == 1
    assert c.pfcount("hll") == 3
    assert c.xadd("st", {"f": "v"}, id="1-1") == b"1-1"
    assert c.xlen("st") == 1
    assert c.setbit("bits", 7, 1) == 0
    assert c.bitcount("bits") == 1
    for k in ("counter", "h", "l", "s", "z", "hll", "st", "bits"):
        assert shards3.holder(k) == [crc_shard(k)], k


def test_pipeline_of_mixed_keys_comes_back_in_order(proxy3):
    port, c = proxy3
    p = c.pipeline(transaction=False)
    for i in range(300):
        p.set("p:%d" % i, i)
        p.get("p:%d" % i)
        p.incr("pc:%d" % (i % 7))
    out = p.execute()
    for i in range(300):
        assert out[3 * i] is True
        assert out[3 * i + 1] == str(i).encode()
    # the counters went up in order
    seen = {}
    for i in range(300):
        k = i % 7
        seen[k] = seen.get(k, 0) + 1
        assert out[3 * i + 2] == seen[k]


def test_multi_key_split_and_merge(shards3, proxy3):
    port, c = proxy3
    keys = ["m:%d" % i for i in range(30)]
    assert len({crc_shard(k) for k in keys}) == 3
    assert c.mset({k: "v-" + k for k in keys}) is True
    for k in keys:
        assert shards3.holder(k) == [crc_shard(k)]
    got = c.mget(keys[::-1] + ["missing"] + keys[:3])
    assert got == [("v-" + k).encode() for k in keys[::-1]] + [None] + [("v-" + k).encode() for k in keys[:3]]
    assert c.exists(*keys, "missing", keys[0]) == 31
    assert c.touch(*keys[:10]) == 10
    assert c.delete(*keys[:10], "missing") == 10
    assert c.unlink(*keys[10:]) == 20
    assert c.exists(*keys) == 0
    assert c.dbsize() == 0


def test_same_shard_commands_and_crossshard_errors(proxy3):
    port, c = proxy3
    a, b = "a1", "a4"
    while crc_shard(a) == crc_shard(b):
        b += "x"
    c.set(a, "1")
    with pytest.raises(redis.ResponseError, match="^CROSSSHARD"):
        c.rename(a, b)
    assert c.get(a) == b"1"  # nothing happened
    with pytest.raises(redis.ResponseError, match="^CROSSSHARD"):
        c.sinterstore("dst", [a, b])
    with pytest.raises(redis.ResponseError, match="^CROSSSHARD"):
        c.msetnx({a: 1, b: 2})
    # hash tags keep keys together: the same commands work
    assert c.set("{u1}:x", "1")
    assert c.rename("{u1}:x", "{u1}:y") is True
    assert c.get("{u1}:y") == b"1"
    assert c.sadd("{u1}:s1", "a", "b") == 2
    assert c.sadd("{u1}:s2", "b", "c") == 2
    assert c.sinter("{u1}:s1", "{u1}:s2") == {b"b"}
    assert c.sunionstore("{u1}:s3", ["{u1}:s1", "{u1}:s2"]) == 3
    assert c.msetnx({"{u1}:n1": 1, "{u1}:n2": 2}) is True
    assert c.lmove("{u1}:l1", "{u1}:l2") is None
    assert c.eval("return redis.call('get', KEYS[1])", 1, "{u1}:y") == b"1"
    with pytest.raises(redis.ResponseError, match="without a key"):
        c.eval("return 1", 0)


def test_errors_are_redis_errors_and_connection_stays(proxy3):
    port, c = proxy3
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("NOSUCHCMD", "a", "b")
    assert str(e.value) == "unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("GET")
    assert str(e.value) == "wrong number of arguments for 'get' command"
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("MSET", "a", "1", "b")
    assert str(e.value) == "wrong number of arguments for 'mset' command"
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command("SWAPDB", "0", "1")
    assert str(e.value) == "unsupported command 'SWAPDB'"
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.set("str", "x")
        c.lpush("str", "y")
    assert c.ping() is True


def test_connection_commands(proxy3):
    port, c = proxy3
    assert c.echo("hi") == b"hi"
    assert c.execute_command("SELECT", "0") is True
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        c.execute_command("SELECT", "1")
    assert c.client_setname("me") is True
    assert c.client_getname() in (b"me", "me")
    hello = c.execute_command("HELLO", "2")
    assert b"proto" in hello
    with pytest.raises(redis.ResponseError, match="NOPROTO"):
        c.execute_command("HELLO", "4")  # HELLO 3: test_redis_resp3.py
    info = c.info()
    assert info["redis_mode"] == "standalone"
    assert "cluster" in c.info("weir")
    assert c.command_count() > 100
    assert c.execute_command("COMMAND", "INFO", "get")["get"]["arity"] == 2
    assert c.config_get("databases") == {"databases": "1"}
    assert len(c.time()) == 2
    assert raw_exchange(port, b"PING\r\nQUIT\r\n") == b"+PONG\r\n+OK\r\n"
    with pytest.raises(redis.ResponseError, match="without any password"):
        c.execute_command("AUTH", "x")


def test_keyspace_fanout(proxy3):
    port, c = proxy3
    keys = ["f:%d" % i for i in range(20)]
    c.mset({k: 1 for k in keys})
    assert c.dbsize() == 20
    assert sorted(c.keys("f:*")) == sorted(k.encode() for k in keys)
    assert c.flushdb() is True
    assert c.dbsize() == 0


def test_malformed_resp_gets_error_and_close_nothing_sent(shards3, proxy3):
    port, c = proxy3
    def calls():  # per primary, the commands a client could have sent (weir's own checks excluded)
        out = []
        for p in shards3.primaries:
            st = p.client.info("commandstats")
            out.append(sum(st.get("cmdstat_" + c, {}).get(k, 0) for c in ("get", "set")
                           for k in ("calls", "rejected_calls", "failed_calls")))
        return out
    before = calls()
    out = raw_exchange(port, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nSET\r\n:1\r\n*1\r\n$4\r\nPING\r\n")
    assert out == b"+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n"
    out = raw_exchange(port, b"*2\r\n$3\r\nGET\r\n$-5\r\nabc\r\n")
    assert out == b"-ERR Protocol error: invalid bulk length\r\n"
    out = raw_exchange(port, b"*zz\r\n")
    assert out == b"-ERR Protocol error: invalid multibulk length\r\n"
    out = raw_exchange(port, b"*2\r\n$3\r\nSET\r\n$1\r\nkk\r\n")
    assert out == b"-ERR Protocol error: expected CRLF\r\n"
    # nothing of the bad commands arrived (weir's health checks run meanwhile:
    # total_commands_processed would count their PINGs and INFOs)
    assert calls() == before


def test_large_reply_streams(shards3, proxy3):
    port, c = proxy3
    big = b"x" * (3 << 20)
    k = "big"
    shards3.primaries[crc_shard(k)].client.set(k, big)
    assert c.get(k) == big
    assert c.strlen(k) == len(big)
    vals = c.mget([k, "nothere", k])
    assert vals == [big, None, big]


def test_blocking_commands(proxy3):
    port, c = proxy3
    c2 = redis.Redis(port=port, socket_timeout=10)
    assert c.blpop("q1", timeout=0.1) is None
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(c.blpop("q1", timeout=5)))
    t.start()
    time.sleep(0.2)
    c2.rpush("q1", "job")
    t.join(10)
    assert got == [(b"q1", b"job")]
    assert c.ping()
    c2.close()


def test_auth(shards3, weir_factory):
    port = free_port()
    weir_factory(redis_config(port, shards3, extra="password: s3cret"))
    c = redis.Redis(port=port, socket_timeout=10)
    with pytest.raises(redis.AuthenticationError):
        c.get("x")
    c2 = redis.Redis(port=port, password="s3cret", socket_timeout=10)
    assert c2.set("x", "1") is True
    with pytest.raises(redis.ResponseError, match="WRONGPASS"):
        redis.Redis(port=port, password="nope", socket_timeout=10).ping()


def test_placement_jump_range_directory(shards3, weir_factory):
    def jump(key, n):
        b, j = -1, 0
        while j < n:
            b = j
            key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
            j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
        return b

    for extra, expect in [
        ("distribution: jump\nhash: crc32a", lambda k: jump(zlib.crc32(k.encode()), 3)),
        ("distribution: range\nrange:\n  by: key\n  map:\n    - { below: h, shard: 2 }\n"
         "    - { below: q, shard: 0 }\n    - { shard: 1 }",
         lambda k: 2 if k < "h" else 0 if k < "q" else 1),
        ("distribution: range\nrange:\n  by: id\n  map:\n    - { below: 100, shard: 1 }\n"
         "    - { shard: 2 }", lambda k: 1 if int(k.split(":")[1]) < 100 else 2),
        ("distribution: directory\ndirectory:\n  map:\n    - { prefix: 'user:', shard: 1 }\n"
         "    - { prefix: 'order:', shard: 2 }\n  default: 0",
         lambda k: 1 if k.startswith("user:") else 2 if k.startswith("order:") else 0),
    ]:
        shards3.flush()
        port = free_port()
        w = weir_factory(redis_config(port, shards3, extra=extra))
        c = redis.Redis(port=port, socket_timeout=10)
        keys = ["user:%d" % i for i in range(0, 300, 7)] + ["order:%d" % i for i in range(5)] + \
               ["apple:1", "kiwi:2", "zebra:3"]
        for k in keys:
            c.set(k, 1)
        for k in keys:
            assert shards3.holder(k) == [expect(k)], (extra, k)
        c.close()
        w.stop()


def test_range_without_catch_all_gives_error(shards3, weir_factory):
    port = free_port()
    weir_factory(redis_config(port, shards3, extra="distribution: range\nrange:\n  map:\n"
                              "    - { below: m, shard: 0 }"))
    c = redis.Redis(port=port, socket_timeout=10)
    assert c.set("abc", 1)
    with pytest.raises(redis.ResponseError, match="no shard for key"):
        c.set("xyz", 1)
    assert c.ping()


def test_replica_reads_and_killed_replica(weir_factory):
    shards = Shards(2, replicas=1)
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="read_from: prefer_replica\n"
                                  "distribution: hash\nhash: crc32a\n"
                                  "health_check: { interval: 200ms }"))
        c = redis.Redis(port=port, socket_timeout=10)
        keys = ["r:%d" % i for i in range(40)]
        for k in keys:
            c.set(k, k)
        for reps in shards.replicas:
            wait_until(lambda: reps[0].client.dbsize() > 0, what="replication")
        before_p = sum(p.commandstats("get") for p in shards.primaries)
        for k in keys:
            wait_until(lambda: c.get(k) == k.encode(), what="replica has %s" % k)
        assert sum(r[0].commandstats("get") for r in shards.replicas) >= len(keys)
        assert sum(p.commandstats("get") for p in shards.primaries) == before_p
        # writes go to primaries only (a replica would answer READONLY; its
        # SET count is just what replication applied)
        assert sum(r[0].commandstats("set") for r in shards.replicas) == len(keys)
        # a replica dies: reads still succeed
        shards.replicas[0][0].stop()
        for _ in range(3):
            for k in keys:
                assert c.get(k) == k.encode()
        assert c.mget(keys) == [k.encode() for k in keys]
    finally:
        shards.stop()


def test_dead_primary_gives_clear_error_for_its_keys(weir_factory):
    shards = Shards(2)
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="distribution: hash\nhash: crc32a\n"
                                  "health_check: { interval: 200ms }"))
        c = redis.Redis(port=port, socket_timeout=10)
        k0 = next(k for k in ("a%d" % i for i in range(100)) if zlib.crc32(k.encode()) % 2 == 0)
        k1 = next(k for k in ("a%d" % i for i in range(100)) if zlib.crc32(k.encode()) % 2 == 1)
        assert c.set(k0, 1) and c.set(k1, 1)
        shards.primaries[0].stop()
        for _ in range(3):
            with pytest.raises(redis.ResponseError, match="weir: .*(down|failed)"):
                c.get(k0)
        assert c.get(k1) == b"1"  # never remapped
        with pytest.raises(redis.ResponseError, match="weir"):
            c.mget(k0, k1)
    finally:
        shards.stop()


def test_reload_shard_map_keeps_clients(shards3, weir_factory):
    shards3.flush()
    port = free_port()
    cfg1 = redis_config(port, shards3, extra="distribution: directory\ndirectory:\n  map:\n"
                        "    - { prefix: 'x', shard: 0 }\n  default: 0")
    w = weir_factory(cfg1)
    c = redis.Redis(port=port, socket_timeout=10)
    assert c.set("k1", "a")
    assert shards3.holder("k1") == [0]
    w.reload(cfg1.replace("default: 0", "default: 2"))
    assert c.set("k2", "b")  # same connection
    assert shards3.holder("k2") == [2]
    assert c.get("k1") is None  # it is on shard 0, the map says 2 now


def test_config_errors(tmp_path, shards3):
    import subprocess
    from conftest import WEIR_BIN
    port = free_port()
    bad = redis_config(port, shards3).replace("redis_cluster: c", "redis_cluster: nope")
    p = tmp_path / "bad.yaml"
    p.write_text(bad)
    r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "redis cluster 'nope' which is not defined" in r.stderr + r.stdout
    bad = redis_config(port, shards3, extra="distribution: hash\nauto_eject: true")
    p.write_text(bad)
    r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "auto_eject works only with distribution consistent_hash" in r.stderr + r.stdout


def test_client_gone_mid_pipeline_leaves_proxy_healthy(shards3, proxy3):
    port, c = proxy3
    big = "v" * 50000
    shards3.primaries[0].client.set("gone0", big)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port))
        cmds = b"".join(b"*4\r\n$4\r\nMGET\r\n$5\r\ngone0\r\n$2\r\nk1\r\n$2\r\nk2\r\n" for _ in range(50))
        s.sendall(cmds + b"*2\r\n$4\r\nLLEN\r\n$2\r\nq9\r\n")
        s.close()  # replies still in flight become orphans
    c2 = redis.Redis(port=port, socket_timeout=10)
    assert c2.mget(["k1", "k2"]) == [None, None]
    assert c2.set("after", "1") is True
    assert c2.get("after") == b"1"
