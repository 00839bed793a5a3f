"""Redis Sentinel: weir asks the sentinels for each shard's primary
(SENTINEL get-master-addr-by-name) every interval and switches a shard to
the primary sentinel promoted, without a reload. Real redis-server and
redis-sentinel processes: kill the primary, wait for the failover, write."""
import shutil
import subprocess

import redis

from conftest import WEIR_BIN, free_port, wait_until
from redis_helpers import RedisProc, SentinelProc, Shards, redis_config


def test_failover_switches_the_primary(weir_factory):
    # `make test` installs it (scripts/deps.sh test): missing is a failure, not a skip
    assert shutil.which("redis-sentinel"), "redis-sentinel not installed: run scripts/deps.sh test"
    primary = RedisProc(free_port())
    replica = RedisProc(free_port(), replicaof=primary.port)
    procs = [primary, replica]
    try:
        wait_until(lambda: replica.client.info("replication").get("master_link_status") == "up",
                   what="replica in sync")
        sentinel = SentinelProc(free_port(), "m1", primary.port)
        procs.append(sentinel)
        wait_until(lambda: sentinel.client.execute_command("SENTINEL", "replicas", "m1"),
                   timeout=20, what="sentinel knows the replica")
        port = free_port()
        text = ("workers: 2\nlog: { level: info }\nlisteners:\n  - name: cache\n"
                "    listen: 127.0.0.1:%d\n    protocol: redis\n    redis_cluster: c\n"
                "redis_clusters:\n  - name: c\n    health_check: { interval: 200ms }\n"
                "    sentinel: { masters: [m1], addresses: [127.0.0.1:%d], interval: 200ms }\n"
                "    shards:\n      - { primary: %s }\n" % (port, sentinel.port, primary.addr))
        w = weir_factory(text)
        c = redis.Redis(port=port, socket_timeout=10)
        assert c.set("k", "before") is True
        primary.stop()
        wait_until(lambda: sentinel.master_port("m1") == replica.port, timeout=45,
                   what="sentinel failover")

        def writes():
            try:
                return c.set("k", "after") is True
            except (redis.ResponseError, redis.ConnectionError):
                return False
        wait_until(writes, timeout=10, what="writes through weir after the failover")
        assert replica.client.get("k") == b"after"
        for i in range(20):  # every worker switched: new connections land anywhere
            c2 = redis.Redis(port=port, socket_timeout=10)
            assert c2.set("k%d" % i, i) is True
            c2.close()
        assert replica.client.dbsize() >= 21
        assert "has a new primary %s" % replica.addr in w.errlog()
    finally:
        for p in procs:
            p.stop()


def test_sentinel_config_errors(tmp_path):
    shards = Shards(2)
    try:
        p = tmp_path / "w.yaml"
        for extra, msg in (
                ("sentinel: { masters: [a], addresses: [127.0.0.1:26379] }",
                 "names 1 master(s) but the cluster has 2 shard(s)"),
                ("sentinel: { masters: [a, b] }", "missing required key 'addresses'"),
                ("sentinel: { masters: [a, a], addresses: [127.0.0.1:26379] }", "duplicate"),
                ("sentinel: { masters: [a, b], addresses: [127.0.0.1:26379], interval: 1ms }",
                 "expected a duration 100ms..1h")):
            p.write_text(redis_config(free_port(), shards, extra=extra))
            r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
            assert r.returncode != 0 and msg in r.stderr + r.stdout, (extra, r.stderr + r.stdout)
        p.write_text(redis_config(free_port(), shards, extra="sentinel: { masters: [a, b], "
                                  "addresses: [127.0.0.1:26379, 127.0.0.1:26380], interval: 1s }"))
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        shards.stop()
