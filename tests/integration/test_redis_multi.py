"""MULTI / EXEC / DISCARD / WATCH through weir: a transaction runs on the
primary of the shard of its first key, on a connection of its own; a
command for another shard is refused with -CROSSSHARD and EXEC then
answers -EXECABORT, like Redis after a command it refused to queue."""
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


def other_shard_key(shards3, c, key):
    c.set(key, 0)
    home = shards3.holder(key)
    for i in range(1000):
        k = "other:%d" % i
        c.set(k, 0)
        if shards3.holder(k) != home:
            return k
    raise AssertionError("no key on another shard")


def test_transaction_on_one_shard(shards3, proxy3):
    port, c = proxy3
    p = c.pipeline(transaction=True)
    p.set("{u1}:a", 1)
    p.incr("{u1}:a")
    p.rpush("{u1}:l", "x", "y")
    p.mget("{u1}:a", "{u1}:b")
    p.ping()
    assert p.execute() == [True, 2, 2, [b"2", None], True]
    assert shards3.holder("{u1}:a") == shards3.holder("{u1}:l")
    # MULTI/EXEC reached the shard (not emulated)
    home = shards3.primaries[shards3.holder("{u1}:a")[0]]
    assert home.commandstats("multi") >= 1 and home.commandstats("exec") >= 1
    # an empty transaction; DISCARD
    assert raw_exchange(port, b"MULTI\r\nEXEC\r\nMULTI\r\nSET {u1}:a 9\r\nDISCARD\r\n"
                        b"GET {u1}:a\r\nEXEC\r\nDISCARD\r\nQUIT\r\n") == \
        b"+OK\r\n*0\r\n+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n2\r\n-ERR EXEC without MULTI\r\n" \
        b"-ERR DISCARD without MULTI\r\n+OK\r\n"


def test_crossshard_command_aborts_the_transaction(shards3, proxy3):
    port, c = proxy3
    other = other_shard_key(shards3, c, "home")
    out = raw_exchange(port, b"MULTI\r\nSET home 1\r\nSET %s 1\r\nINCR home\r\nEXEC\r\n"
                       b"GET home\r\nMULTI\r\nMULTI\r\nFOO\r\nEXEC\r\nQUIT\r\n" % other.encode())
    lines = out.split(b"\r\n")
    assert lines[0:2] == [b"+OK", b"+QUEUED"]
    assert lines[2].startswith(b"-CROSSSHARD")
    assert lines[3:5] == [b"+QUEUED", b"-EXECABORT Transaction discarded because of previous errors."]
    assert lines[5:7] == [b"$1", b"0"]  # nothing ran
    assert lines[7:9] == [b"+OK", b"-ERR MULTI calls can not be nested"]
    assert lines[9].startswith(b"-ERR unknown command 'FOO'")
    assert lines[10:12] == [b"-EXECABORT Transaction discarded because of previous errors.", b"+OK"]
    # keyspace commands cannot be queued
    out = raw_exchange(port, b"MULTI\r\nDBSIZE\r\nEXEC\r\nQUIT\r\n")
    assert out.startswith(b"+OK\r\n-ERR weir: 'dbsize' inside MULTI is not supported")
    assert out.endswith(b"-EXECABORT Transaction discarded because of previous errors.\r\n+OK\r\n")


def test_watch(shards3, proxy3):
    port, c = proxy3
    c.set("{w}:k", 1)
    # an untouched watched key: EXEC runs
    with c.pipeline(transaction=True) as p:
        p.watch("{w}:k")
        assert p.get("{w}:k") == b"1"
        p.multi()
        p.set("{w}:k", 2)
        assert p.execute() == [True]
    # touched by another client between WATCH and EXEC: nil
    with c.pipeline(transaction=True) as p:
        p.watch("{w}:k")
        c.set("{w}:k", 5)
        p.multi()
        p.set("{w}:k", 3)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert c.get("{w}:k") == b"5"
    other = other_shard_key(shards3, c, "{w}:k")
    out = raw_exchange(port, b"WATCH {w}:k %s\r\nWATCH {w}:k\r\nWATCH %s\r\nUNWATCH\r\n"
                       b"WATCH %s\r\nMULTI\r\nWATCH x\r\nEXEC\r\nQUIT\r\n" % (other.encode(), other.encode(), other.encode()))
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"-CROSSSHARD")
    assert lines[1] == b"+OK"
    assert lines[2].startswith(b"-CROSSSHARD")
    assert lines[3:6] == [b"+OK", b"+OK", b"+OK"]
    assert lines[6:9] == [b"-ERR WATCH inside MULTI is not allowed", b"*0", b"+OK"]


def test_blocking_and_pipelined_work_after_transactions(proxy3):
    port, c = proxy3
    for _ in range(3):
        p = c.pipeline(transaction=True)
        p.lpush("{b}:q", "v")
        p.blpop("{b}:q", 1)  # inside MULTI: does not block
        assert p.execute() == [1, (b"{b}:q", b"v")]
    assert c.blpop("{b}:q", 0.2) is None
    assert c.set("x", 1) and c.get("x") == b"1"
