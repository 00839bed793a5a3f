"""consistent_hash is ketama as twemproxy builds it: the same servers and
hash put every key on the same server through weir and through a real
nutcracker (twemproxy), so a pool can move from one to the other without
moving keys."""
import os
import shutil
import subprocess

import pytest
import redis

from conftest import free_port, wait_port
from redis_helpers import Shards, redis_config

NUTCRACKER = shutil.which("nutcracker") or "/usr/sbin/nutcracker"


@pytest.fixture(scope="module")
def shards():
    s = Shards(3)
    yield s
    s.stop()


def nutcracker_placement(tmp_path, shards, hash_name, keys, weights):
    port = free_port()
    conf = tmp_path / ("nc-%s.yml" % hash_name)
    conf.write_text("pool:\n  listen: 127.0.0.1:%d\n  hash: %s\n  distribution: ketama\n"
                    "  redis: true\n  servers:\n%s" % (port, hash_name, "".join(
                        "   - %s:%d\n" % (p.addr, w) for p, w in zip(shards.primaries, weights))))
    proc = subprocess.Popen([NUTCRACKER, "-c", str(conf), "-s", str(free_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, what="nutcracker")
        c = redis.Redis(port=port, socket_timeout=10)
        p = c.pipeline(transaction=False)
        for k in keys:
            p.set(k, "1")
        p.execute()
        where = [tuple(shards.holder(k)) for k in keys]
    finally:
        proc.terminate()
        proc.wait()
    shards.flush()
    return where


def weir_placement(weir_factory, shards, hash_name, keys, weights):
    port = free_port()
    text = redis_config(port, shards, extra="distribution: consistent_hash\nhash: %s\nhash_tag: ''"
                        % hash_name)
    for p, w in zip(shards.primaries, weights):
        text = text.replace("{ primary: %s }" % p.addr, "{ primary: %s, weight: %d }" % (p.addr, w))
    w = weir_factory(text)
    c = redis.Redis(port=port, socket_timeout=10)
    p = c.pipeline(transaction=False)
    for k in keys:
        p.set(k, "1")
    p.execute()
    where = [tuple(shards.holder(k)) for k in keys]
    c.close()
    w.stop()
    shards.flush()
    return where


@pytest.mark.parametrize("hash_name", ["fnv1a_64", "crc32", "crc32a", "fnv1_64", "fnv1a_32",
                                       "murmur", "md5"])
def test_ketama_places_keys_like_nutcracker(tmp_path, weir_factory, shards, hash_name):
    keys = ["user:%d" % i for i in range(300)] + ["k%d" % i for i in range(100)]
    weights = [1, 1, 1] if hash_name != "md5" else [1, 2, 3]
    shards.flush()
    theirs = nutcracker_placement(tmp_path, shards, hash_name, keys, weights)
    ours = weir_placement(weir_factory, shards, hash_name, keys, weights)
    assert all(len(t) == 1 for t in theirs)
    if hash_name in ("murmur", "md5", "crc32a"):
        assert len({t for t in theirs}) == 3  # the keys are spread: a real check
    mismatched = [k for k, a, b in zip(keys, theirs, ours) if a != b]
    assert mismatched == []
