"""Health checks of Redis shards run once, on the main thread, whatever the
number of workers: a real redis-server counts the PING and INFO commands
weir sends it, and every worker reports the same state for a shard."""
import time

import redis

from conftest import free_port, wait_until
from redis_helpers import Shards, redis_config

INTERVAL_S = 0.1


def _touch_every_worker(port, n=24):
    """Opens n client connections (the kernel spreads them over the workers)
    and sends a command on each, so every worker has routed something."""
    clients = []
    for i in range(n):
        c = redis.Redis(port=port, socket_timeout=10)
        assert c.set("touch:%d" % i, i) is True
        clients.append(c)
    return clients


def _weir_shard_line(c):
    return c.info("weir")["shard0"]


def test_checks_run_once_with_four_workers(weir_factory):
    shards = Shards(1, replicas=1)
    primary, replica = shards.primaries[0], shards.replicas[0][0]
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, workers=4, extra="read_from: prefer_replica\n"
                                  "health_check: { interval: 100ms }"))
        clients = _touch_every_worker(port)
        # checks are running: the counts move
        p0 = primary.commandstats("ping")
        wait_until(lambda: primary.commandstats("ping") >= p0 + 3, what="health check PINGs")
        start = time.monotonic()
        pings0, rpings0 = primary.commandstats("ping"), replica.commandstats("ping")
        infos0 = replica.commandstats("info")
        time.sleep(2.0)
        pings1, rpings1 = primary.commandstats("ping"), replica.commandstats("ping")
        infos1 = replica.commandstats("info")
        elapsed = time.monotonic() - start
        # one checker sends at most one round per interval (+2 for the
        # rounds at the window's edges); four would send about four times that
        most = int(elapsed / INTERVAL_S) + 2
        assert 1 <= pings1 - pings0 <= most, (pings1 - pings0, most)
        assert 1 <= rpings1 - rpings0 <= most, (rpings1 - rpings0, most)
        # a replica is also asked INFO replication each round; our own
        # INFO commandstats of the first reading counts one more
        assert 1 <= infos1 - infos0 - 1 <= most, (infos1 - infos0 - 1, most)
        for c in clients:
            c.close()
    finally:
        shards.stop()


def test_every_worker_sees_the_same_shard_state(weir_factory):
    shards = Shards(1)
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, workers=4,
                                  extra="health_check: { interval: 100ms, fall: 1 }"))
        first = redis.Redis(port=port, socket_timeout=10)
        assert _weir_shard_line(first)["up"] == 1
        shards.primaries[0].stop()
        wait_until(lambda: _weir_shard_line(first)["up"] == 0, what="shard seen down")
        # workers that never routed a command learn nothing by themselves:
        # new connections, whichever worker they land on, report the shard
        # down at once because the state is the main thread's
        for _ in range(24):
            c = redis.Redis(port=port, socket_timeout=10)
            assert _weir_shard_line(c)["up"] == 0
            c.close()
        first.close()
    finally:
        shards.stop()
