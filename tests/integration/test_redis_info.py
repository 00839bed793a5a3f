"""INFO describes weir as a whole: clients and commands of every worker added
up, keys, hits and misses added up from the primaries, sections selected as
Redis 7 selects them (compared with a real redis-server)."""
import socket
import time

import pytest
import redis

from conftest import free_port, wait_until
from redis_helpers import RedisProc, Shards, redis_config


@pytest.fixture(scope="module")
def env():
    shards = Shards(3)
    single = RedisProc(free_port())
    yield shards, single
    shards.stop()
    single.stop()


@pytest.fixture
def proxy(env, weir_factory):
    shards, single = env
    shards.flush()
    port = free_port()
    weir_factory(redis_config(port, shards, workers=4,
                              extra="distribution: consistent_hash\nhash: murmur"))
    return port


def headers(text):
    return [l for l in text.split("\r\n") if l.startswith("# ")]


def raw_info(port, *sections):
    c = redis.Connection(port=port, socket_timeout=10)
    try:
        c.send_command("INFO", *sections)
        return c.read_response().decode()
    finally:
        c.disconnect()


def test_counters_of_all_workers_and_the_shards(env, proxy):
    shards, single = env
    first = redis.Redis(port=proxy, socket_timeout=10)
    base = first.info()
    # 16 connections: the kernel spreads them over the 4 workers
    clients = [first] + [redis.Redis(port=proxy, socket_timeout=10) for _ in range(15)]
    for i, c in enumerate(clients):
        assert c.set("key:%d" % i, "v") is True
        assert c.get("key:%d" % i) == b"v"
    for i in range(5):
        assert clients[i].expire("key:%d" % i, 1000) is True
        assert clients[i].get("missing:%d" % i) is None
    wait_until(lambda: clients[0].info("clients")["connected_clients"] == 16, what="16 clients")
    info = clients[0].info()
    assert info["total_connections_received"] == base["total_connections_received"] + 15
    # the INFOs count themselves
    assert info["total_commands_processed"] == base["total_commands_processed"] + 16 * 2 + \
        5 * 2 + 2
    assert info["db0"]["keys"] == 16 and info["db0"]["expires"] == 5
    assert info["keyspace_hits"] == 16 and info["keyspace_misses"] == 5
    assert info["instantaneous_ops_per_sec"] > 0
    assert info["redis_version"] == shards.primaries[0].client.info("server")["redis_version"]
    assert info["blocked_clients"] == 0
    assert info["used_memory"] == pytest.approx(
        sum(p.client.info("memory")["used_memory"] for p in shards.primaries), rel=0.2)
    # a client waiting in BLPOP is blocked, on whichever worker it is
    s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
    s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$5\r\nqueue\r\n$1\r\n0\r\n")
    wait_until(lambda: clients[1].info("clients")["blocked_clients"] == 1, what="blocked client")
    assert clients[2].rpush("queue", "x") == 1
    assert s.recv(100) == b"*2\r\n$5\r\nqueue\r\n$1\r\nx\r\n"
    wait_until(lambda: clients[1].info("clients")["blocked_clients"] == 0, what="unblocked")
    s.close()
    for c in clients[8:]:
        c.connection_pool.disconnect()
    wait_until(lambda: clients[0].info("clients")["connected_clients"] == 8, what="8 clients")
    assert clients[0].info("stats")["total_connections_received"] == \
        base["total_connections_received"] + 16


@pytest.mark.parametrize("args", [(), ("default",), ("all",), ("everything",), ("server",),
                                  ("CLIENTS", "keyspace"), ("nosuch",), ("stats", "all"),
                                  ("commandstats",), ("cluster", "persistence", "cpu")])
def test_sections_as_redis(env, proxy, args):
    shards, single = env
    wi, ri = raw_info(proxy, *args), raw_info(single.port, *args)
    assert [h for h in headers(wi) if h != "# Weir"] == headers(ri)
    assert ("# Weir" in headers(wi)) == (not args or any(a.lower() in ("default", "all", "everything")
                                                         for a in args))
    assert wi.endswith("\r\n") == ri.endswith("\r\n") and "\r\n\r\n\r\n" not in wi
    assert not wi.endswith("\r\n\r\n") or not wi
    # the fields of each section Redis has are there, for the ones weir fills in
    for name in ("redis_version", "tcp_port", "uptime_in_seconds", "connected_clients",
                 "blocked_clients", "total_commands_processed", "keyspace_hits", "role",
                 "cluster_enabled", "loading", "used_cpu_sys", "used_memory"):
        assert (name + ":" in wi) == (name + ":" in ri), name
