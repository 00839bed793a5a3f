"""auto_eject (twemproxy's auto_eject_hosts): with consistent_hash, a shard
whose primary fails its health checks leaves the ring, so its keys go to
the other shards until it is back; without it they get an error."""
import subprocess

import pytest
import redis

from conftest import WEIR_BIN, free_port, wait_until
from redis_helpers import RedisProc, Shards, redis_config


def test_dead_shard_is_ejected_and_returns(weir_factory):
    shards = Shards(3)
    try:
        port = free_port()
        weir_factory(redis_config(port, shards, extra="distribution: consistent_hash\nhash: xxhash\n"
                                  "auto_eject: true\nhealth_check: { interval: 100ms, fall: 1 }"))
        c = redis.Redis(port=port, socket_timeout=10)
        keys = ["e:%d" % i for i in range(300)]
        for k in keys:
            c.set(k, "before")
        home = {k: shards.holder(k)[0] for k in keys}
        on2 = [k for k in keys if home[k] == 2]
        others = [k for k in keys if home[k] != 2]
        assert on2 and others
        port2 = shards.primaries[2].port
        shards.primaries[2].stop()

        def remapped():
            try:
                return c.set(on2[0], "after") is True
            except redis.ResponseError:
                return False
        wait_until(remapped, timeout=10, what="keys of the dead shard remapped")
        for k in on2:
            assert c.set(k, "after") is True
            assert c.get(k) == b"after"
            assert shards.holder(k)[0] in (0, 1)
        for k in others:  # the other keys stay where they were
            assert c.get(k) == b"before"
        # back: the keys return to it (with its old data: none, it restarted empty)
        shards.primaries[2] = RedisProc(port2)

        def returned():
            try:
                return c.get(on2[0]) is None
            except redis.ResponseError:
                return False
        wait_until(returned, timeout=10, what="the shard back in the ring")
        c.set(on2[0], "home")
        assert 2 in shards.holder(on2[0])  # (a stale copy may remain on the other shard)
        assert shards.primaries[2].client.get(on2[0]) == b"home"
        for k in others:
            assert c.get(k) == b"before"
    finally:
        shards.stop()


def test_auto_eject_needs_consistent_hash(tmp_path):
    shards = Shards(1)
    try:
        p = tmp_path / "w.yaml"
        for extra, msg in (("distribution: hash\nauto_eject: true", "auto_eject works only with"),
                           ("auto_eject: yes", "expected true or false for 'auto_eject'")):
            p.write_text(redis_config(free_port(), shards, extra=extra))
            r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
            assert r.returncode != 0 and msg in r.stderr + r.stdout, r.stderr + r.stdout
        p.write_text(redis_config(free_port(), shards, extra="auto_eject: false"))
        r = subprocess.run([WEIR_BIN, "check", "-c", str(p)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        shards.stop()
