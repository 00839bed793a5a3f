"""SCAN through weir walks every shard (the cursor names the shard and that
shard's own cursor) and returns exactly the union of the shards' keys;
MATCH / COUNT / TYPE reach the shards; RANDOMKEY picks a non-empty shard."""
import pytest
import redis

from conftest import free_port
from redis_helpers import Shards, raw_exchange, redis_config


@pytest.fixture(scope="module")
def shards3():
    s = Shards(3)
    yield s
    s.stop()


@pytest.fixture
def proxy3(shards3, weir_factory):
    shards3.flush()
    port = free_port()
    weir_factory(redis_config(port, shards3, extra="hash: xxhash"))
    c = redis.Redis(port=port, socket_timeout=10)
    yield port, c
    c.close()


def full_scan(c, **kw):
    keys, cursor, calls = [], 0, 0
    while True:
        cursor, batch = c.scan(cursor, **kw)
        keys += batch
        calls += 1
        assert calls < 10000
        if cursor == 0:
            return keys


def test_full_scan_is_the_union_of_the_shards(shards3, proxy3):
    port, c = proxy3
    p = c.pipeline(transaction=False)
    for i in range(2000):
        p.set("scan:%d" % i, i)
    for i in range(50):
        p.rpush("list:%d" % i, "x")
    p.execute()
    on_shards = set()
    for s in shards3.primaries:
        n = set(s.client.keys("*"))
        assert n, "every shard holds keys"
        assert not (on_shards & n)
        on_shards |= n
    got = full_scan(c, count=100)
    assert len(got) == len(set(got))  # no rehashing: no duplicates
    assert set(got) == on_shards
    assert set(full_scan(c, match="list:*", count=1000)) == {b"list:%d" % i for i in range(50)}
    assert set(full_scan(c, _type="list")) == {b"list:%d" % i for i in range(50)}
    # the cursor names the shard: the second shard starts at 1 << 52
    cursor, _ = c.scan(0, count=100000)
    assert cursor == 1 << 52


def test_scan_errors_and_empty(proxy3):
    port, c = proxy3
    assert full_scan(c) == []
    assert raw_exchange(port, b"SCAN 99999999999999999999\r\nSCAN -1\r\nSCAN x\r\n"
                        b"SCAN %d\r\nQUIT\r\n" % (3 << 52)) == \
        b"-ERR invalid cursor\r\n" * 4 + b"+OK\r\n"
    with pytest.raises(redis.ResponseError, match="syntax error"):
        c.execute_command("SCAN", 0, "BOGUS")


def test_randomkey(shards3, proxy3):
    port, c = proxy3
    assert c.randomkey() is None
    c.set("only", 1)
    assert c.randomkey() == b"only"
    for i in range(100):
        c.set("r:%d" % i, i)
    seen = {c.randomkey() for _ in range(200)}
    holders = {shards3.holder(k.decode())[0] for k in seen}
    assert len(holders) == 3  # keys from every shard
