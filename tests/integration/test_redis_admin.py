"""CONFIG and CLIENT through weir: CONFIG GET asked of the first reachable
primary (weir's own values for what weir decides), CONFIG SET to every server
only with commands.config_set; CLIENT LIST / INFO / KILL / UNBLOCK / REPLY
over the clients of every worker, in Redis's formats."""
import socket

import pytest
import redis

from conftest import free_port, wait_until
from redis_helpers import RedisProc, Shards, redis_config


@pytest.fixture(scope="module")
def env():
    shards = Shards(2, replicas=1)
    single = RedisProc(free_port())
    yield shards, single
    shards.stop()
    single.stop()


def start(weir_factory, shards, extra=""):
    port = free_port()
    weir_factory(redis_config(port, shards, workers=4, extra="distribution: hash\nhash: crc32a\n"
                              "health_check: { interval: 100ms, fall: 1 }\n" + extra))
    return port


def raw(port_or_sock, data, n=1):
    """Sends data, returns the first n replies' bytes (simple parsing)."""
    from test_redis_split_stream import skip_reply
    s = port_or_sock if isinstance(port_or_sock, socket.socket) else \
        socket.create_connection(("127.0.0.1", port_or_sock), timeout=10)
    s.sendall(data)
    buf, pos, out = b"", 0, []
    while len(out) < n:
        end = skip_reply(buf, pos) if buf else None
        if end is None:
            b = s.recv(65536)
            assert b, (buf, out)
            buf += b
            continue
        out.append(buf[pos:end])
        pos = end
    if s is not port_or_sock:
        s.close()
    return out


def cmd(*args):
    from test_redis_split_stream import cmd as c
    return c(*args)


def test_config_get_from_a_primary_and_set_only_when_allowed(env, weir_factory):
    shards, single = env
    port = start(weir_factory, shards)
    c = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
    primary = shards.primaries[0].client
    assert c.config_get("maxmemory-policy") == primary.config_get("maxmemory-policy")
    assert c.config_get("*max-listpack*") == {k: v for k, v in
                                              primary.config_get("*max-listpack*").items()}
    got = c.config_get("databases", "cluster-enabled", "save")
    assert got["databases"] == "1" and got["cluster-enabled"] == "no"
    assert int(c.config_get("maxclients")["maxclients"]) == 4 * 10000
    with pytest.raises(redis.ResponseError, match=r"(?i)^unknown subcommand 'set'\. Try CONFIG HELP\.$"):
        c.config_set("maxmemory-policy", "allkeys-lru")
    assert primary.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    # the first primary down: the next one answers
    shards.primaries[0].proc.send_signal(19)  # SIGSTOP
    try:
        down = ("primary=%s,up=0" % shards.primaries[0].addr).encode()
        wait_until(lambda: down in raw(port, cmd("INFO", "weir"))[0], what="shard 0 down")
        assert c.config_get("appendonly") == {"appendonly": "no"}
    finally:
        shards.primaries[0].proc.send_signal(18)  # SIGCONT


def test_config_set_fans_out_when_enabled(env, weir_factory):
    shards, single = env
    port = start(weir_factory, shards, "commands: { config_set: true }")
    c = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
    try:
        assert c.config_set("maxmemory-policy", "allkeys-lru") is True
        for srv in shards.all():
            assert srv.client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        w = raw(port, cmd("CONFIG", "SET", "no-such-param", "1") + cmd("CONFIG", "SET", "a"), 2)
        r = raw(single.port, cmd("CONFIG", "SET", "no-such-param", "1") + cmd("CONFIG", "SET", "a"), 2)
        assert w == r
    finally:
        for srv in shards.all():
            srv.client.config_set("maxmemory-policy", "noeviction")


def parse_line(line):
    return dict(kv.split("=", 1) for kv in line.strip().split(" "))


def test_client_list_info_kill_over_all_workers(env, weir_factory):
    shards, single = env
    port = start(weir_factory, shards)
    socks = []
    for i in range(12):
        sk = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert raw(sk, cmd("CLIENT", "SETNAME", "c%d" % i)) == [b"+OK\r\n"]
        socks.append(sk)
    first = redis.Redis(port=port, socket_timeout=10, decode_responses=True)
    first.client_setname("first")
    lines = first.execute_command("CLIENT", "LIST").strip().split("\n")
    names = {parse_line(l)["name"] for l in lines}
    assert {"c%d" % i for i in range(12)} | {"first"} == names
    # Redis's fields, in Redis's order
    ref = redis.Redis(port=single.port, socket_timeout=10, decode_responses=True)
    ref_line = ref.execute_command("CLIENT", "INFO")
    mine = parse_line(first.execute_command("CLIENT", "INFO"))
    assert list(mine) == list(parse_line(ref_line))
    assert mine["name"] == "first" and mine["cmd"] == "client|info" and mine["id"] == \
        str(first.client_id())
    ids = [int(raw(sk, cmd("CLIENT", "ID"))[0][1:-2]) for sk in socks]
    only = first.execute_command("CLIENT", "LIST", "ID", ids[3], ids[5], 999999)
    assert [parse_line(l)["name"] for l in only.strip().split("\n")] == ["c3", "c5"]
    assert first.execute_command("CLIENT", "LIST", "TYPE", "pubsub") == ""
    # kill by id, whatever worker holds it
    for victim in (3, 7, 10):
        assert first.execute_command("CLIENT", "KILL", "ID", ids[victim]) == 1
    for victim in (3, 7, 10):
        assert socks[victim].recv(100) == b""
    assert len(first.execute_command("CLIENT", "LIST").strip().split("\n")) == 10
    clients = [first] + [redis.Redis(port=port, socket_timeout=10, decode_responses=True)]
    # old form: by address; SKIPME
    addr = parse_line(clients[1].execute_command("CLIENT", "INFO"))["addr"]
    assert first.execute_command("CLIENT", "KILL", addr) == "OK"
    with pytest.raises(redis.ResponseError, match="No such client"):
        first.execute_command("CLIENT", "KILL", "1.2.3.4:5")
    my = parse_line(first.execute_command("CLIENT", "INFO"))["addr"]
    assert first.execute_command("CLIENT", "KILL", "ADDR", my, "SKIPME", "yes") == 0
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(cmd("CLIENT", "INFO"))
    saddr = parse_line(s.recv(4096).split(b"\r\n")[1].decode())["addr"]
    s.sendall(cmd("CLIENT", "KILL", "ADDR", saddr, "SKIPME", "no"))
    assert s.recv(100) == b":1\r\n"
    assert s.recv(100) == b""  # closed after its reply
    s.close()
    for sk in socks:
        sk.close()


def test_client_unblock(env, weir_factory):
    shards, single = env
    port = start(weir_factory, shards)
    admin = redis.Redis(port=port, socket_timeout=10)
    for how, want in ((None, b"*-1\r\n"), ("TIMEOUT", b"*-1\r\n"),
                      ("ERROR", b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(cmd("CLIENT", "ID"))
        cid = int(s.recv(100)[1:-2])
        assert admin.execute_command("CLIENT", "UNBLOCK", cid) == 0  # not blocked yet
        s.sendall(cmd("BLPOP", "nothing", "0"))
        wait_until(lambda: "b" in parse_line(admin.execute_command(
            "CLIENT", "LIST", "ID", cid).decode())["flags"], what="blocked")
        args = ["CLIENT", "UNBLOCK", cid] + ([how] if how else [])
        assert admin.execute_command(*args) == 1
        assert s.recv(100) == want
        s.sendall(cmd("PING"))  # the connection serves on
        assert s.recv(100) == b"+PONG\r\n"
        s.close()


def test_client_reply_as_redis(env, weir_factory):
    shards, single = env
    port = start(weir_factory, shards)
    data = cmd("SET", "r1", "a") + cmd("CLIENT", "REPLY", "SKIP") + cmd("GET", "r1") + \
        cmd("CLIENT", "REPLY", "OFF") + cmd("INCR", "r2") + cmd("CLIENT", "REPLY", "SKIP") + \
        cmd("GET", "r1") + cmd("CLIENT", "REPLY", "ON") + cmd("GET", "r2") + \
        cmd("CLIENT", "REPLY", "MAYBE") + cmd("PING")
    single.client.delete("r1", "r2")
    assert raw(port, data, 4) == raw(single.port, data, 4)
